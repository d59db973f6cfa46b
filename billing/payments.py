"""Charging an invoice with Stripe, exactly once, with no database transaction open across a Stripe call.

1. In one short transaction under the invoice's row lock, write (or find) the in-flight Payment attempt and
   claim it: a conditional UPDATE sets `claimed_by`/`claimed_until` only if no other run holds a live claim.
   Its idempotency key, `invoice-<invoice uuid>-attempt-<n>`, and its parameters (amount, customer, card) are
   stored with it and reused by every retry of that attempt (a new key only after a replayed 5xx, or when the
   team's card changed before anything reached Stripe), and the database allows one in-flight attempt per
   invoice. The transaction commits before Stripe is called.
2. Holding only that claim (no transaction, no row lock), ask Stripe: a PaymentIntent
   `off_session=True, confirm=True` on the team's default card, with the key and the invoice in its metadata.
   A second run (a duplicate task, the reconciliation, dunning racing the pay page) finds the claim live and
   leaves the attempt alone. If a previous run of this attempt may already have created a PaymentIntent (it
   died after Stripe answered, before the outcome was written down), look for it by its metadata first. Real
   Stripe would also return the same PaymentIntent for the same key, but localstripe ignores keys, so this
   bookkeeping is what guarantees one PaymentIntent per attempt.
3. In another short transaction, under the invoice's and then the payment's row lock, record the outcome if the
   claim is still ours, and release it: succeeded → invoice paid (a receipt email); declined or authentication
   required → the attempt failed and the invoice is past due (an email; only the Owner can authorize the
   latter, on the pay page, so dunning leaves it to them); Stripe refusing the request itself → the attempt
   failed with its reason, the invoice still open, tried again later; Stripe refusing the amount as too small
   → the invoice carried forward (billing.carrying). Errors worth retrying (rate limits, 5xx, the connection)
   propagate to the task, which retries the same attempt with backoff.

A run that fails with an exception releases its claim on the way out, so the retry needn't wait. A run that
dies outright (killed, power lost) leaves its claim to expire: LEASE is longer than the charge task can live,
so a claim never expires under a run that may still be talking to Stripe; the run that takes over then finds
the PaymentIntent the dead one may have created by its metadata.

A past-due invoice is retried by dunning (billing.dunning) or paid by its Owner on the invoice's pay
page (billing.pay_views): a new attempt made on-session, or the confirmation with Stripe.js of a
PaymentIntent the bank wants authenticated. Before any new attempt, the earlier attempts'
PaymentIntents are settled: one that succeeded after all is recorded instead of charging again, and
one still open is canceled, so two PaymentIntents of one invoice can never both be paid.
"""

import logging
import os
import socket
import uuid
from contextlib import contextmanager
from datetime import timedelta

import stripe
from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from billing import carrying, dunning
from billing.alerts import owner_emails
from billing.models import BillingEvent, Invoice, Payment, Subscription
from billing.stripe_gateway import as_dict, stripe_client
from notifications.outbox import queue_templated_email

logger = logging.getLogger("billing.payments")

CHARGEABLE = (Invoice.Status.OPEN, Invoice.Status.PAST_DUE)
CONFIRMABLE = ("requires_action", "requires_confirmation", "requires_payment_method")  # could still be paid
STUCK_AFTER = timedelta(hours=1)  # an attempt still processing after this is looked at by the reconciliation

