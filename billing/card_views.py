"""The card page of the Billing tab (Owners only, after a recent re-authentication).

GET shows the card on file and a Stripe.js card form; it calls Stripe for nothing. When the Owner
submits the form, its script POSTs to `card_setup_intent` for a SetupIntent (billing.cards), confirms
it with Stripe, and POSTs its id back here; the server stores the card only after retrieving the
SetupIntent itself. `?next=upgrade` sends the Owner on to the Pay-as-you-go confirmation once the card
is stored. A POST to `remove_card` removes the card, unless a paid plan still needs it (the page shows
why instead of the button). A failed Stripe call is logged for staff and shown as a form error
(`cards.stripe_trouble`); nothing stored changes.
"""

import logging
import uuid

import stripe
from allauth.account.decorators import reauthentication_required
from allauth.core.exceptions import ReauthenticationRequired
from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import team_member_required
from accounts.roles import Perm
from billing import cards, selectors
from billing.models import Invoice, Plan, Subscription

logger = logging.getLogger(__name__)

NEXT_UPGRADE = "upgrade"  # on to the Pay-as-you-go confirmation
NEXT_PAY = "pay-"  # + a past-due invoice's public id of this team: back to its pay page
STRIPE_UNAVAILABLE = "Card payments are unavailable right now. Try again in a few minutes."  # billing.pay_views
REAUTHENTICATE = "Enter your password again to change the card."


def card_label(subscription: Subscription) -> str:
    """ "Visa •••• 4242", as the page and the messages name the card."""
    return f"{subscription.card_brand.title()} •••• {subscription.card_last4}"


def _next_step(value: str, team) -> str:
    """The `next` the page accepts (the upgrade, or paying one of this team's invoices); "" for anything else."""
    if value == NEXT_UPGRADE:
        return value
    if value.startswith(NEXT_PAY):
        try:
            public_id = uuid.UUID(value.removeprefix(NEXT_PAY))
        except ValueError:
            return ""
        if Invoice.objects.filter(team=team, public_id=public_id).exists():
            return f"{NEXT_PAY}{public_id}"
    return ""


def _card_url(next_step: str) -> str:
    url = reverse("billing_card")
    return f"{url}?next={next_step}" if next_step else url


@require_http_methods(["GET", "POST"])
@team_member_required(Perm.MANAGE_BILLING)
@reauthentication_required
def card(request):
    source = request.POST if request.method == "POST" else request.GET
    next_step = _next_step(source.get("next", ""), request.team)
    if request.method == "POST":
        return _store_card(request, next_step)
    subscription = selectors.current_subscription(request.team)
    context = {
        "subscription": subscription,
        "card_label": card_label(subscription) if subscription.card_last4 else "",
        "card_needed_because": cards.why_card_is_needed(subscription) if subscription.card_last4 else None,
        "next_step": next_step,
        "upgrade_plan": Plan.objects.filter(code=Plan.PAY_AS_YOU_GO).first() if next_step else None,
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js_url": settings.STRIPE_JS_URL,
    }
    return render(request, "billing/card.html", context)


def _store_card(request, next_step: str):
    setup_intent_id = request.POST.get("setup_intent", "").strip()
    try:
        subscription = cards.finish_card_setup(request.membership, setup_intent_id)
    except cards.CardError as error:
        messages.error(request, str(error))
        return redirect(_card_url(next_step))
    except stripe.InvalidRequestError:  # no such SetupIntent at Stripe
        messages.error(request, "That card setup is not one of this team's. Start again from the Billing tab.")
        return redirect(_card_url(next_step))
    except stripe.StripeError as error:
        logger.exception("Could not store the card of team %s", request.team.pk)
        messages.error(request, cards.stripe_trouble(error))
        return redirect(_card_url(next_step))
    messages.success(request, f"{card_label(subscription)} is now your card.")
    if next_step == NEXT_UPGRADE:
        return redirect(f"{reverse('billing_plan_switch')}?plan={Plan.PAY_AS_YOU_GO}")
    if next_step.startswith(NEXT_PAY):
        return redirect("billing_invoice_pay", invoice_id=next_step.removeprefix(NEXT_PAY))
    return redirect("billing")


@require_http_methods(["POST"])
@team_member_required(Perm.MANAGE_BILLING)
@reauthentication_required
def remove_card(request):
    subscription = selectors.current_subscription(request.team)
    label = card_label(subscription) if subscription.card_last4 else "Your card"
    try:
        cards.remove_card(request.membership)
    except cards.CardError as error:
        messages.error(request, str(error))
        return redirect("billing_card")
    except stripe.StripeError as error:
        logger.exception("Could not remove the card of team %s", request.team.pk)
        messages.error(request, cards.stripe_trouble(error))
        return redirect("billing_card")
    messages.success(request, f"{label} is removed. Add a card again before upgrading to a paid plan.")
    return redirect("billing")


@require_POST
@team_member_required(Perm.MANAGE_BILLING)
def card_setup_intent(request):
    """JSON for the card form's script: a SetupIntent's client_secret, made when the Owner submits the form.

    CSRF-protected like any POST (the script sends the form's token). An expired re-authentication answers 401
    with `reload`, so the script reloads the page and allauth asks for the password there, rather than suspending
    this request and replaying it after the password, where the answer would be shown as a page.
    """
    try:
        return _card_setup_intent(request)
    except ReauthenticationRequired:
        return JsonResponse({"error": REAUTHENTICATE, "reload": True}, status=401)


@reauthentication_required
def _card_setup_intent(request):
    try:
        intent = cards.start_card_setup(request.membership)
    except stripe.StripeError as error:
        logger.exception("Could not create a SetupIntent for team %s", request.team.pk)
        return JsonResponse({"error": cards.stripe_trouble(error)}, status=503)
    return JsonResponse({"client_secret": intent.client_secret})
