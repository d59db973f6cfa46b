"""A team's card on file, with Stripe: its Customer, a SetupIntent for the page, and storing the result.

DESIGN §5: a Stripe Customer per team (created once); a SetupIntent (`usage=off_session`) that the
Billing tab confirms with Stripe.js; on return the server retrieves the SetupIntent itself (it does
not wait for webhooks: localstripe sends no `setup_intent.*` events) and stores the PaymentMethod as
the team's default. Only the card's brand, last 4 digits and expiry are kept here.

The SetupIntent is made only when the Owner submits the card form (the page's script asks
`card_setup_intent` for one), not on every view of the page: Stripe keeps every SetupIntent made.

A replaced card's PaymentMethod is detached from the Customer once the new card is stored
(`detach_replaced_cards`); if Stripe cannot be reached it stays listed in `cards_to_detach` and beat's
`detach_replaced_cards` tries again. Removing the card (`remove_card`) detaches the PaymentMethod at
Stripe and forgets it here, unless a paid plan still needs it (`why_card_is_needed`: the plan, a
scheduled switch, or an unpaid invoice).

`stripe_trouble` words a failed Stripe call for the developer; the views log the details for staff.

No transaction or row lock is held across a call to Stripe: each call sits between short transactions
(a conditional UPDATE stores the Customer once; a removal is committed first and undone if Stripe refuses).
"""

import logging
import uuid

import stripe
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.audit import record_audit
from accounts.models import Membership
from accounts.roles import Perm, role_can
from billing import closing
from billing.alerts import owner_emails
from billing.lifecycle import subscription_for
from billing.models import BillingEvent, BillingPeriod, Contract, Invoice, Subscription
from billing.stripe_gateway import as_dict, stripe_client
from billing.templatetags.billing_tags import cents

logger = logging.getLogger(__name__)

NO_CARD = "There is no card to remove."
NO_CARD_ON_FILE = {
    "payment_method_id": "",
    "card_brand": "",
    "card_last4": "",
    "card_exp_month": None,
    "card_exp_year": None,
    "card_on_file": False,
}


class CardError(Exception):
    """Why a card could not be stored; the message is shown to the developer."""


STRIPE_UNREACHABLE = "We couldn't reach our payment provider. Try again in a minute."
STRIPE_BUSY = "Our payment provider is busy right now. Try again in a minute."
STRIPE_FAILED = "Our payment provider had a problem with this request. Try again in a minute."
STRIPE_MISCONFIGURED = (
    "Card changes are unavailable right now because of a problem on our side; our team has been alerted. "
    "Try again later."
)
STRIPE_REFUSED = "Our payment provider refused this request. Reload the page and try again."
STRIPE_CONFLICT = "Another change to this card was in progress. Reload the page and try again."


def stripe_trouble(error: stripe.StripeError) -> str:
    """What to tell the developer when a call to Stripe failed; nothing was stored (the details are for the log)."""
    if isinstance(error, stripe.CardError):  # the card itself: Stripe's message is written for the cardholder
        return error.user_message or "Your card was declined. Try another card."
    for kind, message in (
        (stripe.APIConnectionError, STRIPE_UNREACHABLE),
        (stripe.RateLimitError, STRIPE_BUSY),
        (stripe.AuthenticationError, STRIPE_MISCONFIGURED),  # our key is wrong or revoked: staff must act
        (stripe.PermissionError, STRIPE_MISCONFIGURED),  # a restricted key without the right
        (stripe.IdempotencyError, STRIPE_CONFLICT),
        (stripe.InvalidRequestError, STRIPE_REFUSED),
        (stripe.APIError, STRIPE_FAILED),
    ):
        if isinstance(error, kind):
            return message
    return STRIPE_FAILED


def _require_owner(actor: Membership) -> None:
    if not role_can(actor.role, Perm.MANAGE_BILLING):
        raise PermissionDenied("Only Owners manage the card.")