# Failure codes of an attempt besides the card's own (Stripe's decline codes, `authentication_required`):
NEEDS_AUTHENTICATION = Payment.NEEDS_AUTHENTICATION  # only the Owner can authorize it, on the invoice's pay page
AMOUNT_TOO_SMALL = "amount_too_small"  # Stripe's minimum charge: the invoice is carried forward (billing.carrying)
# Stripe refused the request itself (a bad parameter, a revoked API key, a reused idempotency key): ours to fix,
# not the customer's. The invoice stays as it was, nobody is emailed, the error is logged for staff, and an open
# invoice is tried again later as a new attempt (provider_retries_due), PROVIDER_RETRY_FIRST, then twice as long
# after each failure.
PROVIDER_ERROR = "provider_error"
PROVIDER_RETRY_FIRST = timedelta(hours=1)
PROVIDER_RETRY_LONGEST = timedelta(hours=24)
# Stripe's refusals of the request rather than of the card, recorded as PROVIDER_ERROR. The errors after which the
# same request may well succeed (RateLimitError, APIConnectionError, a 5xx APIError: Stripe says to retry them
# with backoff) propagate instead: our claim is released and the charge task retries (billing.tasks), and an
# attempt they leave in flight is resumed by the reconciliation.
REFUSED_REQUEST = (
    stripe.InvalidRequestError,
    stripe.IdempotencyError,
    stripe.AuthenticationError,
    stripe.PermissionError,
)

# The charge task's hard time limit (billing.tasks.charge_invoice): Celery kills a run that reaches it, and its soft
# limit (dashboard.celery) interrupts it 12 s before, which releases the claim.
CHARGE_TIME_LIMIT = 120  # seconds
# How long a claim on an attempt lasts. A run of the task claims the attempt after it starts and is killed at most
# CHARGE_TIME_LIMIT after it starts, so its claim cannot expire while it lives; the extra minute covers a request it
# sent just before it was killed reaching Stripe, and clock drift between hosts. Runs outside the task (the pay page,
# the close command, the reconciliation) renew the claim right before creating the PaymentIntent, and one Stripe call
# is over within stripe_gateway.LONGEST_CALL, well inside a LEASE: a claim never expires under a Stripe call that can
# still create a PaymentIntent. Shorter would risk a second PaymentIntent; longer only delays taking over from a dead
# worker (the reconciliation looks at stuck attempts after an hour anyway).
LEASE = timedelta(seconds=CHARGE_TIME_LIMIT + 60)


def invoices_to_charge() -> list[int]:
    """Open invoices with something to pay and no attempt yet (their first charge); dunning comes later."""
    return list(
        Invoice.objects.filter(
            status=Invoice.Status.OPEN, total_cents__gt=0, collection=Invoice.Collection.CARD, payments__isnull=True
        )
        .order_by("issued_at", "id")
        .values_list("pk", flat=True)
    )


def provider_retries_due(now=None) -> list[tuple[int, int]]:
    """[(open invoice, the attempt to make)] whose last attempt Stripe refused as a request (PROVIDER_ERROR) and
    whose wait is over: PROVIDER_RETRY_FIRST after the first such failure, twice as long after each next one."""
    now = now or timezone.now()
    due = []
    invoices = Invoice.objects.filter(
        status=Invoice.Status.OPEN, collection=Invoice.Collection.CARD, payments__failure_code=PROVIDER_ERROR
    ).distinct()
    for invoice in invoices.prefetch_related("payments"):
        attempts = sorted(invoice.payments.all(), key=lambda payment: payment.attempt)
        latest = attempts[-1]
        if latest.status != Payment.Status.FAILED or latest.failure_code != PROVIDER_ERROR:
            continue
        refused = sum(1 for payment in attempts if payment.failure_code == PROVIDER_ERROR)
        wait = min(PROVIDER_RETRY_FIRST * 2 ** (refused - 1), PROVIDER_RETRY_LONGEST)
        if now >= latest.updated_at + wait:
            due.append((invoice.pk, latest.attempt + 1))
    return due


def charge_invoice(invoice_id: int, *, attempt: int | None = None, on_session: bool = False) -> Payment | None:
    """Charge the invoice's total to the team's card; None if there is nothing (more) to do.

    `attempt`: which attempt the caller means to make. None (the first charge, the reconciliation)
    resumes the attempt in flight or makes attempt 1 if there is none yet; dunning and the pay page
    name the next attempt they saw, so a duplicate task or a double-submitted form finds it made
    already and does nothing. `on_session`: the Owner is paying a past-due invoice on its pay page
    (the bank may then ask them to authenticate); otherwise the charge is made without them.
    """
    with transaction.atomic():  # short: commits the attempt and our claim on it before Stripe is called
        begun = _begin_attempt(invoice_id, attempt=attempt, on_session=on_session)
        claim = _claim(begun[0].pk) if begun is not None else None
    if claim is None:
        return None  # nothing is due, or another run is charging this attempt right now
    payment, retrying = begun
    with _released_on_error(payment.pk, claim):
        return _charge(payment.pk, claim, retrying=retrying)


