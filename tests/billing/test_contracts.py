"""Enterprise contracts end to end through the services: a contract takes over the team's periods at
its start, its requests are invoiced per tier at close, the minimum commit is owed for the share of
the period it covered, and moving to and from a contract mid-period splits the period at the switch."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.roles import Role
from billing import closing, contracts, grants, lifecycle, metering, services
from billing.contracts import TierTerms
from billing.models import BillingEvent, Contract, Plan, Subscription
from tests.billing.usage import ODOMETER, count_billable_requests

pytestmark = pytest.mark.django_db

EXAMPLE_TIERS = [
    TierTerms(10_000, Decimal("12")),
    TierTerms(100_000, Decimal("9")),
    TierTerms(None, Decimal("6")),
]


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="cto@example.com")


def make_contract(team, *, starts_at, ends_at=None, now=None, **terms):
    """A contract created by staff at `now` (default: the moment it starts, so it starts at once)."""
    defaults = {"pricing": Contract.Pricing.GRADUATED, "tiers": EXAMPLE_TIERS}
    return contracts.create_contract(
        team_id=team.pk,
        actor=None,
        starts_at=starts_at,
        ends_at=ends_at or starts_at + timedelta(days=365),
        now=now or starts_at,
        **{**defaults, **terms},
    )


def close(period):
    return closing.close_period(period.pk, now=period.end + timedelta(hours=2))


def test_a_team_moving_to_a_contract_mid_period_pays_its_free_requests_nothing_and_the_rest_per_tier(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    with time_machine.travel(period.start + timedelta(days=1), tick=False):
        vehicle = count_billable_requests(team, 60)  # on Free
    with django_capture_on_commit_callbacks(execute=True):
        contract = make_contract(team, starts_at=period.start + timedelta(days=10), minimum_cents=0)
    send_queued_emails()
    with time_machine.travel(period.start + timedelta(days=11), tick=False):
        count_billable_requests(team, 150, vehicle=vehicle)  # beyond Free's 100: the contract is unlimited

    contract.refresh_from_db()
    assert contract.status == "active" and contract.previous_plan.code == "free"
    assert Subscription.objects.get(team=team).plan.code == "enterprise"
    assert mail.outbox[0].subject == "Your Enterprise contract has started"
    period.refresh_from_db()
    assert (period.requests_used, period.request_allowance, period.contract_id) == (210, None, contract.pk)

    invoice = close(period)
    lines = [(line.description, line.quantity, line.amount_cents) for line in invoice.lines.all()]
    assert lines == [("Odometer requests", 60, 0), ("Requests 1–10,000", 150, 150 * 12)]
    assert invoice.total_cents == 1_800
    assert (invoice.collection, invoice.status) == ("invoice", "open")
    assert invoice.due_at == invoice.issued_at + timedelta(days=30)


def test_a_contract_aligned_with_the_next_period_takes_that_whole_period_and_owes_its_whole_minimum(
    owner_membership,
):
    team = owner_membership.team
    first = lifecycle.current_period(team.pk)
    count_billable_requests(team, 30)
    contract = make_contract(
        team, starts_at=first.end, now=first.start, pricing=Contract.Pricing.VOLUME, minimum_cents=50_000
    )
    assert Contract.objects.get(pk=contract.pk).status == "scheduled"
    assert lifecycle.current_period(team.pk).contract_id is None  # this period stays on Free

    # The first request of the next period comes hours after it began: the contract still covers it all.
    with time_machine.travel(first.end + timedelta(hours=5), tick=False):
        count_billable_requests(team, 200)
        second = lifecycle.current_period(team.pk)
    contract.refresh_from_db()
    assert contract.started_at == first.end
    assert (second.contract_id, second.plan.code, second.request_allowance) == (contract.pk, "enterprise", None)

    assert [(line.quantity, line.amount_cents) for line in close(first).lines.all()] == [(30, 0)]
    lines = [(line.kind, line.description, line.quantity, line.amount_cents) for line in close(second).lines.all()]
    assert lines == [
        ("usage", "Requests (volume price)", 200, 200 * 12),
        ("minimum", "Monthly minimum commitment top-up", 1, 50_000 - 2_400),
    ]


def test_the_beat_task_starts_a_scheduled_contract_once(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    starts_at = period.start + timedelta(days=3)
    contract = make_contract(team, starts_at=starts_at, now=period.start)
    with django_capture_on_commit_callbacks(execute=True):
        assert contracts.switch_due_contracts(now=starts_at - timedelta(minutes=1)) == []
        assert contracts.switch_due_contracts(now=starts_at + timedelta(seconds=30)) == [team.pk]
        assert contracts.switch_due_contracts(now=starts_at + timedelta(minutes=1)) == []  # again: nothing
    send_queued_emails()
    contract.refresh_from_db()
    assert (contract.status, contract.started_at) == ("active", starts_at + timedelta(seconds=30))
    assert BillingEvent.objects.filter(team=team, kind="contract", after__action="started").count() == 1
    assert [m.subject for m in mail.outbox] == ["Your Enterprise contract has started"]


def test_ending_a_contract_mid_period_returns_to_the_plan_before_and_owes_a_pro_rated_minimum(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    team = owner_membership.team
    lifecycle.subscription_for(team.pk)
    Subscription.objects.filter(team=team).update(card_on_file=True)  # a card, as far as plan switching cares
    services.switch_plan(actor=owner_membership, plan_code="payg")
    period = lifecycle.current_period(team.pk)
    length = period.end - period.start
    contract = make_contract(team, starts_at=period.start, now=period.start, minimum_cents=90_000)
    assert contract.previous_plan.code == "payg"
    with time_machine.travel(period.start + length / 4, tick=False):
        vehicle = count_billable_requests(team, 20)
    ends_at = period.start + length / 3
    with django_capture_on_commit_callbacks(execute=True):
        contracts.end_contract(contract.pk, actor=None, reason="Customer moved to self-serve", now=ends_at)
    send_queued_emails()
    with time_machine.travel(period.start + length / 2, tick=False):
        count_billable_requests(team, 10, vehicle=vehicle)  # back on Pay-as-you-go: 15 cents each

    subscription = Subscription.objects.get(team=team)
    assert subscription.plan.code == "payg"
    period.refresh_from_db()
    assert (period.contract_id, period.request_allowance, period.unit_price_cents) == (None, 2_000, 15)
    assert mail.outbox[-1].subject == "Your Enterprise contract has ended"
    assert "Pay-as-you-go" in mail.outbox[-1].body

    lines = [(line.kind, line.quantity, line.amount_cents) for line in close(period).lines.all()]
    assert lines == [("usage", 10, 150), ("usage", 20, 240), ("minimum", 1, 30_000 - 240)]  # 90,000 × ⅓


def test_a_contract_ending_when_the_plan_before_needs_a_card_that_is_gone_falls_back_to_free(owner_membership):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    contract = make_contract(team, starts_at=period.start, now=period.start)
    Contract.objects.filter(pk=contract.pk).update(previous_plan=Plan.objects.get(code="payg"))
    contracts.end_contract(contract.pk, actor=None, reason="Contract not renewed")
    assert Subscription.objects.get(team=team).plan.code == "free"
    assert lifecycle.current_period(team.pk).request_allowance == 100


def test_a_renewal_back_to_back_keeps_the_plan_to_return_to_and_rates_each_contract_on_its_own(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    middle = period.start + (period.end - period.start) / 2
    first = make_contract(team, starts_at=period.start, ends_at=middle, now=period.start, reference="2026-A")
    second = make_contract(
        team, starts_at=middle, now=period.start, reference="2027-A", tiers=[TierTerms(None, Decimal("5"))]
    )
    with time_machine.travel(period.start + timedelta(hours=1), tick=False):
        vehicle = count_billable_requests(team, 40)
    send_queued_emails()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert contracts.switch_due_contracts(now=middle) == [team.pk]
    send_queued_emails()
    assert [m.subject for m in mail.outbox] == ["Your Enterprise contract has started"]  # not "ended" too
    with time_machine.travel(middle + timedelta(hours=1), tick=False):
        count_billable_requests(team, 30, vehicle=vehicle)

    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, second.status) == ("ended", "active")
    assert second.previous_plan.code == "free"  # not Enterprise: where the team goes when the renewal ends
    lines = [(line.description, line.quantity, line.amount_cents) for line in close(period).lines.all()]
    assert lines == [
        ("Contract 2026-A: Requests 1–10,000", 40, 480),
        ("Contract 2027-A: Requests beyond 0", 30, 150),
    ]


def test_a_request_that_fails_under_a_contract_costs_nothing(owner_membership):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    make_contract(team, starts_at=period.start, now=period.start)
    vehicle = count_billable_requests(team, 5)
    reservation = metering.reserve(
        request_id="fails-1", team_id=team.pk, application_id=None, vehicle_id=vehicle.pk, endpoint=ODOMETER
    )
    metering.release(reservation)
    invoice = close(lifecycle.current_period(team.pk))
    assert [(line.quantity, line.amount_cents) for line in invoice.lines.all()] == [(5, 60)]


def test_a_contract_with_a_minimum_and_no_usage_invoices_the_minimum(owner_membership):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    make_contract(team, starts_at=period.start, now=period.start, minimum_cents=50_000)
    invoice = close(period)
    assert [(line.kind, line.amount_cents) for line in invoice.lines.all()] == [("minimum", 50_000)]
    assert (invoice.total_cents, invoice.status, invoice.collection) == (50_000, "open", "invoice")


# --- what a contract rules out ---------------------------------------------------------------------------------------


def test_contracts_of_a_team_cannot_overlap(owner_membership):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    make_contract(team, starts_at=period.start, ends_at=period.start + timedelta(days=90), now=period.start)
    with pytest.raises(contracts.ContractError, match="already covers"):
        make_contract(team, starts_at=period.start + timedelta(days=60), now=period.start)
    assert Contract.objects.filter(team=team).count() == 1


def test_a_card_paid_contract_needs_a_card_on_file(owner_membership):
    team = owner_membership.team
    with pytest.raises(contracts.ContractError, match="no card on file"):
        make_contract(team, starts_at=timezone.now(), paid_by=Contract.PaidBy.CARD)
    assert not Contract.objects.exists()


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([TierTerms(1_000, Decimal("12"))], "exactly one last tier"),
        ([TierTerms(None, Decimal("12")), TierTerms(None, Decimal("9"))], "exactly one last tier"),
        ([TierTerms(0, Decimal("12")), TierTerms(None, Decimal("9"))], "positive and increasing"),
        ([TierTerms(1_000, Decimal("-1")), TierTerms(None, Decimal("9"))], "cannot be negative"),
    ],
)
def test_tiers_that_cannot_price_requests_are_refused_with_the_reason(owner_membership, tiers, message):
    with pytest.raises(contracts.ContractError, match=message):
        make_contract(owner_membership.team, starts_at=timezone.now(), tiers=tiers)
    assert not Contract.objects.exists()


def test_a_team_has_a_grant_or_a_contract_not_both(owner_membership):
    team = owner_membership.team
    grant = grants.start_grant(team_id=team.pk)
    with pytest.raises(contracts.ContractError, match="Garage grant"):
        make_contract(team, starts_at=timezone.now())
    grants.end_grant(grant.pk)
    make_contract(team, starts_at=timezone.now())
    with pytest.raises(grants.GrantError, match="Enterprise contract"):
        grants.start_grant(team_id=team.pk)


def test_owners_cannot_switch_plans_themselves_under_a_contract(owner_membership):
    make_contract(owner_membership.team, starts_at=timezone.now())
    with pytest.raises(services.PlanChangeError, match="set by its Enterprise contract"):
        services.switch_plan(actor=owner_membership, plan_code="free")
    assert Subscription.objects.get(team=owner_membership.team).plan.code == "enterprise"


def test_a_scheduled_contract_whose_whole_term_passed_never_starts(owner_membership):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    contract = make_contract(
        team, starts_at=period.start + timedelta(days=1), ends_at=period.start + timedelta(days=2), now=period.start
    )
    contracts.switch_due_contracts(now=period.start + timedelta(days=3))
    contract.refresh_from_db()
    assert contract.status == "canceled"
    assert Subscription.objects.get(team=team).plan.code == "free"


def test_staff_cancel_a_scheduled_contract_with_a_reason_and_cannot_end_it_twice(owner_membership):
    team = owner_membership.team
    contract = make_contract(team, starts_at=timezone.now() + timedelta(days=5), now=timezone.now())
    with pytest.raises(contracts.ContractError, match="Say why"):
        contracts.end_contract(contract.pk, actor=None, reason="  ")
    contracts.end_contract(contract.pk, actor=None, reason="Deal fell through")
    with pytest.raises(contracts.ContractError, match="canceled already"):
        contracts.end_contract(contract.pk, actor=None, reason="again")
    event = BillingEvent.objects.filter(team=team, kind="contract").order_by("-id").first()
    assert event.after["action"] == "canceled" and event.after["reason"] == "Deal fell through"


def test_a_contract_whose_end_has_passed_is_refused(owner_membership):
    now = timezone.now()
    with pytest.raises(contracts.ContractError, match="end has passed"):
        make_contract(
            owner_membership.team, starts_at=now - timedelta(days=60), ends_at=now - timedelta(days=1), now=now
        )
    assert not Contract.objects.exists()


def test_the_beat_starts_a_contract_of_a_team_without_a_period_yet_at_the_periods_start(owner_membership):
    team = owner_membership.team
    first = lifecycle.current_period(team.pk)
    contract = make_contract(team, starts_at=first.end, now=first.start)
    # Nobody calls the API at the boundary: the beat opens the next period, and the contract covers all of it.
    assert contracts.switch_due_contracts(now=first.end + timedelta(seconds=40)) == [team.pk]
    contract.refresh_from_db()
    assert (contract.status, contract.started_at) == ("active", first.end)
