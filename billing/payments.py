"""Charging an invoice with Stripe, exactly once (DESIGN §5).

1. Under the invoice's row lock, write (or find) the in-flight Payment attempt. Its idempotency key,
   `invoice-<invoice uuid>-attempt-<n>`, is reused by every retry of that attempt, and the database allows one
   in-flight attempt per invoice.
2. Holding the attempt's row lock (so no other worker asks Stripe about it meanwhile), ask Stripe: a
   PaymentIntent `off_session=True, confirm=True` on the team's default card, with the key and the
   invoice in its metadata. If a previous run of this attempt may already have created
   one (the worker died after Stripe answered, before we wrote the id down), look for it by its
   metadata first. Real Stripe would also return the same PaymentIntent for the same key, but
   localstripe ignores keys, so this bookkeeping is what guarantees one PaymentIntent per attempt.
3. Under the lock again, record the outcome: succeeded → invoice paid (a receipt email); declined or
   authentication required → the attempt failed and the invoice is past due (an email).

A past-due invoice is retried by dunning (billing.dunning) or paid by its Owner on the invoice's pay
page (billing.pay_views): a new attempt made on-session, or the confirmation with Stripe.js of a
PaymentIntent the bank wants authenticated. Before any new attempt, the earlier attempts'
PaymentIntents are settled: one that succeeded after all is recorded instead of charging again, and
one still open is canceled, so two PaymentIntents of one invoice can never both be paid.
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
from notifications.outbox import queue_templated_email

logger = logging.getLogger("billing.payments")

CHARGEABLE = (Invoice.Status.OPEN, Invoice.Status.PAST_DUE)
CONFIRMABLE = ("requires_action", "requires_confirmation", "requires_payment_method")  # could still be paid
STUCK_AFTER = timedelta(hours=1)  # an attempt still processing after this is looked at by the reconciliation


def invoices_to_charge() -> list[int]:
    """Open invoices with something to pay and no attempt yet (their first charge); dunning comes later."""
    return list(
        Invoice.objects.filter(
            status=Invoice.Status.OPEN, total_cents__gt=0, collection=Invoice.Collection.CARD, payments__isnull=True
        )
        .order_by("issued_at", "id")
        .values_list("pk", flat=True)
    )


def charge_invoice(invoice_id: int, *, attempt: int | None = None, on_session: bool = False) -> Payment | None:
    """Charge the invoice's total to the team's card; None if there is nothing (more) to do.

    `attempt`: which attempt the caller means to make. None (the first charge, the reconciliation)
    resumes the attempt in flight or makes attempt 1 if there is none yet; dunning and the pay page
    name the next attempt they saw, so a duplicate task or a double-submitted form finds it made
    already and does nothing. `on_session`: the Owner is paying a past-due invoice on its pay page
    (the bank may then ask them to authenticate); otherwise the charge is made without them.
    """
    begun = _begin_attempt(invoice_id, attempt=attempt, on_session=on_session)
    if begun is None:
        return None
    payment, retrying = begun
    # Only the worker holding the attempt's row lock talks to Stripe about it, until the outcome is
    # recorded: a second worker (a duplicate task, the reconciliation) skips it rather than racing it
    # to create a second PaymentIntent. A dead worker's lock goes with its connection, so its retry
    # can take over (and find the PaymentIntent it may have created by its metadata). `of=self`: the
    # invoice row stays free meanwhile.
    with transaction.atomic():
        claimed = (
            Payment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=payment.pk, status=Payment.Status.PROCESSING)
            .select_related("invoice")
            .first()
        )
        if claimed is None:
            return None  # another worker is charging this attempt right now, or has just finished it
        intent = _intent_made_already(claimed, retrying=retrying)
        if intent is not None:
            return _finish(claimed.pk, intent, failure=_failure_of(intent))
        if _earlier_attempt_settles_it(claimed):
            claimed.delete()  # nothing reached Stripe for it, and nothing is left to charge for now
            return None
        subscription = Subscription.objects.get(team_id=claimed.invoice.team_id)
        if not subscription.payment_method_id:
            return _finish(claimed.pk, None, failure=("no_card", "There is no card on file to charge."))
        intent, failure = _create_intent(claimed, subscription)
        return _finish(claimed.pk, intent, failure=failure)


def _begin_attempt(invoice_id: int, *, attempt: int | None, on_session: bool) -> tuple[Payment, bool] | None:
    """The attempt to run and whether it is a retry of one already begun; None if nothing is due."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status not in CHARGEABLE or invoice.total_cents <= 0:
            return None
        if invoice.collection != Invoice.Collection.CARD:
            return None  # invoice terms: paid by transfer and marked paid by staff, never charged
        if on_session and invoice.status != Invoice.Status.PAST_DUE:
            return None  # the schedule charges an open invoice within minutes; Owners pay only past-due ones
        in_flight = invoice.payments.filter(status=Payment.Status.PROCESSING).first()
        if in_flight is not None:
            if on_session or (attempt is not None and attempt != in_flight.attempt):
                return None  # another attempt is running: the pay page says so rather than racing it
            return in_flight, True  # the same attempt again: same idempotency key
        wanted = attempt or 1
        if invoice.payments.count() != wanted - 1:
            return None  # that attempt was made already (a duplicate task, a resubmitted form)
        payment = Payment.objects.create(
            invoice=invoice,
            attempt=wanted,
            idempotency_key=f"invoice-{invoice.public_id}-attempt-{wanted}",
            amount_cents=invoice.total_cents,
            on_session=on_session,
        )
        return payment, False