def _charge(payment_id: int, claim: str, *, retrying: bool) -> Payment | None:
    """Ask Stripe about the claimed attempt and record what it says (no transaction open meanwhile)."""
    payment = Payment.objects.select_related("invoice").get(pk=payment_id)
    intent = _intent_made_already(payment, retrying=retrying)
    if intent is not None:
        return _finish(payment.pk, intent, failure=_failure_of(intent), claim=claim)
    if _earlier_attempt_settles_it(payment):
        # Nothing reached Stripe for this attempt, and nothing is left to charge for now.
        Payment.objects.filter(pk=payment.pk, claimed_by=claim, status=Payment.Status.PROCESSING).delete()
        return None
    if retrying:
        payment = _with_current_card(payment, claim)
    if not payment.payment_method_id:
        return _finish(payment.pk, None, failure=("no_card", "There is no card on file to charge."), claim=claim)
    if not _renew(payment.pk, claim):
        return None  # our claim ran out and another run took the attempt over: it charges, not us
    intent, failure = _create_intent(payment, claim)
    return _finish(payment.pk, intent, failure=failure, claim=claim)


def _with_current_card(payment: Payment, claim: str) -> Payment:
    """A resent attempt that made no PaymentIntent, whose team has changed its card since it began: it charges the
    card on file now, under a new key, since Stripe refuses a key sent again with other parameters."""
    current = Subscription.objects.values("stripe_customer_id", "payment_method_id").get(
        team_id=payment.invoice.team_id
    )
    if (payment.stripe_customer_id, payment.payment_method_id) == tuple(current.values()):
        return payment
    Payment.objects.filter(pk=payment.pk, claimed_by=claim).update(
        stripe_customer_id=current["stripe_customer_id"],
        payment_method_id=current["payment_method_id"],
        key_generation=F("key_generation") + 1,
    )
    return Payment.objects.select_related("invoice").get(pk=payment.pk)


