"""Paying a past-due invoice on-session, from its pay page (Owners only).

The page offers what the invoice needs: "Pay now" with the card on file (a new attempt made with
the Owner present, billing.payments), or, when the bank wants the Owner to authenticate a payment
(3-D Secure), a button that confirms that PaymentIntent with Stripe.js and posts only its id back;
the server then retrieves the PaymentIntent from Stripe and records what it says. A declined card
leads to the card page and back here. Paying the last past-due invoice lifts a suspension at once.

An invoice of an invoice-paid Enterprise contract is never charged to a card: its pay page shows the
payment instructions and the due date instead, and a POST to it charges nothing.
"""

import logging
import re

import stripe
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.decorators import team_member_required
from accounts.roles import Perm
from billing import payments, selectors, tasks
from billing.card_views import STRIPE_UNAVAILABLE, card_label
from billing.invoice_views import team_invoice
from billing.models import Invoice, Payment
from billing.templatetags.billing_tags import cents

logger = logging.getLogger(__name__)

PAYMENT_INTENT_ID = re.compile(r"pi_[A-Za-z0-9_]{1,100}")
OUT_OF_DATE = "This page was out of date: here is where the invoice stands now."


def pay_url(invoice: Invoice) -> str:
    return reverse("billing_invoice_pay", args=[invoice.public_id])


def _invoice_url(invoice: Invoice) -> str:
    return reverse("billing_invoice", args=[invoice.public_id])


@require_http_methods(["GET", "POST"])
@team_member_required(Perm.MANAGE_BILLING)
def pay_invoice(request, invoice_id):
    invoice = team_invoice(request, invoice_id)
    if selectors.awaits_transfer(invoice):  # contract terms: paid by bank transfer, never charged to a card
        return _pay_by_transfer(request, invoice)
    if invoice.status != Invoice.Status.PAST_DUE:
        return _nothing_to_pay(request, invoice)
    if request.method == "POST":
        if "payment_intent" in request.POST:
            return _record_confirmation(request, invoice, request.POST["payment_intent"].strip())
        return _pay_now(request, invoice, request.POST.get("attempt", ""))
    subscription = selectors.current_subscription(request.team)
    latest = invoice.payments.order_by("-attempt").first()
    processing = latest is not None and latest.status == Payment.Status.PROCESSING
    intent = None
    if not processing:
        try:
            intent = payments.intent_awaiting_authentication(invoice)
        except stripe.StripeError:
            logger.exception("Could not look up the payment of invoice %s", invoice.number)
            messages.error(request, STRIPE_UNAVAILABLE)
    context = {
        "invoice": invoice,
        "next_attempt": payments.next_attempt(invoice),  # a resubmitted form names an attempt made already
        "latest": latest,
        "processing": processing,
        "intent": intent,
        "subscription": subscription,
        "card_label": card_label(subscription) if subscription.card_last4 else "",
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js_url": settings.STRIPE_JS_URL,
    }
    return render(request, "billing/pay.html", context)


def _pay_by_transfer(request, invoice: Invoice):
    """The instructions and due date instead of a card payment; a POST (an old form) charges nothing."""
    if request.method == "POST":
        messages.info(request, f"Invoice {invoice.number} is paid by bank transfer, not by card: see how below.")
        return redirect(pay_url(invoice))
    context = {"invoice": invoice, "instructions": selectors.payment_instructions(invoice)}
    return render(request, "billing/pay_by_transfer.html", context)


def _nothing_to_pay(request, invoice: Invoice):
    if invoice.status == Invoice.Status.PAID:
        messages.info(request, f"Invoice {invoice.number} is paid.")
    elif invoice.status == Invoice.Status.OPEN:
        messages.info(request, f"Invoice {invoice.number} is charged to your card automatically; nothing to do.")
    else:
        messages.info(request, f"Invoice {invoice.number} has nothing to pay.")
    return redirect(_invoice_url(invoice))


def _pay_now(request, invoice: Invoice, attempt: str):
    if not re.fullmatch(r"[0-9]{1,5}", attempt):
        messages.error(request, OUT_OF_DATE)
        return redirect(pay_url(invoice))
    try:
        payment = payments.charge_invoice(invoice.pk, attempt=int(attempt), on_session=True)
    except stripe.StripeError:
        logger.exception("Could not charge invoice %s on-session", invoice.number)
        _finish_later(invoice, int(attempt))
        messages.error(request, STRIPE_UNAVAILABLE)
        return redirect(pay_url(invoice))
    invoice.refresh_from_db()
    if invoice.status == Invoice.Status.PAID:
        return _paid(request, invoice)
    if payment is None:  # made already (a resubmitted form), or a scheduled attempt is running right now
        messages.info(request, OUT_OF_DATE)
    elif payment.failure_code == payments.NEEDS_AUTHENTICATION:
        messages.info(request, "Your bank asks you to confirm this payment.")
    elif payment.failure_code == payments.PROVIDER_ERROR:  # Stripe refused the request: ours to fix, not the card
        messages.error(request, STRIPE_UNAVAILABLE)
    else:
        messages.error(request, payment.failure_message or "The card was declined.")
    return redirect(pay_url(invoice))


def _finish_later(invoice: Invoice, attempt: int) -> None:
    """The attempt may have reached Stripe before the error: a worker resumes it in a minute (finding its
    PaymentIntent, or making it once), rather than the page showing "being processed" until the nightly
    reconciliation."""
    try:
        tasks.charge_invoice.apply_async((invoice.pk, attempt), countdown=60)
    except Exception:  # the broker is down too: the reconciliation resumes the attempt
        logger.exception("Could not queue the resumption of invoice %s attempt %s", invoice.number, attempt)


def _record_confirmation(request, invoice: Invoice, payment_intent_id: str):
    if not PAYMENT_INTENT_ID.fullmatch(payment_intent_id):
        messages.error(request, "That payment is not one of this invoice's. Start again from this page.")
        return redirect(pay_url(invoice))
    try:
        payment = payments.record_confirmation(invoice, payment_intent_id)
    except Payment.DoesNotExist:
        messages.error(request, "That payment is not one of this invoice's. Start again from this page.")
        return redirect(pay_url(invoice))
    except stripe.StripeError:
        logger.exception("Could not record the confirmation of invoice %s", invoice.number)
        messages.error(request, STRIPE_UNAVAILABLE)
        return redirect(pay_url(invoice))
    if payment.status == Payment.Status.SUCCEEDED:
        invoice.refresh_from_db()
        return _paid(request, invoice)
    messages.error(request, "The payment was not confirmed. Try again, or use another card.")
    return redirect(pay_url(invoice))


def _paid(request, invoice: Invoice):
    messages.success(request, f"Thank you: invoice {invoice.number} ({cents(invoice.total_cents)}) is paid.")
    return redirect(_invoice_url(invoice))
