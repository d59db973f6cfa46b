"""Usage for the demo teams, so a newcomer on `make run` sees a Billing tab with history at once.

The usage goes through the real metering service (backdated), so the counters, events, rollups and
alerts are exactly what real traffic would have produced. Idempotent: a period that already has
usage is left alone.

Besides the Free "Demo Motors", the demo developer owns an Enterprise team (`seed_enterprise_demo`)
on an invoice-paid graduated contract, whose last period is closed through the real close, so its
invoice shows a line per tier.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from accounts.audit import record_audit
from accounts.models import Application, Membership, Team, User
from accounts.roles import Role
from billing import closing, contracts, lifecycle, metering, periods
from billing.contracts import TierTerms
from billing.models import BillingPeriod, Contract, Invoice, UsageDaily
from vehicles import demo as vehicles_demo

DEMO_HISTORY_DAYS = 20
BILLABLE_ENDPOINTS = [
    "/vehicles/{id}",
    "/vehicles/{id}/odometer",
    "/vehicles/{id}/location",
    "/vehicles/{id}/security",
    "/vehicles/{id}/battery",
]
FREE_ENDPOINTS = ["/vehicles", "/user", "/vehicles/{id}/permissions"]


def seed_demo_usage(*, team: Team, application: Application, vehicle_ids: list[int], now=None) -> int:
    """Fill the demo team's current period with a few plausible requests a day; returns how many were billable."""
    now = now or timezone.now()
    if not BillingPeriod.objects.filter(team=team).exists():
        # A brand-new demo team: start its billing cycle three weeks ago, so there is a history to show.
        Team.objects.filter(pk=team.pk).update(created_at=now - timedelta(days=DEMO_HISTORY_DAYS))
    period = lifecycle.current_period(team.pk, now)
    if period.requests_used or UsageDaily.objects.filter(period=period).exists():
        return 0
    rng = random.Random(f"demo-usage:{team.pk}:{period.start.date()}")  # noqa: S311 (demo data, repeatable)
    counted, day = 0, period.start
    while day < now:
        for index in range(rng.randint(0, 3)):  # at most 63 in 21 days: below Free's 80% alert
            moment = min(day + timedelta(hours=rng.randint(8, 20), minutes=rng.randint(0, 59)), now)
            metering.reserve(
                request_id=f"demo:{team.pk}:{day:%Y%m%d}:{index}",
                team_id=team.pk,
                application_id=application.pk,
                vehicle_id=rng.choice(vehicle_ids),
                endpoint=rng.choice(BILLABLE_ENDPOINTS),
                now=moment,
            )
            counted += 1
        for _ in range(rng.randint(1, 3)):
            moment = min(day + timedelta(hours=rng.randint(8, 20)), now)
            endpoint = rng.choice(FREE_ENDPOINTS)
            vehicle_id = rng.choice(vehicle_ids) if "{id}" in endpoint else None
            metering.record_unbilled(
                team_id=team.pk, application_id=application.pk, vehicle_id=vehicle_id, endpoint=endpoint, now=moment
            )
        day += timedelta(days=1)
    metering.flush_unbilled()  # its non-billable counts now, not within the second (billing/unbilled.py)
    return counted


# --- the Enterprise demo team --------------------------------------------------------------------------------------

# Sorts after "Demo Motors": a user's first team by name is the one the dashboard opens on, and the
# newcomer should land on the Free demo team whose credentials `seed_demo` prints.
DEMO_ENTERPRISE_TEAM = "Demo Trucking"
DEMO_ENTERPRISE_APPLICATION = "Dispatch app"
DEMO_CONTRACT_REFERENCE = "DEMO-ENT-1"
DEMO_ENTERPRISE_AGE_DAYS = 40  # one closed period, and part of the current one
# Small tiers, so a few hundred backdated requests reach every tier while the seed stays fast
# (each goes through metering.reserve: about 2 ms on SQLite).
DEMO_CONTRACT_TIERS = [
    TierTerms(100, Decimal("12")),
    TierTerms(500, Decimal("9")),
    TierTerms(None, Decimal("6")),
]
DEMO_CONTRACT_MINIMUM_CENTS = 5_000
DEMO_CONTRACT_VEHICLES = 50
DEMO_LAST_PERIOD_REQUESTS = 600  # 100 × 12¢ + 400 × 9¢ + 100 × 6¢ = $54.00, above the $50 minimum


@dataclass(frozen=True)
class EnterpriseDemo:
    team: str
    contract: str
    invoice: str


