"""What staff do to invoices and Stripe events from the admin: void, mark paid, resend, replay.

Issued invoices are never edited; these are the only changes staff make to them, each under the
invoice's row lock, refused when a charge is in flight, and recorded as an `invoice` billing
event with the staff member and their reason. Voiding or marking paid first cancels the invoice's
PaymentIntents that could still be confirmed, so the customer cannot pay it a second time; if one
has in fact succeeded, it is recorded instead and the staff action is refused. The cancellations
happen between two short transactions, with no lock held; the second one settles the invoice only
if no attempt began or changed since the first looked.
"""

import logging

import stripe
from django.db import transaction
from django.utils import timezone

from billing import dunning, payments
from billing.alerts import owner_emails
from billing.models import BillingEvent, Invoice, Payment, StripeEvent
from billing.webhooks import handle
from notifications.outbox import queue_templated_email

logger = logging.getLogger("billing.backoffice")

UNSETTLED = (Invoice.Status.OPEN, Invoice.Status.PAST_DUE)


class BackOfficeError(Exception):
    """Why staff cannot do that to this invoice; shown in the admin."""


def void_invoice(invoice_id: int, *, staff, reason: str) -> Invoice:
    """Cancel an unpaid invoice: nothing more is charged for it, and a suspension it caused is lifted."""
    return _settle_by_staff(invoice_id, staff=staff, note=reason, status=Invoice.Status.VOID, action="voided")


def mark_invoice_paid(invoice_id: int, *, staff, reference: str) -> Invoice:
    """Record an unpaid invoice as paid outside Stripe (a bank transfer, invoice terms): `reference` says how."""
    return _settle_by_staff(invoice_id, staff=staff, note=reference, status=Invoice.Status.PAID, action="marked_paid")


def resend_invoice_email(invoice_id: int, *, staff) -> str:
    """Send the invoice's email again to the Owners: the receipt if paid, the past-due notice if past due."""
    invoice = Invoice.objects.get(pk=invoice_id)
    if invoice.status == Invoice.Status.PAID and invoice.total_cents > 0:
        template = "invoice-paid"
        payment = invoice.payments.filter(status=Payment.Status.SUCCEEDED).first()
    elif invoice.status == Invoice.Status.PAST_DUE:
        payment = invoice.payments.filter(status=Payment.Status.FAILED).order_by("-attempt").first()
        needs_authentication = payment is not None and payment.failure_code == Payment.NEEDS_AUTHENTICATION
        template = "invoice-needs-authentication" if needs_authentication else "invoice-past-due"
    else:
        raise BackOfficeError(f"{invoice.number} is {invoice.get_status_display().lower()}: it has no email to resend.")
    recipients = owner_emails(invoice.team_id)
    if not recipients:
        raise BackOfficeError(f"{invoice.team} has no Owner to email.")
    with transaction.atomic():
        queue_templated_email(template, to=recipients, context={"invoice": invoice, "payment": payment})
        _event(invoice, staff, "resent", {"template": template, "to": recipients})
    return template


def replay_stripe_event(event_id: int, *, staff) -> StripeEvent:
    """Apply a stored Stripe event again (one that failed to apply); its error, if any, is kept on the row."""
    event = StripeEvent.objects.get(pk=event_id)
    if not event.error:
        raise BackOfficeError(f"Event {event.event_id} was applied; there is nothing to replay.")
    handle(event)
    logger.info("Staff %s replayed Stripe event %s: %s", staff, event.event_id, event.error or "applied")
    return event


def _settle_by_staff(invoice_id: int, *, staff, note: str, status: str, action: str) -> Invoice:
    note = note.strip()
    if not note:
        raise BackOfficeError("Say why: the reason is kept with the invoice's history.")
    with transaction.atomic():
        attempts = _settleable_attempts(Invoice.objects.select_for_update().get(pk=invoice_id))
    # No transaction is open across Stripe's calls; instead, the invoice is settled below only if no attempt
    # began or changed meanwhile (a new attempt takes the invoice's lock, so it shows up in the second look).
    paid_meanwhile = _cancel_open_intents(invoice_id)
    if paid_meanwhile is not None:
        raise BackOfficeError("The customer has paid this invoice meanwhile; record it, then try again.")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if _settleable_attempts(invoice) != attempts:
            raise BackOfficeError(f"A charge of {invoice.number} was made meanwhile; look at it, then try again.")
        before = invoice.status
        invoice.status = status
        if status == Invoice.Status.PAID:
            invoice.paid_at = timezone.now()
        invoice.save(update_fields=["status", "paid_at"])
        _event(invoice, staff, action, {"before": before, "note": note})
        dunning.lift_if_paid_up(invoice.team_id)  # the last unpaid invoice settled lifts a suspension at once
    return invoice


def _settleable_attempts(invoice: Invoice) -> list[tuple[int, str]]:
    """The invoice's attempts if staff may settle it (unpaid, no charge in flight); BackOfficeError if not."""
    # A carried-forward amount no later invoice has taken yet can still be written off or recorded as paid.
    waiting = invoice.status == Invoice.Status.CARRIED and invoice.carried_to_id is None
    if invoice.status not in UNSETTLED and not waiting:
        raise BackOfficeError(f"{invoice.number} is {invoice.get_status_display().lower()} already.")
    attempts = list(invoice.payments.order_by("pk").values_list("pk", "status"))
    if any(status == Payment.Status.PROCESSING for _, status in attempts):
        raise BackOfficeError(f"A charge of {invoice.number} is in flight; try again in a few minutes.")
    return attempts


def _cancel_open_intents(invoice_id: int):
    """Cancel the invoice's PaymentIntents that could still be paid; the attempt whose one was paid, if any."""
    try:
        for payment in payments.failed_attempts_at_stripe(invoice_id):
            intent = payments.cancel_if_payable(payment.stripe_payment_intent_id)
            if intent.status in ("succeeded", "processing"):
                return payment  # its webhook (or the reconciliation) records it; staff try again after
    except stripe.StripeError as error:
        raise BackOfficeError(
            f"Stripe could not be reached ({error.user_message or error}); nothing changed."
        ) from error
    return None


def _event(invoice: Invoice, staff, action: str, details: dict) -> None:
    BillingEvent.objects.create(
        team_id=invoice.team_id,
        period_id=invoice.period_id,
        actor=staff,
        kind=BillingEvent.Kind.INVOICE,
        after={"invoice": invoice.number, "action": action, **details},
    )
