"""Charging an invoice with Stripe, exactly once (DESIGN §5).

1. Under the invoice's row lock, write (or find) the in-flight Payment attempt. Its idempotency key,
   `invoice-<invoice uuid>-attempt-<n>`, is reused by every retry of that attempt, and the database allows one
   in-flight attempt per invoice.
2. Ask Stripe: a PaymentIntent `off_session=True, confirm=True` on the team's default card, with the
   key and the invoice in its metadata. If a previous run of this attempt may already have created
   one (the worker died after Stripe answered, before we wrote the id down), look for it by its
   metadata first. Real Stripe would also return the same PaymentIntent for the same key, but
   localstripe ignores keys, so this bookkeeping is what guarantees one PaymentIntent per attempt.
3. Under the lock again, record the outcome: succeeded → invoice paid (a receipt email); declined or
   authentication required → the attempt failed and the invoice is past due (an email).

Built so far (payments issue, in progress). Dunning retries, suspension, the on-session payment
page and webhooks come next.
"""

import logging
from datetime import timedelta

import stripe
from django.db import transaction
from django.utils import timezone

from billing import dunning
from billing.alerts import owner_emails
from billing.models import BillingEvent, Invoice, Payment, Subscription
from billing.stripe_gateway import as_dict, stripe_client
from dashboard.emails import send_templated_email

logger = logging.getLogger("billing.payments")

CHARGEABLE = (Invoice.Status.OPEN, Invoice.Status.PAST_DUE)
STUCK_AFTER = timedelta(hours=1)  # an attempt still processing after this is looked at by the reconciliation


def invoices_to_charge() -> list[int]:
    """Open invoices with something to pay and no attempt yet (their first charge); dunning comes later."""
    return list(
        Invoice.objects.filter(status=Invoice.Status.OPEN, total_cents__gt=0, payments__isnull=True)
        .order_by("issued_at", "id")
        .values_list("pk", flat=True)
    )


def charge_invoice(invoice_id: int) -> Payment | None:
    """Charge the invoice's total to the team's card; None if there is nothing to charge."""
    begun = _begin_attempt(invoice_id)
    if begun is None:
        return None
    payment, retrying = begun
    subscription = Subscription.objects.get(team_id=payment.invoice.team_id)
    if not subscription.payment_method_id:
        return _finish(payment.pk, None, failure=("no_card", "There is no card on file to charge."))
    intent, failure = _charge(payment, subscription, retrying=retrying)
    return _finish(payment.pk, intent, failure=failure)


def _begin_attempt(invoice_id: int) -> tuple[Payment, bool] | None:
    """The attempt to run and whether it is a retry of one already begun; None if nothing is due."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status not in CHARGEABLE or invoice.total_cents <= 0:
            return None
        in_flight = invoice.payments.filter(status=Payment.Status.PROCESSING).first()
        if in_flight is not None:
            return in_flight, True  # the same attempt again: same idempotency key
        attempt = invoice.payments.count() + 1
        payment = Payment.objects.create(
            invoice=invoice,
            attempt=attempt,
            idempotency_key=f"invoice-{invoice.public_id}-attempt-{attempt}",
            amount_cents=invoice.total_cents,
        )
        return payment, False


def _charge(payment: Payment, subscription: Subscription, *, retrying: bool):
    """The PaymentIntent of this attempt, created now or found; and the failure (code, message) if any."""
    client = stripe_client()
    intent = None
    if payment.stripe_payment_intent_id:
        intent = client.v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    elif retrying:  # a run of this attempt may have reached Stripe and died before writing the id down
        intent = find_intent(payment.idempotency_key)
        _remember_intent(payment, intent)
    if intent is not None:
        return intent, _failure_of(intent)
    try:
        intent = client.v1.payment_intents.create(
            params={
                "amount": payment.amount_cents,
                "currency": payment.invoice.currency,
                "customer": subscription.stripe_customer_id,
                "payment_method": subscription.payment_method_id,
                "off_session": True,
                "confirm": True,
                "metadata": {
                    "invoice_id": str(payment.invoice.public_id),
                    "invoice_number": payment.invoice.number,
                    "payment_key": payment.idempotency_key,
                },
            },
            options={"idempotency_key": payment.idempotency_key},
        )
    except stripe.CardError as error:  # declined, or the bank wants the customer present (3-D Secure)
        intent = find_intent(payment.idempotency_key)  # it exists, failed; keep its id for the records
        _remember_intent(payment, intent)
        return intent, (error.code or "card_declined", error.user_message or str(error))
    _remember_intent(payment, intent)
    return intent, _failure_of(intent)


def find_intent(payment_key: str):
    """The PaymentIntent created for this attempt, by its metadata, if there is one."""
    for intent in stripe_client().v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
        if as_dict(intent.metadata).get("payment_key") == payment_key:
            return intent
    return None


def reconcile(*, stuck_after=None) -> int:
    """Compare our open attempts with Stripe and fix drift (the nightly task); how many were looked at.

    An attempt still `processing` with a PaymentIntent (its run died, its webhook was lost) gets the
    PaymentIntent's current state; one without (it may never have reached Stripe) is run again as the
    same attempt, which finds its PaymentIntent by metadata or creates it once. A failed attempt whose
    PaymentIntent has since succeeded (paid on-session, webhook lost) is recorded as paid.
    """
    cutoff = timezone.now() - (STUCK_AFTER if stuck_after is None else stuck_after)
    open_invoices = (Invoice.Status.OPEN, Invoice.Status.PAST_DUE)
    looked_at = 0
    stuck = Payment.objects.filter(
        status=Payment.Status.PROCESSING, invoice__status__in=open_invoices, updated_at__lte=cutoff
    )
    for payment in stuck.select_related("invoice"):
        looked_at += 1
        if payment.stripe_payment_intent_id:
            record_intent(payment, stripe_client().v1.payment_intents.retrieve(payment.stripe_payment_intent_id))
        else:
            charge_invoice(payment.invoice_id)
    failed = Payment.objects.filter(status=Payment.Status.FAILED, invoice__status=Invoice.Status.PAST_DUE).exclude(
        stripe_payment_intent_id=""
    )
    for payment in failed:
        looked_at += 1
        intent = stripe_client().v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
        if intent.status == "succeeded":
            record_intent(payment, intent)
    return looked_at


def record_intent(payment: Payment, intent) -> Payment:
    """Record a PaymentIntent's current state on its attempt (webhooks, reconciliation); forward only."""
    return _finish(payment.pk, intent, failure=_failure_of(intent))


