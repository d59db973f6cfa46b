"""Refunds and disputes made in Stripe reach the invoice they concern, through the real webhook view.

The invoice is paid for real at localstripe, refunded there with `refunds.create`, and the `charge.refunded`
event is signed and posted as Stripe would (localstripe sends none for refunds); the handler fetches the charge
again, so what it records is localstripe's refunded total, whatever the event body says. localstripe has no
disputes, so `charge.dispute.*` events carry the dispute Stripe would send.
"""

import json
import logging
import time
import uuid

import pytest

from accounts.roles import Role
from billing import payments
from billing.models import BillingEvent, Invoice, StripeEvent
from billing.stripe_gateway import stripe_client
from notifications.models import OutboundEmail
from tests.billing.test_payments import pay_as_you_go_invoice, store_card
from tests.billing.test_webhooks import post_signed
from tests.conftest import login_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

STAFF = ["billing-staff@example.com"]


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="refunds@example.com")


@pytest.fixture
def staff_emails(settings):
    settings.BILLING_STAFF_EMAILS = STAFF
    return STAFF


@pytest.fixture
def paid(owner_membership) -> tuple[Invoice, str, str]:
    """A Pay-as-you-go invoice of 4 requests ($0.60) charged to a card at localstripe: it, its PaymentIntent and
    its charge."""
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    payment = payments.charge_invoice(invoice.pk)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total_cents) == ("paid", 60)
    latest = stripe_client().v1.payment_intents.retrieve(payment.stripe_payment_intent_id).latest_charge
    return invoice, payment.stripe_payment_intent_id, getattr(latest, "id", latest)


def deliver(client, settings, event_type: str, stripe_object: dict, *, event_id: str | None = None):
    event_id = event_id or f"evt_{uuid.uuid4().hex[:14]}"
    body = json.dumps({"id": event_id, "object": "event", "type": event_type, "data": {"object": stripe_object}})
    response = post_signed(client, body.encode(), settings.STRIPE_WEBHOOK_SECRET)
    assert response.status_code == 200, response.content
    return StripeEvent.objects.get(event_id=event_id)


def refund(intent_id: str, amount: int | None = None) -> None:
    params = {"payment_intent": intent_id, **({"amount": amount} if amount else {})}
    stripe_client().v1.refunds.create(params=params)


def staff_emails_sent(template: str) -> list[OutboundEmail]:
    return list(OutboundEmail.objects.filter(template=template).order_by("pk"))


def invoice_pages(client, owner_membership, invoice: Invoice) -> tuple[str, str]:
    """The invoice's own page and the Billing tab (its invoice list), as the team's Owner sees them."""
    login_as(client, owner_membership)
    page = client.get(f"/billing/invoices/{invoice.public_id}/").content.decode()
    tab = client.get("/billing/").content.decode()
    return page, tab


# Refunds


def test_a_partial_refund_in_stripe_shows_on_the_invoice_and_tells_staff(
    client, settings, owner_membership, paid, staff_emails
):
    invoice, intent_id, charge_id = paid
    refund(intent_id, 45)

    event = deliver(client, settings, "charge.refunded", {"id": charge_id, "object": "charge", "amount_refunded": 45})

    assert event.error == ""
    invoice.refresh_from_db()
    assert (invoice.status, invoice.refunded_cents) == ("paid", 45)
    page, tab = invoice_pages(client, owner_membership, invoice)
    assert "Refunded $0.45</span>" in page and "$0.45 of $0.60, to the card it was charged to" in page
    assert "Refunded $0.45</span>" in tab
    recorded = BillingEvent.objects.get(team=invoice.team, kind=BillingEvent.Kind.REFUND)
    assert recorded.before["refunded_cents"] == 0 and recorded.after["refunded_cents"] == 45
    (email,) = staff_emails_sent("staff-invoice-refund")
    assert email.recipients == STAFF
    assert email.subject == f"Invoice {invoice.number} refunded in Stripe: $0.45 of $0.60 ({invoice.team.name})"
    assert charge_id in email.text_body and f"/admin/billing/invoice/{invoice.pk}/change/" in email.text_body


def test_the_refunded_total_is_stripes_not_the_events_and_replays_count_it_once(client, settings, paid, staff_emails):
    invoice, intent_id, charge_id = paid
    refund(intent_id, 20)
    forged_amount = {"id": charge_id, "object": "charge", "amount_refunded": 60}  # signed, but stale or wrong

    deliver(client, settings, "charge.refunded", forged_amount, event_id="evt_refund_1")
    deliver(client, settings, "charge.refunded", forged_amount, event_id="evt_refund_1")  # a duplicate delivery
    deliver(client, settings, "charge.refunded", forged_amount)  # another event about the same refund

    invoice.refresh_from_db()
    assert invoice.refunded_cents == 20
    assert BillingEvent.objects.filter(kind=BillingEvent.Kind.REFUND).count() == 1
    assert len(staff_emails_sent("staff-invoice-refund")) == 1

    refund(intent_id, 40)  # the rest, in a second refund
    deliver(client, settings, "charge.refunded", {"id": charge_id, "object": "charge"})

    invoice.refresh_from_db()
    assert invoice.refunded_cents == 60
    assert BillingEvent.objects.filter(kind=BillingEvent.Kind.REFUND).count() == 2
    assert len(staff_emails_sent("staff-invoice-refund")) == 2