def ensure_customer(actor: Membership) -> str:
    """The team's Stripe Customer id, created the first time (once: a run that loses the race deletes its own)."""
    _require_owner(actor)
    subscription_for(actor.team_id)
    stored = Subscription.objects.values_list("stripe_customer_id", flat=True).get(team_id=actor.team_id)
    if stored:
        return stored
    emails = owner_emails(actor.team_id)
    customer = stripe_client().v1.customers.create(  # no transaction open meanwhile
        params={
            "name": actor.team.name,
            "email": emails[0] if emails else actor.user.email,
            "metadata": {"team_id": str(actor.team_id)},
        },
        options={"idempotency_key": _customer_key(actor.team_id)},
    )
    # Stored only if no other request stored one meanwhile (a conditional UPDATE, its own short transaction).
    if Subscription.objects.filter(team_id=actor.team_id, stripe_customer_id="").update(
        stripe_customer_id=customer.id, updated_at=timezone.now()
    ):
        return customer.id
    stored = Subscription.objects.values_list("stripe_customer_id", flat=True).get(team_id=actor.team_id)
    if customer.id != stored:  # Stripe answers the same key with the same Customer; localstripe makes another
        _delete_customer(customer.id)
    return stored


def _customer_key(team_id: int) -> str:
    """The idempotency key the team's Customer is created under: a random id, stored before the first call.

    Concurrent first calls store one key between them (a conditional UPDATE), so they send the same key and real
    Stripe answers them with the same Customer. A key made from the team's row id would repeat after a database
    reset or in another environment sharing the Stripe account, and fetch that other Customer."""
    Subscription.objects.filter(team_id=team_id, stripe_customer_key="").update(
        stripe_customer_key=f"customer-{uuid.uuid4()}"
    )
    return Subscription.objects.values_list("stripe_customer_key", flat=True).get(team_id=team_id)


def _delete_customer(customer_id: str) -> None:
    """Delete a Customer this team will never use (nothing is attached to it yet)."""
    try:
        stripe_client().v1.customers.delete(customer_id)
    except stripe.StripeError:  # an empty Customer left behind costs nothing; the team keeps the stored one
        logger.warning("Could not delete the spare Stripe Customer %s", customer_id, exc_info=True)


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
        replaced = subscription.payment_method_id
        if replaced and replaced != method.id and replaced not in subscription.cards_to_detach:
            subscription.cards_to_detach = [*subscription.cards_to_detach, replaced]
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
    detach_replaced_cards(actor.team_id)  # committed first: whatever Stripe answers, the new card is stored
    return subscription


def detach_replaced_cards(team_id: int) -> int:
    """Detach the team's replaced PaymentMethods from its Customer at Stripe; how many are done.

    No transaction is open during the calls. One Stripe refuses as unknown or not attached is done too (nothing
    is left to detach); one it could not be asked about stays listed for beat's next try. The card in use is
    never detached, even if listed.
    """
    row = Subscription.objects.filter(team_id=team_id).values_list("cards_to_detach", "payment_method_id").first()
    if row is None or not row[0]:
        return 0
    listed, current = row
    done = []
    for payment_method_id in listed:
        if payment_method_id != current:
            try:
                _detach(payment_method_id)  # one Stripe no longer has attached counts as done
            except stripe.StripeError:
                logger.warning(
                    "Could not detach the replaced PaymentMethod %s of team %s; beat tries again",
                    payment_method_id,
                    team_id,
                    exc_info=True,
                )
                continue
        done.append(payment_method_id)
    if done:
        with transaction.atomic():  # a card replaced meanwhile may have been listed: keep it
            subscription = Subscription.objects.select_for_update(of=("self",)).get(team_id=team_id)
            subscription.cards_to_detach = [pm for pm in subscription.cards_to_detach if pm not in done]
            subscription.save(update_fields=["cards_to_detach", "updated_at"])
    return len(done)


def detach_all_replaced_cards() -> int:
    """Beat's retry of `detach_replaced_cards` for every team with a replaced card still attached at Stripe."""
    team_ids = Subscription.objects.exclude(cards_to_detach=[]).values_list("team_id", flat=True)
    return sum(detach_replaced_cards(team_id) for team_id in list(team_ids))