def _claim(payment_id: int) -> str | None:
    """Claim the in-flight attempt for this run until LEASE from now; None if another run's claim is live."""
    token = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"  # says which worker, for operators
    now = timezone.now()
    taken = (
        Payment.objects.filter(pk=payment_id, status=Payment.Status.PROCESSING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(claimed_by=token, claimed_until=now + LEASE)
    )
    return token if taken else None


def _renew(payment_id: int, claim: str) -> bool:
    """A full LEASE from now for our claim, taken right before the call that can create a PaymentIntent; False if
    the claim is no longer ours."""
    return bool(
        Payment.objects.filter(pk=payment_id, claimed_by=claim, status=Payment.Status.PROCESSING).update(
            claimed_until=timezone.now() + LEASE
        )
    )


@contextmanager
def _released_on_error(payment_id: int, claim: str):
    """Release our claim if the run fails (an exception, the soft time limit), so a retry can take over at once.

    Safe even if a request of ours may have reached Stripe: the run that takes over looks for its PaymentIntent
    by metadata first, and real Stripe answers the same idempotency key with the same PaymentIntent."""
    try:
        yield
    except BaseException:
        try:
            Payment.objects.filter(pk=payment_id, claimed_by=claim).update(claimed_by="", claimed_until=None)
        except Exception:  # the database is unreachable too: the claim expires after LEASE instead
            logger.exception("Could not release the claim on payment %s", payment_id)
        raise


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
        if in_flight is None and carrying.carry_forward(invoice, reason="below_minimum_at_charge"):
            return None  # Stripe would refuse so small a charge: the team's next invoice collects it
        if in_flight is not None:
            if on_session or (attempt is not None and attempt != in_flight.attempt):
                return None  # another attempt is running: the pay page says so rather than racing it
            return in_flight, True  # the same attempt again: same idempotency key
        wanted = attempt or 1
        if invoice.payments.count() != wanted - 1:
            return None  # that attempt was made already (a duplicate task, a resubmitted form)
        subscription = Subscription.objects.get(team_id=invoice.team_id)
        payment = Payment.objects.create(
            invoice=invoice,
            attempt=wanted,
            idempotency_key=f"invoice-{invoice.public_id}-attempt-{wanted}",
            amount_cents=invoice.total_cents,
            on_session=on_session,
            # What this attempt charges, fixed now: a resend under its key must not pick up a card changed since.
            stripe_customer_id=subscription.stripe_customer_id,
            payment_method_id=subscription.payment_method_id,
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


def _create_intent(payment: Payment, claim: str):
    """Create and confirm the attempt's PaymentIntent with the attempt's own parameters; it and the failure
    (code, message), if any. Errors Stripe says to retry propagate (see REFUSED_REQUEST)."""
    params = {
        "amount": payment.amount_cents,
        "currency": payment.invoice.currency,
        "customer": payment.stripe_customer_id,
        "payment_method": payment.payment_method_id,
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
    options = {"idempotency_key": payment.stripe_idempotency_key}
    try:
        intent = client.v1.payment_intents.create(params=params, options=options)
    except stripe.CardError as error:  # declined, or the bank wants the customer present (3-D Secure)
        # The failed PaymentIntent exists; keep its id for the records (Stripe names it in the error).
        named = as_dict(getattr(error, "error", None)).get("payment_intent") or {}
        if named.get("id"):
            intent = client.v1.payment_intents.retrieve(named["id"])
        else:
            intent = find_intent(payment.idempotency_key, customer=payment.stripe_customer_id)
        _remember_intent(payment, intent)
        return intent, (error.code or "card_declined", error.user_message or str(error))
    except REFUSED_REQUEST as error:
        if getattr(error, "code", None) == AMOUNT_TOO_SMALL:
            return None, (AMOUNT_TOO_SMALL, "The amount is below the minimum Stripe charges a card.")
        logger.error(
            "Stripe refused to charge invoice %s (attempt %s): %s",
            payment.invoice.number,
            payment.attempt,
            _describe(error),
        )
        return None, (PROVIDER_ERROR, _describe(error))
    except stripe.APIError as error:
        # Stripe saves a 5xx under its key and replays it for 24 hours: unless the PaymentIntent was made after
        # all, the retry must send another key (same parameters, same metadata to be found by).
        intent = find_intent(payment.idempotency_key, customer=payment.stripe_customer_id)
        if intent is not None:
            _remember_intent(payment, intent)
            return intent, _failure_of(intent)
        Payment.objects.filter(pk=payment.pk, claimed_by=claim).update(key_generation=F("key_generation") + 1)
        logger.warning(
            "Stripe answered %s to invoice %s attempt %s: its retry sends a new key",
            error.http_status,
            payment.invoice.number,
            payment.attempt,
        )
        raise
    _remember_intent(payment, intent)
    return intent, _failure_of(intent)


def _describe(error: stripe.StripeError) -> str:
    """A Stripe error for the records: its class, code and message."""
    code = getattr(error, "code", None)
    return f"{type(error).__name__}{f' ({code})' if code else ''}: {error.user_message or error}"[:300]


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
    """The PaymentIntent of the invoice's latest attempt if the bank waits for the Owner to authenticate it.

    On-session, Stripe leaves it `requires_action` (3-D Secure to complete in the page). Off-session, a charge the
    bank wants authenticated fails with `authentication_required` and leaves it `requires_payment_method`: Stripe's
    guide is to bring the customer back to confirm that same PaymentIntent on-session with the card (Stripe.js
    `confirmCardPayment` with the payment method), not to make a new one. Either way the pay page confirms it."""
    latest = invoice.payments.order_by("-attempt").first()
    if latest is None or latest.status != Payment.Status.FAILED or not latest.stripe_payment_intent_id:
        return None
    intent = stripe_client().v1.payment_intents.retrieve(latest.stripe_payment_intent_id)
    if intent.status == "requires_action":
        return intent
    needs_authentication = as_dict(intent.last_payment_error).get("code") == NEEDS_AUTHENTICATION
    return intent if intent.status == "requires_payment_method" and needs_authentication else None


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


class ReconciliationIncomplete(Exception):
    """The reconciliation went through every attempt, but Stripe (or something else) failed on some of them."""

    def __init__(self, looked_at: int, failed: list[tuple[int, str]]):
        super().__init__(looked_at, failed)
        self.looked_at, self.failed = looked_at, failed  # failed: (payment id, the error), each

    def __str__(self):
        named = "; ".join(f"payment {payment_id}: {error}" for payment_id, error in self.failed)
        return f"{len(self.failed)} of {self.looked_at} payment(s) could not be reconciled: {named}"


def reconcile(*, stuck_after=None) -> int:
    """Compare our open attempts with Stripe and fix drift (the nightly task); how many were looked at.

    An attempt still `processing` with a PaymentIntent (its run died, its webhook was lost) gets the
    PaymentIntent's current state; one without (it may never have reached Stripe) is run again as the
    same attempt, which finds its PaymentIntent by metadata or creates it once. A failed attempt whose
    PaymentIntent has since succeeded (paid on-session, webhook lost) is recorded as paid. An attempt
    left in flight on an invoice paid meanwhile by another one, which never reached Stripe, is closed
    as superseded. An attempt a live run has claimed is left to it.

    One attempt that fails (Stripe doesn't know its PaymentIntent, Stripe is unreachable) is logged and the
    others are still reconciled; ReconciliationIncomplete then names the failed ones at the end.
    """
    cutoff = timezone.now() - (STUCK_AFTER if stuck_after is None else stuck_after)
    stuck = Payment.objects.filter(status=Payment.Status.PROCESSING, updated_at__lte=cutoff).exclude(
        claimed_until__gt=timezone.now()
    )
    failed = Payment.objects.filter(status=Payment.Status.FAILED, invoice__status=Invoice.Status.PAST_DUE).exclude(
        stripe_payment_intent_id=""
    )
    looked_at, errors = 0, []
    for attempts, reconcile_one in ((stuck, _reconcile_stuck), (failed, _reconcile_failed)):
        for payment in attempts.select_related("invoice"):
            looked_at += 1
            try:
                reconcile_one(payment)
            except SoftTimeLimitExceeded:
                raise  # the task's time is up: stop here, tomorrow's run goes on
            except Exception as error:  # one bad payment must not keep the others from being reconciled
                logger.exception("Could not reconcile payment %s of invoice %s", payment.pk, payment.invoice.number)
                errors.append((payment.pk, f"{type(error).__name__}: {error}"))
    if errors:
        raise ReconciliationIncomplete(looked_at, errors)
    return looked_at


def _reconcile_stuck(payment: Payment) -> None:
    if payment.stripe_payment_intent_id:
        record_intent(payment, stripe_client().v1.payment_intents.retrieve(payment.stripe_payment_intent_id))
    elif payment.invoice.status in CHARGEABLE:
        charge_invoice(payment.invoice_id, attempt=payment.attempt)
    else:
        _close_orphan(payment)


def _close_orphan(payment: Payment) -> None:
    """An attempt left in flight on an invoice settled meanwhile: its PaymentIntent if one was made, else superseded."""
    claim = _claim(payment.pk)
    if claim is None:
        return  # a live run holds it
    with _released_on_error(payment.pk, claim):
        intent = find_intent(payment.idempotency_key, customer=_customer_of(payment))
        if intent is not None:
            _finish(payment.pk, intent, failure=_failure_of(intent), claim=claim)
        else:
            _finish(
                payment.pk, None, failure=("superseded", "The invoice was settled by another attempt."), claim=claim
            )


def _reconcile_failed(payment: Payment) -> None:
    intent = stripe_client().v1.payment_intents.retrieve(payment.stripe_payment_intent_id)
    if intent.status == "succeeded":
        record_intent(payment, intent)


def record_intent(payment: Payment, intent) -> Payment:
    """Record a PaymentIntent's current state on its attempt (webhooks, reconciliation); forward only."""
    return _finish(payment.pk, intent, failure=_failure_of(intent))


def _remember_intent(payment: Payment, intent) -> None:
    """Note the attempt's PaymentIntent; _finish writes it down with the outcome (a run that dies before that
    leaves it to be found by its metadata)."""
    if intent is not None and not payment.stripe_payment_intent_id:
        payment.stripe_payment_intent_id = intent.id


def _failure_of(intent) -> tuple[str, str] | None:
    if intent.status == "succeeded":
        return None
    if intent.status == "requires_action":
        return NEEDS_AUTHENTICATION, "Your bank asks you to confirm this payment."
    if intent.status in ("requires_payment_method", "canceled"):
        error = as_dict(intent.last_payment_error)
        return error.get("code") or "card_declined", error.get("message") or "The card was declined."
    return "processing", ""


def _finish(payment_id: int, intent, *, failure, claim: str | None = None) -> Payment | None:
    """Record the attempt's outcome, forward only, in one short transaction; None if `claim` (the run's own) has
    been taken over by another run meanwhile, which then records it instead. Without a claim (webhooks, the
    reconciliation, the pay page's confirmation) what Stripe says is recorded whoever holds the attempt."""
    invoice_id = Payment.objects.values_list("invoice_id", flat=True).get(pk=payment_id)
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)  # the invoice, then its payment (lock order)
        payment = Payment.objects.select_for_update().select_related("invoice").get(pk=payment_id)
        # Forward only: processing → succeeded or failed, and failed → succeeded (the customer paid on-session).
        if payment.status == Payment.Status.SUCCEEDED or (payment.status == Payment.Status.FAILED and failure):
            return payment  # recorded already (another run, a duplicate or stale webhook)
        if claim is not None and payment.status == Payment.Status.PROCESSING and payment.claimed_by != claim:
            return None  # our claim ran out and another run took the attempt over
        if intent is not None and not payment.stripe_payment_intent_id:
            payment.stripe_payment_intent_id = intent.id
        if claim is not None or failure is None or failure[0] != "processing":
            payment.claimed_by, payment.claimed_until = "", None  # our run is over, or the attempt is settled
        if failure is not None and failure[0] == "processing":
            payment.save(update_fields=["stripe_payment_intent_id", "claimed_by", "claimed_until", "updated_at"])
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
            template = _after_failure(invoice, payment)
        payment.save()
        invoice.save(update_fields=["status", "paid_at"])
        overdue = invoice.status == Invoice.Status.PAST_DUE and template is not None
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
        # On-session, the pay page tells the Owner what happened.
        if template and recipients and (failure is None or (overdue and not payment.on_session)):
            context = {"invoice": invoice, "payment": payment}
            _send(template, recipients, context)
    return payment


def _after_failure(invoice: Invoice, payment: Payment) -> str | None:
    """Move the invoice on after a failed attempt (its row is locked); the email template for the Owners, if any.

    A declined card makes an open invoice past due (dunning takes over); so does a charge the bank wants the Owner
    to authenticate, with an email that says so (dunning does not retry it). A charge Stripe refused as too small
    carries the invoice forward. Stripe refusing the request itself changes nothing the customer can see."""
    if payment.failure_code == AMOUNT_TOO_SMALL:
        carrying.carry_forward(invoice, reason="refused_by_stripe_as_too_small", refused_by_stripe=True)
        return None
    if payment.failure_code == PROVIDER_ERROR or invoice.status not in CHARGEABLE:  # never back from paid or void
        return None
    invoice.status = Invoice.Status.PAST_DUE
    return "invoice-needs-authentication" if payment.failure_code == NEEDS_AUTHENTICATION else "invoice-past-due"


def _send(template: str, recipients: list[str], context: dict) -> None:
    try:
        with transaction.atomic():  # a savepoint: the email is queued with the outcome, or alone is dropped
            queue_templated_email(template, to=recipients, context=context)
    except Exception:  # the payment is recorded; an email that cannot be rendered must not undo or repeat it
        logger.exception("Could not send %s for invoice %s", template, context["invoice"].number)
