"""A team's card on file, with Stripe: its Customer, a SetupIntent for the page, and storing the result.

DESIGN §5: a Stripe Customer per team (created once); a SetupIntent (`usage=off_session`) that the
Billing tab confirms with Stripe.js; on return the server retrieves the SetupIntent itself (it does
not wait for webhooks: localstripe sends no `setup_intent.*` events) and stores the PaymentMethod as
the team's default. Only the card's brand, last 4 digits and expiry are kept here.

Built so far (payments issue, in progress): these services and their tests against localstripe.
The Billing tab's card page (Stripe.js, reauthentication) comes next.
"""

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.audit import record_audit
from accounts.models import Membership
from accounts.roles import Perm, role_can
from billing.alerts import owner_emails
from billing.metering import subscription_for
from billing.models import BillingEvent, Subscription
from billing.stripe_gateway import as_dict, stripe_client


class CardError(Exception):
    """Why a card could not be stored; the message is shown to the developer."""


def _require_owner(actor: Membership) -> None:
    if not role_can(actor.role, Perm.MANAGE_BILLING):
        raise PermissionDenied("Only Owners manage the card.")


def ensure_customer(actor: Membership) -> str:
    """The team's Stripe Customer id, created the first time (under the subscription's lock, so once)."""
    _require_owner(actor)
    subscription_for(actor.team_id)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update(of=("self",)).get(team_id=actor.team_id)
        if subscription.stripe_customer_id:
            return subscription.stripe_customer_id
        emails = owner_emails(actor.team_id)
        customer = stripe_client().v1.customers.create(
            params={
                "name": actor.team.name,
                "email": emails[0] if emails else actor.user.email,
                "metadata": {"team_id": str(actor.team_id)},
            },
            options={"idempotency_key": f"team-{actor.team_id}-customer"},
        )
        subscription.stripe_customer_id = customer.id
        subscription.save(update_fields=["stripe_customer_id", "updated_at"])
        return customer.id


def start_card_setup(actor: Membership):
    """A SetupIntent for the Billing tab to confirm with Stripe.js (its client_secret goes to the page)."""
    customer_id = ensure_customer(actor)
    return stripe_client().v1.setup_intents.create(
        params={"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]}
    )


def finish_card_setup(actor: Membership, setup_intent_id: str) -> Subscription:
    """Store the card a confirmed SetupIntent holds as the team's default; CardError if it isn't usable."""
    _require_owner(actor)
    client = stripe_client()
    subscription = subscription_for(actor.team_id)
    if not setup_intent_id.startswith("seti_") or not subscription.stripe_customer_id:
        raise CardError("That card setup is not one of this team's. Start again from the Billing tab.")
    intent = client.v1.setup_intents.retrieve(setup_intent_id)
    if intent.customer != subscription.stripe_customer_id:  # another team's SetupIntent: never store it here
        raise CardError("That card setup is not one of this team's. Start again from the Billing tab.")
    if intent.status == "requires_action":
        raise CardError("Your bank asks you to confirm this card. Complete the check in the card form.")
    if intent.status != "succeeded" or not intent.payment_method:
        message = as_dict(getattr(intent, "last_setup_error", None)).get("message")
        raise CardError(message or "The card was not confirmed. Try again or use another card.")
    method = client.v1.payment_methods.retrieve(intent.payment_method)
    if method.customer != subscription.stripe_customer_id:
        method = client.v1.payment_methods.attach(method.id, params={"customer": subscription.stripe_customer_id})
    client.v1.customers.update(
        subscription.stripe_customer_id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    card = method.card
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update(of=("self",)).get(pk=subscription.pk)
        before = {"card": _card_label(subscription)}
        subscription.payment_method_id = method.id
        subscription.card_brand, subscription.card_last4 = card.brand, card.last4
        subscription.card_exp_month, subscription.card_exp_year = card.exp_month, card.exp_year
        subscription.card_on_file = True
        subscription.save()
        after = {"card": _card_label(subscription)}
        BillingEvent.objects.create(
            team_id=actor.team_id, actor=actor.user, kind=BillingEvent.Kind.CARD_CHANGED, before=before, after=after
        )
        record_audit(team=actor.team, actor=actor.user, action="billing.card_stored", target=after["card"])
    return subscription


def _card_label(subscription: Subscription) -> str | None:
    if not subscription.card_last4:
        return None
    expiry = f"{subscription.card_exp_month:02d}/{subscription.card_exp_year}"
    return f"{subscription.card_brand} •••• {subscription.card_last4} ({expiry})"
