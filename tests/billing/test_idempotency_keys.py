"""Idempotency keys Stripe can hold us to: random ids stored before the call, never repeated elsewhere.

Stripe keeps a key at least 24 hours and answers it with the first response: a key made from a row id
(`team-7-customer`) repeats after a database reset, or in another environment sharing the Stripe test account, and
would fetch that other Customer. The strict layer in front of localstripe replays keys as Stripe does.
"""

import uuid

import pytest

from accounts.roles import Role
from billing import cards
from billing.models import Subscription

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="keys@example.com")


def test_the_customer_key_is_random_and_stored_before_the_call(owner_membership, other_team):
    customer = cards.ensure_customer(owner_membership)
    key = Subscription.objects.get(team=owner_membership.team).stripe_customer_key
    other_owner = other_team.memberships.get(role=Role.OWNER)
    cards.ensure_customer(other_owner)

    assert uuid.UUID(key.removeprefix("customer-"))  # a random id, nothing derived from the row
    assert key != Subscription.objects.get(team=other_team).stripe_customer_key
    assert cards.ensure_customer(owner_membership) == customer  # stored: no second call


def test_a_team_after_a_database_reset_gets_a_customer_of_its_own(owner_membership):
    """The same team row id, its Stripe ids gone (a reset database): a new Customer, not the old one replayed."""
    before = cards.ensure_customer(owner_membership)
    Subscription.objects.filter(team=owner_membership.team).update(stripe_customer_id="", stripe_customer_key="")

    after = cards.ensure_customer(owner_membership)

    assert after != before
