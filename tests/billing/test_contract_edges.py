"""Edges of Enterprise contracts found in review: a card still owed, a scheduled downgrade, a late end."""

from datetime import timedelta

import pytest

from accounts.roles import Role
from billing import cards, closing, contracts, lifecycle, services
from billing.models import Contract, Subscription
from tests.billing.test_contracts import close, make_contract
from tests.billing.usage import count_billable_requests

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="cfo@example.com")


def test_the_card_cannot_be_removed_while_a_card_paid_contracts_usage_is_still_to_be_charged(owner_membership):
    """A Free team with a card signs a card-paid contract; staff end it mid-period (back to Free). The period's
    contract requests are counted at 0 (accrued_cents == 0), so why_card_is_needed lets the card go, and the
    close then issues a *card* invoice for the tiered usage and the pro-rated minimum with no card to charge."""
    team = owner_membership.team
    lifecycle.subscription_for(team.pk)
    Subscription.objects.filter(team=team).update(card_on_file=True)
    period = lifecycle.current_period(team.pk)
    contract = make_contract(
        team, starts_at=period.start, now=period.start, paid_by=Contract.PaidBy.CARD, minimum_cents=90_000
    )
    count_billable_requests(team, 50)
    contracts.end_contract(contract.pk, actor=None, reason="Customer left", now=period.start + timedelta(days=10))

    subscription = Subscription.objects.select_related("plan", "pending_plan", "team").get(team=team)
    assert subscription.plan.code == "free"
    reason = cards.why_card_is_needed(subscription)
    # What closing the period will charge to this card:
    owed = closing.rate_usage(lifecycle.current_period(team.pk)).total_cents
    assert owed > 0
    assert reason is not None, f"the card can be removed although {owed} cents are still to be charged to it"


def test_an_invoice_paid_invoice_does_not_keep_the_card_as_if_it_were_to_be_charged(owner_membership):
    """An invoice-paid (bank transfer) invoice is never charged to a card, but why_card_is_needed treats it as
    'still to be charged to this card' and refuses to let the Owner remove the card."""
    team = owner_membership.team
    lifecycle.subscription_for(team.pk)
    Subscription.objects.filter(team=team).update(card_on_file=True)
    period = lifecycle.current_period(team.pk)
    contract = make_contract(team, starts_at=period.start, now=period.start, minimum_cents=50_000)
    invoice = close(period)
    assert (invoice.collection, invoice.status, invoice.total_cents) == ("invoice", "open", 50_000)
    contracts.end_contract(contract.pk, actor=None, reason="Not renewed")  # back on Free

    subscription = Subscription.objects.select_related("plan", "pending_plan", "team").get(team=team)
    assert subscription.plan.code == "free"
    assert cards.why_card_is_needed(subscription) is None, cards.why_card_is_needed(subscription)


def test_a_downgrade_the_owner_scheduled_is_forgotten_when_the_contract_ends(owner_membership):
    """An Owner on Pay-as-you-go schedules the switch to Free; a contract starts before it takes effect and
    drops it, and remembers Pay-as-you-go as the plan to go back to: when the contract ends, the team is charged
    15 cents a request on a plan it had asked to leave."""
    team = owner_membership.team
    lifecycle.subscription_for(team.pk)
    Subscription.objects.filter(team=team).update(card_on_file=True)
    services.switch_plan(actor=owner_membership, plan_code="payg")
    services.switch_plan(actor=owner_membership, plan_code="free")  # scheduled for the period's end
    period = lifecycle.current_period(team.pk)
    contract = make_contract(team, starts_at=period.start + timedelta(days=2), now=period.start + timedelta(days=2))
    contracts.end_contract(contract.pk, actor=None, reason="Trial", now=period.start + timedelta(days=60))
    assert Subscription.objects.get(team=team).plan.code == "free"


def test_a_contract_ended_late_by_the_beat_is_dated_at_its_end_date_not_at_the_beats_run(owner_membership):
    """The beat (or a delayed worker) ends a contract after its ends_at: _switch dates the end at the run, so
    the minimum is owed past the contract's term (and requests made after ends_at were priced by its tiers)."""
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    ends_at = period.start + timedelta(days=10)
    contract = make_contract(team, starts_at=period.start, ends_at=ends_at, now=period.start, minimum_cents=90_000)
    contracts.switch_due_contracts(now=ends_at + timedelta(hours=6))
    contract.refresh_from_db()
    assert contract.status == "ended"
    assert contract.ended_at == ends_at