def next_attempt(invoice: Invoice) -> int:
    """The number of the attempt a caller would make next (dunning, the pay page)."""
    return invoice.payments.count() + 1


def _intent_made_already(payment: Payment, *, retrying: bool):
    """This attempt's PaymentIntent if it reached Stripe: by its recorded id, or (a run that died before
    writing the id down) by its metadata."""
    if payment.stripe_payment_intent_id:
        return stripe_client().v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    if retrying:
        intent = find_intent(payment.idempotency_key, customer=_customer_of(payment))
        _remember_intent(payment, intent)
        return intent
    return None


def _create_intent(payment: Payment, subscription: Subscription):
    """Create and confirm the attempt's PaymentIntent; it and the failure (code, message), if any."""
    params = {
        "amount": payment.amount_cents,
        "currency": payment.invoice.currency,
        "customer": subscription.stripe_customer_id,
        "payment_method": subscription.payment_method_id,
        "payment_method_types": ["card"],  # a card only: no redirect-based method that would need a return_url
        "confirm": True,
        "metadata": {
            "invoice_id": str(payment.invoice.public_id),
            "invoice_number": payment.invoice.number,
            "payment_key": payment.idempotency_key,
        },
    }
    if not payment.on_session:
        params["off_session"] = True  # on-session, a bank's 3-D Secure check is answered in the pay page
    client = stripe_client()
    try:
        intent = client.v1.payment_intents.create(params=params, options={"idempotency_key": payment.idempotency_key})
    except stripe.CardError as error:  # declined, or the bank wants the customer present (3-D Secure)
        # The failed PaymentIntent exists; keep its id for the records (Stripe names it in the error).
        named = as_dict(getattr(error, "error", None)).get("payment_intent") or {}
        if named.get("id"):
            intent = client.v1.payment_intents.retrieve(named["id"])
        else:
            intent = find_intent(payment.idempotency_key, customer=subscription.stripe_customer_id)
        _remember_intent(payment, intent)
        return intent, (error.code or "card_declined", error.user_message or str(error))
    _remember_intent(payment, intent)
    return intent, _failure_of(intent)


def _earlier_attempt_settles_it(payment: Payment) -> bool:
    """Settle the PaymentIntents of the invoice's failed attempts before this new one reaches Stripe.

    True when no new charge may be made now: an earlier PaymentIntent has succeeded after all (the
    Owner confirmed it on-session and closed the tab, its webhook is late; it is recorded now), or
    is still being processed (its outcome comes by webhook or the reconciliation). One that could
    still be confirmed is canceled, so that it cannot be paid as well as the new attempt.
    """
    for earlier_payment in failed_attempts_at_stripe(payment.invoice_id).exclude(pk=payment.pk):
        intent = cancel_if_payable(earlier_payment.stripe_payment_intent_id)
        if intent.status == "succeeded":
            record_intent(earlier_payment, intent)
            return True
        if intent.status == "processing":
            return True
    return False


def failed_attempts_at_stripe(invoice_id: int):
    """The invoice's failed attempts that reached Stripe (their PaymentIntents may still be payable)."""
    return Payment.objects.filter(invoice_id=invoice_id, status=Payment.Status.FAILED).exclude(
        stripe_payment_intent_id=""
    )


def cancel_if_payable(payment_intent_id: str):
    """The PaymentIntent, canceled first if it could still be paid (if it was confirmed meanwhile, its state now)."""
    client = stripe_client()
    intent = client.v1.payment_intents.retrieve(payment_intent_id)
    if intent.status in CONFIRMABLE:
        try:
            intent = client.v1.payment_intents.cancel(intent.id)
        except stripe.InvalidRequestError:  # confirmed meanwhile: its state now is what counts
            intent = client.v1.payment_intents.retrieve(intent.id)
    return intent


def intent_awaiting_authentication(invoice: Invoice):
    """The PaymentIntent of the invoice's latest attempt if the bank waits for the Owner to authenticate it."""
    latest = invoice.payments.order_by("-attempt").first()
    if latest is None or latest.status != Payment.Status.FAILED or not latest.stripe_payment_intent_id:
        return None
    intent = stripe_client().v1.payment_intents.retrieve(latest.stripe_payment_intent_id)
    return intent if intent.status == "requires_action" else None


