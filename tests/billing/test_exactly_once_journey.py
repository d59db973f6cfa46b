"""The payments issue's end-to-end test in one piece: a Free team hits its limit, upgrades, is invoiced and
charged exactly once, however often (or however concurrently) the close and the charge run.

"One charge" is proven by counting throughout: the PaymentIntents in localstripe whose metadata names the invoice
(`intents_for`). Idempotency keys are kept as Stripe keeps them (tests/strict_stripe.py, in front of localstripe).
"""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from accounts.roles import Role
from billing import closing, lifecycle, payments, services, tasks
from billing.models import Invoice, Payment
from tests.billing.test_closing import close
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice, store_card
from tests.billing.usage import count_billable_requests
from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import assert_envelope, make_grant, make_owner, make_token, make_vehicle, request

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

GOOD_CARD = "pm_card_visa"


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False  # the plan's limit is under test, not the per-second one


def odometer_reader(client, team):
    """A function making one odometer request to the real API with an application's access token."""
    vehicle = make_vehicle(make_owner())
    token = make_token(make_grant(ApplicationFactory(team=team), vehicle.owner, [vehicle]))
    url = f"/v2.0/vehicles/{vehicle.public_id}/odometer"
    return lambda: request(client, "GET", url, token=token)


def charge_due(capture):
    """The charge sweep, each due invoice charged by the task's body; the outcomes."""
    with capture(execute=True):
        return [tasks.charge_invoice(invoice_id) for invoice_id in payments.invoices_to_charge()]


def run_at_once(*calls):
    """Run each call in its own thread and database connection, released together; their results."""
    barrier, results, errors = threading.Barrier(len(calls)), [None] * len(calls), []

    def runner(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_a_free_team_hits_its_limit_upgrades_and_pays_750_cents_exactly_once(
    client, make_member, django_capture_on_commit_callbacks, send_queued_emails
):
    owner = make_member(Role.OWNER, email="journey@example.com")
    team = owner.team
    read_odometer = odometer_reader(client, team)

    assert [read_odometer().status_code for _ in range(100)] == [200] * 100
    assert_envelope(read_odometer(), "BILLING", "VEHICLE_REQUEST_LIMIT", 430)

    store_card(owner, GOOD_CARD)
    services.switch_plan(actor=owner, plan_code="payg")
    assert [read_odometer().status_code for _ in range(50)] == [200] * 50

    period = lifecycle.current_period(team.pk)
    output = close(period.end + closing.close_grace() + timedelta(minutes=1))

    invoice = Invoice.objects.get(team=team)
    assert (invoice.period_id, invoice.total_cents, invoice.status) == (period.pk, 750, "open")
    assert invoice.number in output and "$7.50" in output
    # services.py: requests made before the upgrade keep the price they were counted at (Free: 0 cents).
    lines = [(line.quantity, int(line.unit_price_cents), line.amount_cents) for line in invoice.lines.all()]
    assert lines == [(100, 0, 0), (50, 15, 750)]

    assert charge_due(django_capture_on_commit_callbacks) == ["succeeded"]
    send_queued_emails()

    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.paid_at is not None
    (intent,) = intents_for(invoice)
    assert (intent.amount, intent.status) == (750, "succeeded")
    assert list(Payment.objects.filter(invoice=invoice).values_list("status", "stripe_payment_intent_id")) == [
        ("succeeded", intent.id)
    ]
    assert [m.subject for m in mail.outbox if "Receipt" in m.subject] == [
        f"Receipt for Ignition invoice {invoice.number}"
    ]
    paid_at, emails = invoice.paid_at, len(mail.outbox)

    assert "Closed 0 period(s)." in close(period.end + closing.close_grace() + timedelta(hours=1))
    assert charge_due(django_capture_on_commit_callbacks) == []
    assert tasks.charge_invoice(invoice.pk) is None  # a redelivered task for the paid invoice

    assert list(Invoice.objects.filter(team=team).values_list("number", flat=True)) == [invoice.number]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at) == ("paid", paid_at)
    assert Payment.objects.filter(invoice__team=team).count() == 1
    assert len(intents_for(invoice)) == 1
    send_queued_emails()
    assert len(mail.outbox) == emails


