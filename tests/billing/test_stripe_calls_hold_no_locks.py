"""No database transaction or row lock is open while we wait for Stripe (localstripe here, for real).

A slow Stripe must not hold rows other requests need (on SQLite: the whole database's write lock). Each
money flow runs with a spy on the stripe SDK's HTTP client (it passes every request through to localstripe)
that notes whether the calling thread's database connection was inside a transaction, as the database server
sees it, when the request left. The payment attempt is held by a committed claim instead (billing.payments),
so a second worker still leaves it alone, and a worker that dies is taken over once its claim expires.

These tests commit (`transaction=True`): inside pytest-django's usual test transaction, every call would be
"in a transaction".
"""

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
import pytest
import stripe
import time_machine
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import Membership
from accounts.roles import Role
from billing import backoffice, cards, dunning, payments, services, tasks
from billing.models import BillingEvent, Invoice, Payment, Subscription
from billing.stripe_gateway import LONGEST_CALL, stripe_client
from tests.billing.test_paying_on_session import (
    DECLINED_ON_CHARGE,
    NEEDS_3DS,
    VISA,
    authenticate_in_the_browser,
    past_due_invoice,
    pay_now,
    pay_url,
)
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice, store_card
from tests.billing.test_webhooks import deliver
from tests.factories import TeamFactory
from tests.processes import ROOT, database_url_for_subprocess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stripe_settings")]


def transaction_open() -> bool:
    """Whether this thread's database connection is inside a transaction, as the database server sees it."""
    raw = connection.connection
    if raw is None:
        return False
    if connection.vendor == "sqlite":
        return raw.in_transaction
    return raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


@dataclass
class StripeCalls:
    made: list = field(default_factory=list)  # (method, path, a transaction was open)
    before: dict = field(default_factory=dict)  # (method, path prefix) → a step to run just before such a request

    def in_transaction(self) -> list:
        return [(method, path) for method, path, in_transaction in self.made if in_transaction]

    def paths(self) -> set:
        return {f"{method} {path.split('/')[2]}" for method, path, _ in self.made}


@pytest.fixture
def stripe_calls(monkeypatch) -> StripeCalls:
    """Every request the SDK sends, noted and then sent to localstripe unchanged (a spy, not a mock)."""
    calls = StripeCalls()
    real = stripe.RequestsClient.request_with_retries

    def spy(client, method, url, *args, **kwargs):
        path = "/" + url.split("/", 3)[3].split("?")[0]
        calls.made.append((method.upper(), path, transaction_open()))
        for (step_method, prefix), step in list(calls.before.items()):
            if method.upper() == step_method and path.startswith(prefix):
                del calls.before[(step_method, prefix)]
                step()
        return real(client, method, url, *args, **kwargs)

    monkeypatch.setattr(stripe.RequestsClient, "request_with_retries", spy)
    return calls


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="no-locks@example.com")


def in_another_thread(step, timeout: float = 15):
    """Run `step` as another request would, on its own database connection; its result (an error is raised here)."""
    outcome = {}

    def run():
        try:
            outcome["result"] = step()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread below
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "blocked: it waited for a lock held across a Stripe call"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


# Every flow that talks to Stripe


def test_storing_and_removing_a_card(owner_membership, stripe_calls):
    store_card(owner_membership, VISA)
    cards.remove_card(owner_membership)

    assert {"POST customers", "POST setup_intents", "POST payment_methods"} <= stripe_calls.paths()
    assert stripe_calls.in_transaction() == []


def test_charging_declining_and_retrying_an_invoice(owner_membership, stripe_calls):
    store_card(owner_membership, DECLINED_ON_CHARGE)
    invoice = pay_as_you_go_invoice(owner_membership, 5)
    stripe_calls.made.clear()

    assert tasks.charge_invoice(invoice.pk) == "failed"
    store_card(owner_membership, VISA)
    (due, _) = dunning.due_retries(timezone.now() + timedelta(days=2))
    assert [payments.charge_invoice(invoice_id, attempt=n).status for invoice_id, n in due] == ["succeeded"]

    assert {"POST payment_intents", "GET payment_intents"} <= stripe_calls.paths()
    assert any(path.endswith("/cancel") for _, path, _ in stripe_calls.made)  # the declined one, canceled
    assert stripe_calls.in_transaction() == []