def record_confirmation(invoice: Invoice, payment_intent_id: str) -> Payment:
    """Record what came of the Owner's on-session confirmation; Payment.DoesNotExist if not this invoice's."""
    if not payment_intent_id:
        raise Payment.DoesNotExist("no PaymentIntent named")
    payment = invoice.payments.get(stripe_payment_intent_id=payment_intent_id)  # never another invoice's intent
    return record_intent(payment, stripe_client().v1.payment_intents.retrieve(payment_intent_id))


def _customer_of(payment: Payment) -> str:
    return Subscription.objects.values_list("stripe_customer_id", flat=True).get(team_id=payment.invoice.team_id)


def find_intent(payment_key: str, *, customer: str = ""):
    """The PaymentIntent created for this attempt, by its metadata, if there is one."""
    for intent in _list_intents(customer).auto_paging_iter():
        if as_dict(intent.metadata).get("payment_key") == payment_key:
            return intent
    return None


def _list_intents(customer: str):
    """The team's customer's PaymentIntents (Stripe filters them), or all of them where the server can't."""
    client = stripe_client()
    if customer:
        try:
            return client.v1.payment_intents.list(params={"customer": customer, "limit": 100})
        except stripe.InvalidRequestError:
            pass  # localstripe knows no `customer` filter on this list: list them all
    return client.v1.payment_intents.list(params={"limit": 100})


def reconcile(*, stuck_after=None) -> int:
    """Compare our open attempts with Stripe and fix drift (the nightly task); how many were looked at.

    An attempt still `processing` with a PaymentIntent (its run died, its webhook was lost) gets the
    PaymentIntent's current state; one without (it may never have reached Stripe) is run again as the
    same attempt, which finds its PaymentIntent by metadata or creates it once. A failed attempt whose
    PaymentIntent has since succeeded (paid on-session, webhook lost) is recorded as paid. An attempt
    left in flight on an invoice paid meanwhile by another one, which never reached Stripe, is closed
    as superseded.
    """
    cutoff = timezone.now() - (STUCK_AFTER if stuck_after is None else stuck_after)
    looked_at = 0
    stuck = Payment.objects.filter(status=Payment.Status.PROCESSING, updated_at__lte=cutoff)
    for payment in stuck.select_related("invoice"):
        looked_at += 1
        if payment.stripe_payment_intent_id:
            record_intent(payment, stripe_client().v1.payment_intents.retrieve(payment.stripe_payment_intent_id))
        elif payment.invoice.status in CHARGEABLE:
            charge_invoice(payment.invoice_id, attempt=payment.attempt)
        elif (intent := find_intent(payment.idempotency_key, customer=_customer_of(payment))) is not None:
            record_intent(payment, intent)
        else:
            _finish(payment.pk, None, failure=("superseded", "The invoice was settled by another attempt."))
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
        Payment.objects.filter(pk=payment.pk, stripe_payment_intent_id="").update(stripe_payment_intent_id=intent.id)
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
            if invoice.status in (Invoice.Status.PAID, Invoice.Status.VOID):  # each attempt settles the earlier ones
                logger.error("Invoice %s (%s) was paid by attempt %s: refund it", invoice.number, invoice.status,
                             payment.attempt)  # fmt: skip
            payment.status = Payment.Status.SUCCEEDED
            if invoice.status != Invoice.Status.VOID:  # a voided invoice stays void; the charge is refunded by staff
                invoice.status, invoice.paid_at = Invoice.Status.PAID, invoice.paid_at or now
            template = "invoice-paid"
        else:
            payment.status = Payment.Status.FAILED
            payment.failure_code, payment.failure_message = failure[0][:64], failure[1][:300]
            if invoice.status in CHARGEABLE:  # never back from paid or void
                invoice.status = Invoice.Status.PAST_DUE
            template = "invoice-past-due"
        payment.save()
        invoice.save(update_fields=["status", "paid_at"])
        overdue = invoice.status == Invoice.Status.PAST_DUE  # a failure on a paid or void invoice changes nothing
        if failure is None:
            dunning.lift_if_paid_up(invoice.team_id)  # paying the last past-due invoice lifts a suspension at once
        elif overdue:
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
        if recipients and (failure is None or (overdue and not payment.on_session)):  # on-session: the page tells
            context = {"invoice": invoice, "payment": payment}
            _send(template, recipients, context)
    return payment


def _send(template: str, recipients: list[str], context: dict) -> None:
    try:
        with transaction.atomic():  # a savepoint: the email is queued with the outcome, or alone is dropped
            queue_templated_email(template, to=recipients, context=context)
    except Exception:  # the payment is recorded; an email that cannot be rendered must not undo or repeat it
        logger.exception("Could not send %s for invoice %s", template, context["invoice"].number)