def why_card_is_needed(subscription: Subscription) -> str | None:
    """Why the team's card cannot be removed now (a paid plan needs it), or None if it can."""
    plan, pending = subscription.plan, subscription.pending_plan
    if plan.requires_card:
        return (
            f"{plan.name} charges this card, so it cannot be removed. Switch to a plan without charges "
            "first; the card can be removed once the switch takes effect."
        )
    card_contract = subscription.team.contracts.filter(
        status__in=[Contract.Status.SCHEDULED, Contract.Status.ACTIVE], paid_by=Contract.PaidBy.CARD
    ).first()
    if card_contract is not None:
        return (
            f"Your Enterprise contract ({card_contract.name}) is paid by card, so the card cannot be removed. "
            "Replace it with another card, or ask your account manager to switch the contract to invoice terms."
        )
    if pending is not None and pending.requires_card:
        when = f" on {subscription.pending_at:%-d %B %Y}" if subscription.pending_at else ""
        return f"Your switch to {pending.name}{when} needs this card. Cancel the scheduled switch to remove it."
    # Periods before invoices: a period closing between the two queries then shows up as its invoice.
    uninvoiced = BillingPeriod.objects.filter(
        team_id=subscription.team_id, status=BillingPeriod.Status.OPEN, accrued_cents__gt=0
    ).first()
    unpaid = (
        Invoice.objects.filter(
            team_id=subscription.team_id,
            status__in=[Invoice.Status.OPEN, Invoice.Status.PAST_DUE],
            total_cents__gt=0,
            collection=Invoice.Collection.CARD,  # an invoice-paid invoice is paid by transfer, not this card
        )
        .order_by("issued_at")
        .first()
    )
    if unpaid is not None:
        return (
            f"Invoice {unpaid.number} ({cents(unpaid.total_cents)}) is still to be charged to this card. "
            "The card can be removed once it is paid."
        )
    owed = uninvoiced.accrued_cents if uninvoiced is not None else 0
    if uninvoiced is None:
        # A card-paid contract's requests are counted at 0 and priced at close: rate what the period holds so far.
        uninvoiced, owed = closing.contract_period_owed_by_card(subscription.team_id) or (None, 0)
    if uninvoiced is not None:  # e.g. a period that ended on a paid plan, invoiced within the grace hour
        return (
            f"The period that ends {uninvoiced.end:%-d %B %Y} has {cents(owed)} to invoice "
            "and charge to this card. The card can be removed once that invoice is paid."
        )
    return None


def remove_card(actor: Membership) -> None:
    """Detach the team's card at Stripe and forget it; CardError if there is none or a paid plan needs it.

    The card is forgotten here first, in a short transaction under the subscription's lock (from then on nothing
    charges it and no plan switch counts on it), then detached at Stripe with no transaction open; if Stripe
    fails, the card is put back (unless another was stored meanwhile) and the error propagates: nothing changed.
    """
    _require_owner(actor)
    subscription_for(actor.team_id)
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(of=("self",))
            .select_related("plan", "pending_plan")
            .get(team_id=actor.team_id)
        )
        if not subscription.payment_method_id and not subscription.card_on_file:
            raise CardError(NO_CARD)
        reason = why_card_is_needed(subscription)
        if reason:
            raise CardError(reason)
        card = {field: getattr(subscription, field) for field in NO_CARD_ON_FILE}
        before = {"card": _card_label(subscription)}
        _set_card(subscription, **NO_CARD_ON_FILE)
        events = [
            BillingEvent.objects.create(
                team_id=actor.team_id,
                actor=actor.user,
                kind=BillingEvent.Kind.CARD_CHANGED,
                before=before,
                after={"card": None},
            ),
            record_audit(team=actor.team, actor=actor.user, action="billing.card_removed", target=before["card"] or ""),
        ]
    if not card["payment_method_id"]:
        return
    try:
        _detach(card["payment_method_id"])
    except stripe.StripeError:
        _put_back(actor.team_id, card, events)
        raise


def _set_card(subscription: Subscription, **card) -> None:
    for field, value in card.items():
        setattr(subscription, field, value)
    subscription.save(update_fields=[*card, "updated_at"])


def _put_back(team_id: int, card: dict, events: list) -> None:
    """Undo a removal Stripe refused: the card, and the records of its removal, as they were."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update(of=("self",)).get(team_id=team_id)
        if subscription.payment_method_id or subscription.card_on_file:
            return  # another card was stored meanwhile: it stays, and the removal of this one stands
        _set_card(subscription, **card)
        for event in events:
            event.delete()


def _detach(payment_method_id: str) -> None:
    """Detach at Stripe; other Stripe errors propagate (and remove_card puts the card back)."""
    try:
        stripe_client().v1.payment_methods.detach(payment_method_id)
    except stripe.InvalidRequestError:
        # Stripe no longer has it attached (deleted, or detached in Stripe's dashboard): it can never be
        # charged again, so forgetting it here is what the Owner asked for, not a failure.
        logger.warning("PaymentMethod %s was already gone at Stripe; forgetting it", payment_method_id)


def _card_label(subscription: Subscription) -> str | None:
    if not subscription.card_last4:
        return None
    expiry = f"{subscription.card_exp_month:02d}/{subscription.card_exp_year}"
    return f"{subscription.card_brand} •••• {subscription.card_last4} ({expiry})"