def test_paying_on_the_pay_page_and_confirming_3d_secure(owner_membership, make_member, client, stripe_calls):
    declined = past_due_invoice(make_member(Role.OWNER, team=TeamFactory()), DECLINED_ON_CHARGE)
    store_card(Membership.objects.get(team_id=declined.team_id), VISA)
    needs_3ds = past_due_invoice(owner_membership, NEEDS_3DS)
    intent = stripe_client().v1.payment_intents.retrieve(
        Payment.objects.get(invoice=needs_3ds).stripe_payment_intent_id
    )
    stripe_calls.made.clear()

    client.force_login(Membership.objects.get(team_id=declined.team_id).user)
    pay_now(client, declined)  # "Pay $X with Visa •••• 4242": a new attempt, on-session
    client.force_login(owner_membership.user)
    client.get(pay_url(needs_3ds))  # looks up the PaymentIntent the bank wants authenticated
    authenticate_in_the_browser(intent.id, intent.client_secret)
    client.post(pay_url(needs_3ds), {"payment_intent": intent.id})

    assert [Invoice.objects.get(pk=invoice.pk).status for invoice in (declined, needs_3ds)] == ["paid", "paid"]
    assert {"POST payment_intents", "GET payment_intents"} <= stripe_calls.paths()
    assert stripe_calls.in_transaction() == []


def test_webhooks_and_the_reconciliation(owner_membership, client, settings, stripe_calls):
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 5)
    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit):  # the run dies before recording anything
        patch.setattr(payments, "_finish", lambda *args, **kwargs: (_ for _ in ()).throw(SystemExit("killed")))
        payments.charge_invoice(invoice.pk)
    stripe_calls.made.clear()

    payments.reconcile(stuck_after=timedelta(0))
    deliver(client, settings, "payment_intent.succeeded", intents_for(invoice)[0].id)

    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert {"GET payment_intents"} <= stripe_calls.paths()
    assert stripe_calls.in_transaction() == []


def test_staff_voiding_an_invoice(owner_membership, stripe_calls):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    stripe_calls.made.clear()

    backoffice.void_invoice(invoice.pk, staff=None, reason="Goodwill")

    assert Invoice.objects.get(pk=invoice.pk).status == "void"
    assert any(path.endswith("/cancel") for _, path, _ in stripe_calls.made)
    assert stripe_calls.in_transaction() == []


# What the claims and the second looks still guarantee, with nothing locked across Stripe


def test_while_a_worker_asks_stripe_its_connection_is_idle_and_the_rows_are_free(owner_membership):
    """The worker pauses inside its Stripe call; meanwhile, from another connection, its own connection shows no
    open transaction (PostgreSQL: `idle` in pg_stat_activity, not `idle in transaction`) and the invoice and
    payment rows can be locked at once (NOWAIT; SQLite: the database's write lock can be taken at once)."""
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 6)
    at_stripe, looked = threading.Event(), threading.Event()
    seen = {}
    real_create = payments._create_intent

    def create_slowly(*args, **kwargs):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                seen["pid"] = cursor.fetchone()[0]
        at_stripe.set()
        looked.wait(timeout=30)
        return real_create(*args, **kwargs)

    def worker():
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(payments, "_create_intent", create_slowly)
                seen["outcome"] = payments.charge_invoice(invoice.pk).status
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert at_stripe.wait(timeout=30)
        seen.update(probe_from_another_connection(invoice, seen.get("pid")))
    finally:
        looked.set()
        thread.join(timeout=60)

    assert seen["outcome"] == "succeeded"
    if connection.vendor == "postgresql":
        assert (seen["state"], seen["invoice_locked"], seen["payment_locked"]) == ("idle", True, True)
    else:
        assert seen["write_lock_taken"] is True
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]


def probe_from_another_connection(invoice: Invoice, worker_pid: int | None) -> dict:
    if connection.vendor == "sqlite":
        other = sqlite3.connect(connection.settings_dict["NAME"], timeout=1, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return {"write_lock_taken": True}
        except sqlite3.OperationalError:  # database is locked
            return {"write_lock_taken": False}
        finally:
            other.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [worker_pid])
        (state,) = cursor.fetchone()
    return {
        "state": state,
        "invoice_locked": lockable_at_once(Invoice.objects.filter(pk=invoice.pk)),
        "payment_locked": lockable_at_once(Payment.objects.filter(invoice=invoice)),
    }