def _remember_intent(payment: Payment, intent) -> None:
    if intent is not None and not payment.stripe_payment_intent_id:
        Payment.objects.filter(pk=payment.pk).update(stripe_payment_intent_id=intent.id)
        payment.stripe_payment_intent_id = intent.id


def _failure_of(intent) -> tuple[str, str] | None:
    if intent.status == "succeeded":
        return None
    if intent.status == "requires_action":
        return "authentication_required", "Your bank asks you to confirm this payment."
    if intent.status in ("requires_payment_method", "canceled"):
        error = as_dict(intent.last_payment_error)
        return error.get("code") or "card_declined", error.get("message") or "The card was declined."
    return "processing", ""


def _finish(payment_id: int, intent, *, failure) -> Payment:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("invoice").get(pk=payment_id)
        invoice = Invoice.objects.select_for_update().get(pk=payment.invoice_id)
        # Forward only: processing → succeeded or failed, and failed → succeeded (the customer paid on-session).
        if payment.status == Payment.Status.SUCCEEDED or (payment.status == Payment.Status.FAILED and failure):
            return payment  # recorded already (another run, a duplicate or stale webhook)
        if intent is not None and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent.id
        if failure is not None and failure[0] == "processing":
            payment.save(update_fields=["stripe_payment_intent_id", "updated_at"])
            return payment  # Stripe is still working on it; a later run (or the webhook) records the outcome
        now = timezone.now()
        if failure is None:
            payment.status = Payment.Status.SUCCEEDED
            invoice.status, invoice.paid_at = Invoice.Status.PAID, now
            template = "invoice-paid"
        else:
            payment.status = Payment.Status.FAILED
            payment.failure_code, payment.failure_message = failure[0][:64], failure[1][:300]
            invoice.status = Invoice.Status.PAST_DUE
            template = "invoice-past-due"
        payment.save()
        invoice.save(update_fields=["status", "paid_at"])
        if failure is None:
            dunning.lift_if_paid_up(invoice.team_id)  # paying the last past-due invoice lifts a suspension at once
        else:
            dunning.mark_past_due(invoice.team_id)
        BillingEvent.objects.create(
            team_id=invoice.team_id,
            period_id=invoice.period_id,
            kind=BillingEvent.Kind.PAYMENT,
            after={
                "invoice": invoice.number,
                "attempt": payment.attempt,
                "status": payment.status,
                "amount_cents": payment.amount_cents,
                "failure_code": payment.failure_code,
                "payment_intent": payment.stripe_payment_intent_id,
            },
        )
        recipients = owner_emails(invoice.team_id)
        if recipients:
            context = {"invoice": invoice, "payment": payment}
            transaction.on_commit(lambda: _send(template, recipients, context))
    return payment


def _send(template: str, recipients: list[str], context: dict) -> None:
    try:
        send_templated_email(template, to=recipients, context=context)
    except Exception:  # the payment is recorded; an email failure must not undo or repeat it
        logger.exception("Could not send %s for invoice %s", template, context["invoice"].number)