def test_a_refund_of_a_charge_that_is_not_ours_changes_nothing(client, settings, paid, staff_emails):
    """Another product's charge in the same Stripe account is acknowledged and left alone; a charge Stripe does not
    know keeps Stripe's answer on the stored event, for staff. Neither touches an invoice."""
    invoice, _, _ = paid
    subscription = invoice.team.subscription
    params = {"amount": 500, "currency": "usd", "customer": subscription.stripe_customer_id, "confirm": True}
    params.update(payment_method=subscription.payment_method_id, off_session=True)
    other = stripe_client().v1.payment_intents.create(params=params)
    refund(other.id)
    other_charge = getattr(other.latest_charge, "id", other.latest_charge)

    assert deliver(client, settings, "charge.refunded", {"id": other_charge, "object": "charge"}).error == ""
    unknown = deliver(client, settings, "charge.refunded", {"id": "ch_unknown", "object": "charge"})
    assert unknown.error.startswith("InvalidRequestError")

    invoice.refresh_from_db()
    assert invoice.refunded_cents == 0
    assert not BillingEvent.objects.filter(kind=BillingEvent.Kind.REFUND).exists()
    assert not staff_emails_sent("staff-invoice-refund")


def test_without_staff_emails_the_refund_is_still_recorded_and_logged(client, settings, paid, caplog):
    settings.BILLING_STAFF_EMAILS = []
    invoice, intent_id, charge_id = paid
    refund(intent_id)

    with caplog.at_level(logging.WARNING, logger="billing.webhooks"):
        deliver(client, settings, "charge.refunded", {"id": charge_id, "object": "charge"})

    invoice.refresh_from_db()
    assert invoice.refunded_cents == 60
    assert "BILLING_STAFF_EMAILS is empty" in caplog.text
    assert not staff_emails_sent("staff-invoice-refund")


# Disputes


def dispute(intent_id: str | None, charge_id: str, status: str) -> dict:
    """A dispute object as Stripe sends it in `charge.dispute.*` events."""
    return {
        "id": "dp_1Test",
        "object": "dispute",
        "amount": 60,
        "charge": charge_id,
        "payment_intent": intent_id,
        "status": status,
        "reason": "fraudulent",
        "created": int(time.time()) - 60,
    }


def test_a_dispute_shows_on_the_invoice_and_tells_staff_until_it_closes(
    client, settings, owner_membership, paid, staff_emails
):
    invoice, intent_id, charge_id = paid

    deliver(client, settings, "charge.dispute.created", dispute(intent_id, charge_id, "needs_response"))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.dispute_status, invoice.dispute_reason) == ("paid", "needs_response", "fraudulent")
    assert invoice.disputed_at is not None
    page, tab = invoice_pages(client, owner_membership, invoice)
    assert 'invoice-disputed">Disputed</span>' in page and "(reason: fraudulent)" in page
    assert 'invoice-disputed">Disputed</span>' in tab
    (email,) = staff_emails_sent("staff-invoice-dispute")
    assert email.recipients == STAFF and "answer it in Stripe's dashboard" in email.text_body

    deliver(client, settings, "charge.dispute.closed", dispute(intent_id, charge_id, "lost"))
    deliver(client, settings, "charge.dispute.created", dispute(intent_id, charge_id, "needs_response"))  # late

    invoice.refresh_from_db()
    assert invoice.dispute_status == "lost"  # a closed dispute is never reopened by an older event
    page, tab = invoice_pages(client, owner_membership, invoice)
    assert "Dispute lost</span>" in page and "Dispute lost</span>" in tab
    kinds = BillingEvent.objects.filter(kind=BillingEvent.Kind.DISPUTE).order_by("pk")
    assert [event.after["dispute_status"] for event in kinds] == ["needs_response", "lost"]
    assert len(staff_emails_sent("staff-invoice-dispute")) == 2


def test_a_dispute_naming_only_its_charge_is_found_through_stripe(client, settings, paid, staff_emails):
    invoice, _, charge_id = paid

    deliver(client, settings, "charge.dispute.created", dispute(None, charge_id, "warning_needs_response"))

    invoice.refresh_from_db()
    assert invoice.dispute_status == "warning_needs_response"


def test_a_duplicate_dispute_event_is_recorded_once(client, settings, paid, staff_emails):
    invoice, intent_id, charge_id = paid
    for _ in range(2):
        deliver(client, settings, "charge.dispute.updated", dispute(intent_id, charge_id, "under_review"))
    assert BillingEvent.objects.filter(kind=BillingEvent.Kind.DISPUTE).count() == 1
    assert len(staff_emails_sent("staff-invoice-dispute")) == 1


@pytest.mark.parametrize("event_type", ["charge.refunded", "charge.dispute.created"])
def test_a_signed_charge_event_without_an_object_id_is_refused(client, settings, event_type):
    body = json.dumps({"id": "evt_no_id", "type": event_type, "data": {"object": {"object": "charge"}}}).encode()
    response = post_signed(client, body, settings.STRIPE_WEBHOOK_SECRET)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