def lockable_at_once(rows) -> bool:
    try:
        with transaction.atomic():
            return len(rows.select_for_update(nowait=True)) > 0
    except DatabaseError:  # could not obtain lock on row
        return False


WORKER_KILLED_AT_STRIPE = """
import sys, time, django
django.setup()
from billing import payments
real_create = payments._create_intent
def create_then_hang(*args, **kwargs):
    intent, failure = real_create(*args, **kwargs)
    print("created", intent.id, flush=True)
    time.sleep(600)  # killed here: Stripe has answered, nothing of it is written down
payments._create_intent = create_then_hang
payments.charge_invoice(int(sys.argv[1]))
"""


def test_a_dead_workers_claim_is_taken_over_once_it_expires_without_a_second_payment_intent(
    owner_membership, localstripe
):
    """A real worker process is killed (SIGKILL: no exception handler, no cleanup) right after localstripe created
    its PaymentIntent. Until its claim expires, other workers leave the attempt alone; after, one takes it over,
    finds that PaymentIntent by its metadata and records it. A second PaymentIntent would show (the strict layer
    replays a key only for the same parameters)."""
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 7)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "STRIPE_API_BASE": localstripe.api_base,
        "STRIPE_SECRET_KEY": "sk_test_ignition_tests",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER_KILLED_AT_STRIPE, str(invoice.pk)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([worker.stdout], [], [], 60)
        assert ready, f"the worker never reached Stripe: {worker.stderr.read() if worker.poll() is not None else ''}"
        created = worker.stdout.readline().split()[-1]
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

    claimed = Payment.objects.get(invoice=invoice)
    assert (claimed.status, claimed.stripe_payment_intent_id, bool(claimed.claimed_by)) == ("processing", "", True)
    assert tasks.charge_invoice(invoice.pk) is None  # the claim is live: a duplicate task leaves the attempt alone
    assert payments.reconcile(stuck_after=timedelta(0)) == 0  # and so does the reconciliation

    with time_machine.travel(claimed.claimed_until + timedelta(seconds=1)):
        assert tasks.charge_invoice(invoice.pk) == "succeeded"  # the task, redelivered after the claim expired

    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.stripe_payment_intent_id, payment.claimed_by) == ("succeeded", created, "")
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert [(intent.id, intent.status) for intent in intents_for(invoice)] == [(created, "succeeded")]


def test_a_claim_outlasts_the_charge_task_and_any_stripe_call():
    assert tasks.charge_invoice.time_limit == payments.CHARGE_TIME_LIMIT
    assert timedelta(seconds=payments.CHARGE_TIME_LIMIT) < payments.LEASE
    assert payments.LEASE > LONGEST_CALL


def test_a_charge_begun_while_staff_cancel_the_payments_keeps_the_invoice_from_being_voided(
    owner_membership, stripe_calls
):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    (waiting,) = Payment.objects.filter(invoice=invoice).values_list("stripe_payment_intent_id", flat=True)
    # Dunning's retry begins while staff's void is at Stripe cancelling the waiting PaymentIntent.
    stripe_calls.before[("POST", f"/v1/payment_intents/{waiting}/cancel")] = lambda: in_another_thread(
        lambda: payments._begin_attempt(invoice.pk, attempt=2, on_session=False)
    )

    with pytest.raises(backoffice.BackOfficeError, match="in flight"):
        backoffice.void_invoice(invoice.pk, staff=None, reason="Goodwill")

    assert Invoice.objects.get(pk=invoice.pk).status == "past_due"  # the attempt's outcome decides, not a void
    assert not BillingEvent.objects.filter(team_id=invoice.team_id, kind="invoice").exists()


def test_a_plan_switch_while_the_card_is_being_detached_finds_no_card(owner_membership, stripe_calls):
    store_card(owner_membership, VISA)
    method = Subscription.objects.get(team_id=owner_membership.team_id).payment_method_id
    switched = {}

    def upgrade():
        try:
            services.switch_plan(actor=owner_membership, plan_code="payg")
        except services.PlanChangeError as refused:
            switched["refused"] = str(refused)

    stripe_calls.before[("POST", f"/v1/payment_methods/{method}/detach")] = lambda: in_another_thread(upgrade)

    cards.remove_card(owner_membership)

    assert "card" in switched["refused"]
    subscription = Subscription.objects.select_related("plan").get(team_id=owner_membership.team_id)
    assert (subscription.plan.code, subscription.card_on_file) == ("free", False)