def seed_enterprise_demo(*, user: User, actor: User | None = None, now: datetime | None = None) -> EnterpriseDemo:
    """Create or repair the demo user's Enterprise team, its contract, its closed last period and its usage."""
    now = now or timezone.now()
    # The contract's and the invoice's emails would go to demo addresses (or, on the console backend, into
    # the command's output, breaking --json); everything commits before the override ends.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"), transaction.atomic():
        team = _enterprise_team(user, now)
        application, _ = Application.objects.get_or_create(
            team=team, name=DEMO_ENTERPRISE_APPLICATION, defaults={"created_by": user}
        )
        fleet = {"make": vehicles_demo.DEMO_FLEET_MAKE, "email": vehicles_demo.DEMO_FLEET_EMAIL}
        vehicles_demo.seed_demo_owner(
            team=team, password=vehicles_demo.DEMO_FLEET_PASSWORD, vehicles=vehicles_demo.DEMO_FLEET_VEHICLES, **fleet
        )
        vehicle_ids = vehicles_demo.connect_demo_vehicles(application=application, **fleet)
        contract = _enterprise_contract(team, actor)
        invoice = _close_first_period(team, application, vehicle_ids, contract.starts_at, now)
        seed_demo_usage(team=team, application=application, vehicle_ids=vehicle_ids, now=now)
    return EnterpriseDemo(team=team.name, contract=contract.reference, invoice=invoice.number if invoice else "")


def _enterprise_team(user: User, now: datetime) -> Team:
    team = Team.objects.filter(name=DEMO_ENTERPRISE_TEAM, memberships__user=user).first()
    if team is None:
        team = Team.objects.create(name=DEMO_ENTERPRISE_TEAM, created_by=user)
        record_audit(team=team, actor=user, action="team.created", target=team.name, seeded=True)
    if not BillingPeriod.objects.filter(team=team).exists():
        # Backdated before its first period opens, so the team has a finished period to invoice.
        Team.objects.filter(pk=team.pk).update(created_at=now - timedelta(days=DEMO_ENTERPRISE_AGE_DAYS))
        team.refresh_from_db()
    Membership.objects.update_or_create(team=team, user=user, defaults={"role": Role.OWNER})
    return team


def _enterprise_contract(team: Team, actor: User | None) -> Contract:
    contract = Contract.objects.filter(team=team, reference=DEMO_CONTRACT_REFERENCE).first()
    if contract is not None:
        return contract
    start = periods.anchor_of(team.created_at)  # the first period's start: the contract covers all of it
    return contracts.create_contract(
        team_id=team.pk,
        actor=actor,
        starts_at=start,
        ends_at=periods.period_start(start, 12),
        pricing=Contract.Pricing.GRADUATED,
        tiers=DEMO_CONTRACT_TIERS,
        vehicle_allowance=DEMO_CONTRACT_VEHICLES,
        minimum_cents=DEMO_CONTRACT_MINIMUM_CENTS,
        paid_by=Contract.PaidBy.INVOICE,
        reference=DEMO_CONTRACT_REFERENCE,
        now=start,
    )


def _close_first_period(team, application, vehicle_ids, start: datetime, now: datetime) -> Invoice | None:
    """Fill the team's first period with usage and close it as the beat task would have; its invoice."""
    period = lifecycle.current_period(team.pk, start)
    if period.status == BillingPeriod.Status.OPEN and not period.requests_used:
        _fill_period(period, application, vehicle_ids, DEMO_LAST_PERIOD_REQUESTS)
    closing.close_period(period.pk, now=min(period.end + closing.close_grace() + timedelta(minutes=5), now))
    return Invoice.objects.filter(period=period).first()


def _fill_period(period: BillingPeriod, application: Application, vehicle_ids: list[int], count: int) -> None:
    """`count` billable requests spread evenly over the period's days, and a few free ones a day."""
    rng = random.Random(f"demo-enterprise:{period.team_id}:{period.start.date()}")  # noqa: S311 (demo data, repeatable)
    days = (period.end - period.start).days
    for index in range(count):
        day = period.start + timedelta(days=index * days // count)
        metering.reserve(
            request_id=f"demo-enterprise:{period.team_id}:{period.start:%Y%m%d}:{index}",
            team_id=period.team_id,
            application_id=application.pk,
            vehicle_id=rng.choice(vehicle_ids),
            endpoint=rng.choice(BILLABLE_ENDPOINTS),
            now=day + timedelta(hours=rng.randint(7, 19), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59)),
        )
    for offset in range(days):
        for _ in range(rng.randint(1, 3)):
            endpoint = rng.choice(FREE_ENDPOINTS)
            metering.record_unbilled(
                team_id=period.team_id,
                application_id=application.pk,
                vehicle_id=rng.choice(vehicle_ids) if "{id}" in endpoint else None,
                endpoint=endpoint,
                now=period.start + timedelta(days=offset, hours=rng.randint(7, 19)),
            )
