"""Refunds and disputes made in Stripe, recorded on our invoices (billing.webhooks calls these).

Refunds are made in Stripe's dashboard, and disputes are opened by the cardholder's bank; neither goes through
Ignition, so the invoice would stay "paid" as if nothing happened. The invoice is found through the charge's
PaymentIntent (our `Payment.stripe_payment_intent_id`); it keeps its status (it was paid) and records what
happened to the money since: `refunded_cents`, and the dispute's status and reason. Each change is a
`BillingEvent` and an email to staff (BILLING_STAFF_EMAILS) through the outbox, in the same transaction.

Refunds: the charge is fetched from Stripe again and its `amount_refunded` (the total of its refunds) recorded
as it is now, so replays, duplicates and reordered events record the same total once. Disputes: Stripe's
signed event is used as sent (localstripe has no disputes API to fetch one from); the dispute's status only
moves forward, so a late `charge.dispute.created` never reopens a closed dispute.
"""

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.models import BillingEvent, Invoice
from billing.stripe_gateway import stripe_client
from notifications.outbox import queue_templated_email

logger = logging.getLogger("billing.webhooks")

# Stripe's final dispute statuses: the money is settled (returned to us, or kept by the cardholder).
CLOSED_DISPUTE = ("won", "lost", "warning_closed", "prevented")
DISPUTE_WORDS = {
    "won": "Dispute won",
    "lost": "Dispute lost",
    "warning_closed": "Dispute inquiry closed",
    "prevented": "Dispute prevented",
}


def dispute_label(invoice: Invoice) -> str:
    """How the invoice pages name its dispute: "Disputed" while it is open, its outcome once closed."""
    if not invoice.dispute_status:
        return ""
    return DISPUTE_WORDS.get(invoice.dispute_status, "Disputed")


def invoice_for_intent(payment_intent_id: str | None) -> Invoice | None:
    """The invoice one of whose attempts made this PaymentIntent (None for none, or another system's charge)."""
    if not payment_intent_id:
        return None
    return Invoice.objects.filter(payments__stripe_payment_intent_id=payment_intent_id).first()


def record_charge_refunds(charge_id: str) -> Invoice | None:
    """Record the charge's refunded total (as Stripe has it now) on its invoice; None if the charge is not ours."""
    charge = stripe_client().v1.charges.retrieve(charge_id)  # no transaction open meanwhile
    invoice = invoice_for_intent(charge.payment_intent)
    if invoice is None:
        logger.warning("Refunded charge %s belongs to no invoice of ours", charge_id)
        return None
    refunded = int(charge.amount_refunded or 0)
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        before = invoice.refunded_cents
        if refunded == before:
            return invoice  # a replay, a duplicate, or an event about a refund already counted
        invoice.refunded_cents = refunded
        invoice.save(update_fields=["refunded_cents"])
        BillingEvent.objects.create(
            team_id=invoice.team_id,
            period_id=invoice.period_id,
            kind=BillingEvent.Kind.REFUND,
            before={"invoice": invoice.number, "refunded_cents": before},
            after={"invoice": invoice.number, "refunded_cents": refunded, "charge": charge_id},
        )
        _tell_staff(invoice, "refund", charge_id=charge_id, previous_refunded_cents=before)
    return invoice


def record_dispute(dispute: dict) -> Invoice | None:
    """Record a dispute (from a signed `charge.dispute.*` event) on its invoice; None if the charge is not ours."""
    intent_id = dispute.get("payment_intent")
    if not intent_id and dispute.get("charge"):  # older API versions name only the charge
        intent_id = stripe_client().v1.charges.retrieve(dispute["charge"]).payment_intent
    invoice = invoice_for_intent(intent_id)
    if invoice is None:
        logger.warning("Dispute %s belongs to no invoice of ours", dispute.get("id"))
        return None
    status = str(dispute.get("status") or "needs_response")[:32]
    reason = str(dispute.get("reason") or "")[:40]
    created = dispute.get("created")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        before = {"dispute_status": invoice.dispute_status, "dispute_reason": invoice.dispute_reason}
        if invoice.dispute_status in CLOSED_DISPUTE and status not in CLOSED_DISPUTE:
            return invoice  # an older event delivered late: the dispute is already closed
        if (invoice.dispute_status, invoice.dispute_reason) == (status, reason):
            return invoice  # a replay or duplicate
        invoice.dispute_status, invoice.dispute_reason = status, reason
        if invoice.disputed_at is None:
            invoice.disputed_at = datetime.fromtimestamp(created, UTC) if isinstance(created, int) else timezone.now()
        invoice.save(update_fields=["dispute_status", "dispute_reason", "disputed_at"])
        BillingEvent.objects.create(
            team_id=invoice.team_id,
            period_id=invoice.period_id,
            kind=BillingEvent.Kind.DISPUTE,
            before={"invoice": invoice.number, **before},
            after={
                "invoice": invoice.number,
                "dispute_status": status,
                "dispute_reason": reason,
                "dispute": dispute.get("id", ""),
            },
        )
        _tell_staff(invoice, "dispute", dispute_id=dispute.get("id", ""))
    return invoice


def _tell_staff(invoice: Invoice, what: str, **context) -> None:
    """Email BILLING_STAFF_EMAILS (queued in the caller's transaction); with none set, the log says so."""
    recipients = list(settings.BILLING_STAFF_EMAILS)
    if not recipients:
        logger.warning("Invoice %s: %s recorded, but BILLING_STAFF_EMAILS is empty: no one is emailed", invoice, what)
        return
    context = {
        "invoice": invoice,
        "team": invoice.team,
        "dispute_label": dispute_label(invoice),
        "admin_url": settings.SITE_ROOT + reverse("admin:billing_invoice_change", args=[invoice.pk]),
        **context,
    }
    queue_templated_email(f"staff-invoice-{what}", to=recipients, context=context)