def test_two_owners_opening_the_card_form_at_once_share_one_stripe_customer(owner_membership, make_member):
    other_owner = make_member(Role.OWNER, team=owner_membership.team)
    both_at_stripe, created = threading.Barrier(2), []
    real_request = stripe.RequestsClient.request_with_retries

    def create_together(client, method, url, *args, **kwargs):
        creating = method.upper() == "POST" and url.endswith("/v1/customers")
        if creating:
            both_at_stripe.wait(timeout=10)  # each has found no Customer stored and asks Stripe for one
        body, status, headers = real_request(client, method, url, *args, **kwargs)
        if creating:
            created.append(json.loads(body)["id"])
        return body, status, headers

    results = {}

    def open_card_form(membership):
        try:
            results[membership.pk] = cards.ensure_customer(membership)
        finally:
            connection.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stripe.RequestsClient, "request_with_retries", create_together)
        threads = [threading.Thread(target=open_card_form, args=(m,)) for m in (owner_membership, other_owner)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    stored = Subscription.objects.get(team_id=owner_membership.team_id).stripe_customer_id
    assert sorted(results.values()) == [stored, stored]
    # Both asked with the same idempotency key and parameters: as on Stripe (tests/strict_stripe.py keeps the key),
    # one Customer was made and both answers name it, so neither run deleted it as a spare.
    assert created == [stored, stored]
    assert stripe_client().v1.customers.retrieve(stored).id == stored


# The reconciliation goes on past a payment it cannot reconcile


def test_the_reconciliation_settles_the_other_attempts_when_one_payment_intent_is_unknown(
    make_member, monkeypatch, caplog
):
    invoices = []
    for n in range(3):
        owner = make_member(Role.OWNER, team=TeamFactory(), email=f"stuck-{n}@example.com")
        store_card(owner, VISA)
        invoices.append(pay_as_you_go_invoice(owner, n + 4))
    monkeypatch.setattr(payments, "_finish", lambda *args, **kwargs: (_ for _ in ()).throw(SystemExit("killed")))
    for invoice in invoices:  # each charged at Stripe, its run dead before it recorded anything
        with pytest.raises(SystemExit):
            payments.charge_invoice(invoice.pk)
    monkeypatch.undo()
    bad = Payment.objects.get(invoice=invoices[-1])  # the newest: the one looked at first
    Payment.objects.filter(pk=bad.pk).update(stripe_payment_intent_id="pi_unknowntolocalstripe")

    with pytest.raises(payments.ReconciliationIncomplete) as incomplete:
        payments.reconcile(stuck_after=timedelta(0))

    assert incomplete.value.looked_at == 3
    assert [(payment_id, error.split(":")[0]) for payment_id, error in incomplete.value.failed] == [
        (bad.pk, "InvalidRequestError")
    ]
    assert f"Could not reconcile payment {bad.pk} of invoice {invoices[-1].number}" in caplog.text
    statuses = [Invoice.objects.get(pk=invoice.pk).status for invoice in invoices]
    assert statuses == ["paid", "paid", "open"]
    assert Payment.objects.get(pk=bad.pk).status == "processing"  # left for staff, named in the error
    assert [len(intents_for(invoice)) for invoice in invoices] == [1, 1, 1]  # found, not charged again


def test_the_reconciliation_goes_on_when_stripe_cannot_be_reached_for_one_payment(
    owner_membership, make_member, stripe_calls
):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    first = Payment.objects.get(invoice=invoice)
    intent = stripe_client().v1.payment_intents.retrieve(first.stripe_payment_intent_id)
    authenticate_in_the_browser(intent.id, intent.client_secret)  # paid on-session, its webhook lost
    other = past_due_invoice(make_member(Role.OWNER, team=TeamFactory()), DECLINED_ON_CHARGE)  # looked at first
    unreachable = Payment.objects.get(invoice=other).stripe_payment_intent_id

    def connection_lost():
        raise stripe.APIConnectionError("connection reset")

    stripe_calls.before[("GET", f"/v1/payment_intents/{unreachable}")] = connection_lost

    with pytest.raises(payments.ReconciliationIncomplete, match="APIConnectionError"):
        payments.reconcile(stuck_after=timedelta(0))

    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
