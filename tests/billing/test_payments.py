"""Charging invoices with the real stripe SDK against localstripe: paid once, declined handled, retries safe.

"Exactly once" is proven by counting: after every scenario there is exactly one PaymentIntent in localstripe
whose metadata names the invoice's attempt. localstripe alone ignores idempotency keys; the strict layer in front of
it (tests/strict_stripe.py) keeps them as Stripe does, so a retry with the same key and parameters is answered
with the first PaymentIntent, and the same key with other parameters is refused.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from accounts.roles import Role
from billing import cards, closing, lifecycle, payments, services
from billing.models import BillingEvent, Invoice, Payment
from billing.stripe_gateway import stripe_client
from tests.billing.usage import count_billable_requests

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="payer@example.com")


def store_card(owner, payment_method: str):
    """Store a test card (a test PaymentMethod id, as Stripe's testing guide has it: `pm_card_visa`, …; never a raw
    number through the secret key) through the card flow: SetupIntent, confirmed with it, then stored."""
    intent = cards.start_card_setup(owner)
    stripe_client().v1.setup_intents.confirm(intent.id, params={"payment_method": payment_method})
    return cards.finish_card_setup(owner, intent.id)


def pay_as_you_go_invoice(owner, requests: int) -> Invoice:
    """Upgrade, make `requests` billable requests, and close the period: an open invoice of requests × 15 cents."""
    services.switch_plan(actor=owner, plan_code="payg")
    count_billable_requests(owner.team, requests)
    period = lifecycle.current_period(owner.team_id)
    return closing.close_period(period.pk, now=period.end + timedelta(hours=2))


def intents_for(invoice: Invoice) -> list:
    return [
        intent
        for intent in stripe_client().v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        if intent.metadata and intent.metadata.to_dict().get("invoice_id") == str(invoice.public_id)
    ]


def test_a_good_card_pays_the_invoice_once_and_sends_a_receipt(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 50)
    assert invoice.total_cents == 750
    send_queued_emails()
    mail.outbox.clear()  # the plan switch's email; this test is about the charge's

    with django_capture_on_commit_callbacks(execute=True):
        payment = payments.charge_invoice(invoice.pk)
    send_queued_emails()

    invoice.refresh_from_db()
    assert (payment.status, invoice.status, invoice.paid_at is not None) == ("succeeded", "paid", True)
    (intent,) = intents_for(invoice)
    assert (intent.amount, intent.status, intent.id) == (750, "succeeded", payment.stripe_payment_intent_id)
    assert payment.idempotency_key == f"invoice-{invoice.public_id}-attempt-1"
    assert [m.subject for m in mail.outbox] == [f"Receipt for Ignition invoice {invoice.number}"]
    assert "$7.50" in mail.outbox[0].body
    assert BillingEvent.objects.filter(kind="payment", team_id=invoice.team_id).count() == 1


def test_charging_again_changes_nothing(owner_membership):
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 10)
    payments.charge_invoice(invoice.pk)

    assert payments.charge_invoice(invoice.pk) is None
    assert len(intents_for(invoice)) == 1
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_a_worker_dying_after_stripe_answered_is_retried_without_a_second_charge(owner_membership, monkeypatch):
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 10)

    # Fault injection in our own code (not a mock of Stripe): the run dies right after Stripe's answer,
    # before the PaymentIntent's id is written down, as a killed worker would.
    def die(payment, intent):
        raise SystemExit("worker killed")

    monkeypatch.setattr(payments, "_remember_intent", die)
    with pytest.raises(SystemExit):
        payments.charge_invoice(invoice.pk)
    assert Payment.objects.get(invoice=invoice).status == "processing"
    monkeypatch.undo()

    payment = payments.charge_invoice(invoice.pk)  # the task, redelivered (acks_late)

    assert payment.status == "succeeded" and payment.attempt == 1
    assert len(intents_for(invoice)) == 1


def test_a_declined_card_leaves_the_invoice_past_due_and_tells_the_owners(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    store_card(owner_membership, "pm_card_chargeCustomerFail")  # attaches, then fails to charge
    invoice = pay_as_you_go_invoice(owner_membership, 10)

    with django_capture_on_commit_callbacks(execute=True):
        payment = payments.charge_invoice(invoice.pk)
    send_queued_emails()

    invoice.refresh_from_db()
    assert (payment.status, payment.failure_code, invoice.status) == ("failed", "card_declined", "past_due")
    assert len(intents_for(invoice)) == 1
    assert mail.outbox[-1].subject == f"Payment failed for Ignition invoice {invoice.number}"

    assert payments.charge_invoice(invoice.pk) is None  # a duplicate first-charge task: attempt 1 is made already
    retry = payments.charge_invoice(invoice.pk, attempt=2)  # dunning's retry is a new attempt with a new key
    assert (retry.attempt, retry.idempotency_key) == (2, f"invoice-{invoice.public_id}-attempt-2")
    assert payments.charge_invoice(invoice.pk, attempt=2) is None  # the same retry task, delivered twice
    assert Payment.objects.filter(invoice=invoice).count() == 2 and len(intents_for(invoice)) == 2


def test_zero_and_paid_invoices_are_not_charged(owner_membership):
    period = lifecycle.current_period(owner_membership.team_id)
    free_invoice = closing.close_period(period.pk, now=period.end + timedelta(hours=2))
    assert free_invoice.status == "paid"
    assert payments.charge_invoice(free_invoice.pk) is None
    assert intents_for(free_invoice) == []


def test_without_a_card_the_attempt_fails_without_calling_stripe(owner_membership):
    lifecycle.subscription_for(owner_membership.team_id).__class__.objects.filter(
        team_id=owner_membership.team_id
    ).update(card_on_file=True)
    invoice = pay_as_you_go_invoice(owner_membership, 5)
    payment = payments.charge_invoice(invoice.pk)
    assert (payment.status, payment.failure_code) == ("failed", "no_card")
    assert intents_for(invoice) == []


def test_the_sweep_finds_new_invoices_to_charge_once(owner_membership):
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    assert payments.invoices_to_charge() == [invoice.pk]
    payments.charge_invoice(invoice.pk)
    assert payments.invoices_to_charge() == []


def test_the_close_command_charges_the_invoices_it_issues_once(owner_membership):
    """What a newcomer does on `make run`: upgrade with 4242…, close the period, see the invoice paid."""
    store_card(owner_membership, "pm_card_visa")
    services.switch_plan(actor=owner_membership, plan_code="payg")
    count_billable_requests(owner_membership.team, 4)
    after_the_period = (lifecycle.current_period(owner_membership.team_id).end + timedelta(hours=2)).isoformat()

    out = StringIO()
    call_command("close_billing_periods", "--now", after_the_period, "--allow-future", stdout=out)
    call_command("close_billing_periods", "--now", after_the_period, "--allow-future", stdout=out)

    invoice = Invoice.objects.get(team=owner_membership.team)
    assert f"{invoice.number}  {owner_membership.team}  $0.60  Paid" in out.getvalue()
    assert "Closed 0 period(s)." in out.getvalue()
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]
