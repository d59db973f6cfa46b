"""Storing a team's card with the real stripe SDK against localstripe (a fake Stripe server, started by the suite).

The page's Stripe.js step is stood in for by confirming the SetupIntent with a test PaymentMethod here, as
Stripe.js would with the typed card; everything else is the real flow: customer, SetupIntent, retrieval, storage.
"""

import pytest
import stripe
from django.core.exceptions import PermissionDenied

from accounts.models import AuditEvent
from accounts.roles import Role
from billing import cards, lifecycle
from billing.models import BillingEvent
from billing.stripe_gateway import stripe_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="payer@example.com")


def confirm_in_the_browser(intent, payment_method: str):
    """What Stripe.js does on the Billing tab: confirm the SetupIntent with the card, here a test PaymentMethod
    (`pm_card_visa`, …): raw card numbers never go through the secret key (tests/e2e types them into Stripe.js)."""
    return stripe_client().v1.setup_intents.confirm(intent.id, params={"payment_method": payment_method})


def test_a_confirmed_card_becomes_the_teams_default(owner_membership):
    intent = cards.start_card_setup(owner_membership)
    confirm_in_the_browser(intent, "pm_card_visa")

    subscription = cards.finish_card_setup(owner_membership, intent.id)

    assert subscription.card_on_file is True
    assert (subscription.card_brand, subscription.card_last4, subscription.card_exp_year) == ("visa", "4242", 2030)
    customer = stripe_client().v1.customers.retrieve(subscription.stripe_customer_id)
    assert customer.metadata["team_id"] == str(owner_membership.team_id)
    assert customer.invoice_settings.default_payment_method == subscription.payment_method_id
    assert BillingEvent.objects.filter(team_id=owner_membership.team_id, kind="card_changed").exists()
    assert AuditEvent.objects.filter(team_id=owner_membership.team_id, action="billing.card_stored").exists()


def test_the_customer_is_created_once(owner_membership):
    first = cards.ensure_customer(owner_membership)
    assert cards.ensure_customer(owner_membership) == first
    assert cards.start_card_setup(owner_membership).customer == first


def test_a_declined_card_stores_nothing(owner_membership):
    intent = cards.start_card_setup(owner_membership)
    with pytest.raises(stripe.CardError):
        confirm_in_the_browser(intent, "pm_card_chargeDeclined")

    with pytest.raises(cards.CardError):
        cards.finish_card_setup(owner_membership, intent.id)

    assert lifecycle.subscription_for(owner_membership.team_id).card_on_file is False


def test_a_card_needing_3d_secure_is_not_stored_until_confirmed(owner_membership):
    intent = cards.start_card_setup(owner_membership)
    confirm_in_the_browser(intent, "pm_card_authenticationRequiredOnSetup")
    with pytest.raises(cards.CardError, match="confirm this card"):
        cards.finish_card_setup(owner_membership, intent.id)
    assert lifecycle.subscription_for(owner_membership.team_id).card_on_file is False


def test_another_teams_setup_intent_is_refused(owner_membership, other_team):
    from accounts.models import Membership

    rival = Membership.objects.get(team=other_team, role=Role.OWNER)
    theirs = cards.start_card_setup(rival)
    confirm_in_the_browser(theirs, "pm_card_visa")
    cards.ensure_customer(owner_membership)

    with pytest.raises(cards.CardError, match="not one of this team's"):
        cards.finish_card_setup(owner_membership, theirs.id)
    assert lifecycle.subscription_for(owner_membership.team_id).card_on_file is False


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_only_owners_manage_the_card(make_member, role):
    with pytest.raises(PermissionDenied):
        cards.start_card_setup(make_member(role))