def test_a_worker_killed_before_recording_stripes_answer_is_rerun_without_a_second_charge(
    make_member, monkeypatch, django_capture_on_commit_callbacks, send_queued_emails
):
    owner = make_member(Role.OWNER, email="killed@example.com")
    store_card(owner, GOOD_CARD)
    invoice = pay_as_you_go_invoice(owner, 20)
    send_queued_emails()
    mail.outbox.clear()  # the plan switch's email; this test is about the charge's

    # As in test_payments.py: the run dies after localstripe created the PaymentIntent, before our row
    # records its id. Stripe (and the strict layer) would replay the key's PaymentIntent; our records find it first.
    def die(payment, intent):
        raise SystemExit("worker killed")

    monkeypatch.setattr(payments, "_remember_intent", die)
    with pytest.raises(SystemExit):
        tasks.charge_invoice(invoice.pk)
    monkeypatch.undo()
    assert len(intents_for(invoice)) == 1
    assert list(Payment.objects.filter(invoice=invoice).values_list("status", "stripe_payment_intent_id")) == [
        ("processing", "")
    ]

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.charge_invoice(invoice.pk) == "succeeded"  # the task, redelivered (acks_late)
        assert tasks.charge_invoice(invoice.pk) is None  # and once more: nothing left to do
    send_queued_emails()

    invoice.refresh_from_db()
    (intent,) = intents_for(invoice)
    assert (invoice.status, intent.status, intent.amount) == ("paid", "succeeded", 300)
    assert list(Payment.objects.filter(invoice=invoice).values_list("status", "stripe_payment_intent_id")) == [
        ("succeeded", intent.id)
    ]
    assert [m.subject for m in mail.outbox] == [f"Receipt for Ignition invoice {invoice.number}"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(5))  # a race: give it a few chances to show
def test_two_workers_charging_one_invoice_at_once_charge_it_once(make_member, attempt):
    owner = make_member(Role.OWNER)
    store_card(owner, GOOD_CARD)
    invoice = pay_as_you_go_invoice(owner, 30)

    outcomes = run_at_once(*[lambda: tasks.charge_invoice(invoice.pk)] * 2)

    assert "succeeded" in outcomes
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert list(Payment.objects.filter(invoice=invoice).values_list("status", flat=True)) == ["succeeded"]
    assert [(intent.amount, intent.status) for intent in intents_for(invoice)] == [(450, "succeeded")]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_closers_at_once_issue_one_invoice_for_the_period(make_member):
    owner = make_member(Role.OWNER)
    store_card(owner, GOOD_CARD)
    services.switch_plan(actor=owner, plan_code="payg")
    count_billable_requests(owner.team, 10)
    period = lifecycle.current_period(owner.team_id)
    moment = period.end + closing.close_grace() + timedelta(minutes=1)

    outputs = run_at_once(lambda: close(moment), lambda: close(moment))

    assert sorted("Closed 1 period(s)." in output for output in outputs) == [False, True]
    assert list(Invoice.objects.filter(period=period).values_list("total_cents", flat=True)) == [150]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_leaves_an_attempt_alone_while_the_first_is_asking_stripe(make_member, monkeypatch):
    """The race the repeated test above hunts for, made certain: worker A is inside its Stripe call when
    worker B (a duplicate task) runs. B must not ask Stripe about the same attempt: before the fix it
    found no PaymentIntent by metadata yet and created a second one, and the customer paid twice."""
    owner = make_member(Role.OWNER)
    store_card(owner, GOOD_CARD)
    invoice = pay_as_you_go_invoice(owner, 8)
    a_is_at_stripe, b_is_done = threading.Event(), threading.Event()
    real_create = payments._create_intent
    outcome = {}

    def slow_create(*args, **kwargs):  # worker A: pauses inside the Stripe step until B has run
        if threading.current_thread().name == "worker-a":
            a_is_at_stripe.set()
            outcome["b_ran_while_a_waited"] = b_is_done.wait(timeout=10)  # False: B was blocked behind A
        return real_create(*args, **kwargs)

    monkeypatch.setattr(payments, "_create_intent", slow_create)

    def worker_a():
        try:
            outcome["a"] = tasks.charge_invoice(invoice.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=worker_a, name="worker-a")
    thread.start()
    assert a_is_at_stripe.wait(timeout=30)
    outcome["b"] = tasks.charge_invoice(invoice.pk)  # worker B, while A holds the attempt
    b_is_done.set()
    thread.join(timeout=60)

    assert outcome == {"a": "succeeded", "b": None, "b_ran_while_a_waited": True}
    assert [(intent.amount, intent.status) for intent in intents_for(invoice)] == [(120, "succeeded")]
    assert list(Payment.objects.filter(invoice=invoice).values_list("status", flat=True)) == ["succeeded"]
