"""Read models of billing for the Billing tab, the usage API and exports.

They read the period's counters and the UsageDaily rollups only, never UsageEvent rows, so each
costs a fixed number of queries whatever the volume (DESIGN §4).
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from accounts.models import Application, Team
from billing.metering import current_period, subscription_for
from billing.models import BillingEvent, BillingPeriod, Plan, Subscription, UsageAlert, UsageDaily
from vehicles.models import SimulatedVehicle


@dataclass(frozen=True)
class DayUsage:
    day: date
    billable: int
    non_billable: int


def team_periods(team: Team):
    """The team's periods, newest first (for the history and `?period=`)."""
    return BillingPeriod.objects.filter(team=team).select_related("plan").order_by("-start")


def period_starting(team: Team, start: date) -> BillingPeriod | None:
    """The team's period that starts on `start` (UTC date), or None."""
    return team_periods(team).filter(start__date=start).first()


def current_subscription(team: Team) -> Subscription:
    return Subscription.objects.select_related("plan", "pending_plan").get(pk=subscription_for(team.pk).pk)


def open_period(team: Team, now: datetime | None = None) -> BillingPeriod:
    """The period holding now, opened if needed, with its plan."""
    period = current_period(team.pk, now)
    return BillingPeriod.objects.select_related("plan").get(pk=period.pk)


def public_plans():
    return Plan.objects.order_by("sort_order", "id")


def daily_usage(period: BillingPeriod, *, until: date | None = None) -> list[DayUsage]:
    """One entry per day of the period (up to `until`, default its last day), zeros included."""
    rows = {
        row["day"]: row
        for row in UsageDaily.objects.filter(period=period)
        .values("day")
        .annotate(billable=Sum("billable"), non_billable=Sum("non_billable"))
    }
    last = min(
        until or (period.end - timedelta(microseconds=1)).date(), (period.end - timedelta(microseconds=1)).date()
    )
    days, day = [], period.start.date()
    while day <= last:
        row = rows.get(day, {})
        days.append(DayUsage(day, row.get("billable") or 0, row.get("non_billable") or 0))
        day += timedelta(days=1)
    return days


def projected_cents(period: BillingPeriod, now: datetime) -> int:
    """The period's total at the current pace: what has accrued, plus the billable requests the rest of
    the period would bring at today's rate (capped by what the allowance leaves), at the current price."""
    if now >= period.end:
        return period.accrued_cents
    elapsed = max((now - period.start).total_seconds(), 1)
    remaining_seconds = (period.end - now).total_seconds()
    expected_more = int(period.requests_used * remaining_seconds // elapsed)
    if period.request_allowance is not None:
        expected_more = min(expected_more, max(period.request_allowance - period.requests_used, 0))
    return period.accrued_cents + expected_more * period.unit_price_cents


def usage_summary(period: BillingPeriod, now: datetime | None = None) -> dict:
    """The usage API's JSON body (and the Billing tab's numbers) for one period."""
    now = now or timezone.now()
    current = period.start <= now < period.end
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "plan": period.plan.code,
        "requests": {"used": period.requests_used, "allowance": period.request_allowance},
        "vehicles": {"active": period.vehicles_active, "allowance": period.vehicle_allowance},
        "accrued_cents": period.accrued_cents,
        "projected_cents": projected_cents(period, now) if current else period.accrued_cents,
        "daily": [
            {"date": d.day.isoformat(), "billable": d.billable, "non_billable": d.non_billable}
            for d in daily_usage(period, until=now.date() if current else None)
        ],
    }


def _breakdown(period: BillingPeriod, key: str) -> list[dict]:
    return list(
        UsageDaily.objects.filter(period=period)
        .values(key)
        .annotate(billable=Sum("billable"), non_billable=Sum("non_billable"), amount_cents=Sum("amount_cents"))
        .order_by("-billable", "-non_billable", key)
    )


def usage_by_endpoint(period: BillingPeriod) -> list[dict]:
    return _breakdown(period, "endpoint")


def usage_by_application(period: BillingPeriod) -> list[dict]:
    """Per application, named (a deleted application shows as such)."""
    rows = _breakdown(period, "application_key")
    names = dict(Application.objects.filter(pk__in=[r["application_key"] for r in rows]).values_list("pk", "name"))
    for row in rows:
        row["name"] = names.get(row["application_key"], "Deleted application")
    return rows


def usage_by_vehicle(period: BillingPeriod) -> list[dict]:
    """Per vehicle (requests that reach no vehicle are left out), with make, model, year and VIN."""
    rows = [row for row in _breakdown(period, "vehicle_key") if row["vehicle_key"]]
    vehicles = SimulatedVehicle.objects.in_bulk([row["vehicle_key"] for row in rows])
    for row in rows:
        row["vehicle"] = vehicles.get(row["vehicle_key"])
    return rows


def usage_rows_for_export(period: BillingPeriod):
    """Every rollup row of the period, for the CSV export: day, application, vehicle, endpoint, counts."""
    return (
        UsageDaily.objects.filter(period=period)
        .order_by("day", "application_key", "vehicle_key", "endpoint")
        .values("day", "application_key", "vehicle_key", "endpoint", "billable", "non_billable", "amount_cents")
    )


def open_alerts(period: BillingPeriod) -> list[UsageAlert]:
    """The period's alerts, for the dashboard banner."""
    return list(period.alerts.order_by("created_at"))


def billing_history(team: Team, limit: int = 20) -> list[BillingEvent]:
    return list(BillingEvent.objects.filter(team=team).select_related("actor", "period")[:limit])
