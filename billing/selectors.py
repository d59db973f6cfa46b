"""Read models of billing for the Billing tab, the usage API and exports.

They read the period's counters and the UsageDaily rollups only, never UsageEvent rows, so each
costs a fixed number of queries whatever the volume (DESIGN §4).
"""

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Application, Team
from billing import closing, contracts, entitlements, rating, state
from billing.lifecycle import current_period, subscription_for
from billing.models import (
    BillingEvent,
    BillingPeriod,
    Contract,
    Invoice,
    Plan,
    Subscription,
    UsageAlert,
    UsageDaily,
)
from vehicles.models import SimulatedVehicle


@dataclass(frozen=True)
class DayUsage:
    day: date
    billable: int
    non_billable: int
    under_contract: int = 0  # of the billable ones, those counted under an Enterprise contract (priced at close)


def team_periods(team: Team):
    """The team's periods, newest first (for the history and `?period=`)."""
    return BillingPeriod.objects.filter(team=team).select_related("plan").order_by("-start")


def team_has_chosen_a_plan(team: Team) -> bool:
    """Whether the team has moved off Free or scheduled a plan change at least once (the Overview's "Getting
    started" step), without creating anything (a new team may have no subscription yet)."""
    chose = BillingEvent.objects.filter(
        team=team, kind__in=[BillingEvent.Kind.PLAN_CHANGED, BillingEvent.Kind.PLAN_CHANGE_SCHEDULED]
    )
    return chose.exists() or Subscription.objects.filter(team=team).exclude(plan__code=Plan.FREE).exists()


def period_starting(team: Team, start: date) -> BillingPeriod | None:
    """The team's period that starts on `start` (UTC date), or None."""
    return team_periods(team).filter(start__date=start).first()


def current_subscription(team: Team) -> Subscription:
    return Subscription.objects.select_related("plan", "pending_plan").get(pk=subscription_for(team.pk).pk)


def open_period(team: Team, now: datetime | None = None) -> BillingPeriod:
    """The period holding now, opened if needed, with its plan."""
    period = current_period(team.pk, now)
    return BillingPeriod.objects.select_related("plan").get(pk=period.pk)


def period_state(team: Team, period: BillingPeriod, now: datetime | None = None) -> state.BillingState:
    """The state of one of the team's periods; for the one holding now, with its subscription and active grant."""
    now = now or timezone.now()
    if not period.start <= now < period.end:
        return state.billing_state(period, now=now)
    grant = entitlements.active_grant(team.pk, now) if period.contract_id is None else None  # one or neither
    return state.billing_state(period, now=now, subscription=subscription_for(team.pk), grant=grant)


def current_state(team: Team, now: datetime | None = None) -> state.BillingState:
    """The state of the team's period holding now (opened if needed): what the Overview and Garage tab show."""
    now = now or timezone.now()
    return period_state(team, open_period(team, now), now)


def periods_and_current(team: Team, now: datetime) -> tuple[list[BillingPeriod], BillingPeriod]:
    """The team's periods (as team_periods) and, among them, the one holding now (opened if needed)."""
    current_id = current_period(team.pk, now).pk
    periods = list(team_periods(team))
    return periods, next(period for period in periods if period.pk == current_id)


def public_plans():
    return Plan.objects.order_by("sort_order", "id")


def daily_usage(period: BillingPeriod, *, until: date | None = None) -> list[DayUsage]:
    """One entry per day of the period (up to `until`, default its last day), zeros included."""
    rows = {
        row["day"]: row
        for row in UsageDaily.objects.filter(period=period)
        .values("day")
        .annotate(  # under_contract first: it sums the column, before `billable` names the day's sum
            under_contract=Sum("billable", filter=Q(contract_key__gt=0)),
            billable=Sum("billable"),
            non_billable=Sum("non_billable"),
        )
    }
    last = min(
        until or (period.end - timedelta(microseconds=1)).date(), (period.end - timedelta(microseconds=1)).date()
    )
    days, day = [], period.start.date()
    while day <= last:
        row = rows.get(day, {})
        days.append(
            DayUsage(day, row.get("billable") or 0, row.get("non_billable") or 0, row.get("under_contract") or 0)
        )
        day += timedelta(days=1)
    return days


def projected_cents(period: BillingPeriod, now: datetime) -> int:
    """The period's total at the current pace: what has accrued, plus the billable requests the rest of
    the period would bring at today's rate (capped by what the allowance leaves), at the current price."""
    if now >= period.end:
        return period.accrued_cents
    expected_more = _more_at_pace(period, period.requests_used, since=period.start, until=period.end, now=now)
    return period.accrued_cents + expected_more * period.unit_price_cents


def _more_at_pace(period: BillingPeriod, counted: int, *, since: datetime, until: datetime, now: datetime) -> int:
    """The billable requests from `now` to `until` at the pace of the `counted` ones since `since`, capped by
    what the period's allowance leaves."""
    elapsed = max((now - since).total_seconds(), 1)
    remaining = max((until - now).total_seconds(), 0)
    more = int(counted * remaining // elapsed)
    if period.request_allowance is not None:
        more = min(more, max(period.request_allowance - period.requests_used, 0))
    return more


def usage_summary(billing_state: state.BillingState) -> dict:
    """The usage API's JSON body (and the Billing tab's numbers) for one period, in the given state.

    Under an Enterprise contract the counters accrue nothing (its requests are counted at 0 and priced
    by its tiers at close), so for a period with contract requests (or a contract in force)
    `accrued_cents` is what billing.rating makes of the usage so far: the per-request lines plus the
    contract's tiers, *without* the monthly minimum's top-up (the invoice adds it at close, pro-rated),
    and `projected_cents` prices the contract requests the rest of the period would bring at today's
    pace by the tiers, with the minimum the contract owes for its share of the period. Only a live period
    (holding now and open) has a projection: an ended one, or one closed early, is what it accrued.
    """
    period, now = billing_state.period, billing_state.as_of
    live = billing_state.is_live
    days = daily_usage(period, until=now.date() if billing_state.is_current else None)
    if period.contract_id is not None or any(day.under_contract for day in days):
        accrued, projected = contract_period_cents(period, now if live else None)
    else:
        accrued = period.accrued_cents
        projected = projected_cents(period, now) if live else period.accrued_cents
    return {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "plan": period.plan.code,
        "state": billing_state.as_json(),
        "requests": {"used": billing_state.requests.used, "allowance": billing_state.requests.allowance},
        "vehicles": {"active": billing_state.vehicles.used, "allowance": billing_state.vehicles.allowance},
        "accrued_cents": accrued,
        "projected_cents": projected,
        "daily": [{"date": d.day.isoformat(), "billable": d.billable, "non_billable": d.non_billable} for d in days],
    }


def accrued_cents(period: BillingPeriod) -> int:
    """What the period has accrued so far (the Overview's card): the counter, or the rating of contract usage."""
    if period.contract_id is None and not UsageDaily.objects.filter(period=period, contract_key__gt=0).exists():
        return period.accrued_cents
    return contract_period_cents(period, None)[0]


def contract_period_cents(period: BillingPeriod, now: datetime | None) -> tuple[int, int]:
    """(accrued, projected) cents of a period with contract requests, rated as its invoice will be.

    Accrued: the usage so far, minimum top-up left out. Projected (`now` in the period; None for a past
    one, whose projection is its accrued amount): the contract in force's requests at the current pace
    until the period (or the contract) ends, capped by the allowance left, plus the minimum top-up.
    """
    lines = closing.usage_lines(period)
    parts = contracts.contract_usage(period)  # ordered by start: the contract in force (if any) is the last
    accrued = rating.rate_period(lines, [replace(part, minimum_cents=0) for part in parts]).subtotal_cents
    if now is None or not parts:
        return accrued, accrued
    if period.contract_id is not None:
        counted = parts[-1].quantity
        parts[-1] = replace(parts[-1], quantity=counted + _more_contract_requests(period, counted, now))
    return accrued, rating.rate_period(lines, parts).total_cents


def _more_contract_requests(period: BillingPeriod, counted: int, now: datetime) -> int:
    """The requests the contract in force would bring from now to its (or the period's) end at its pace so far."""
    contract = Contract.objects.only("started_at", "ends_at").get(pk=period.contract_id)
    since = max(contract.started_at or period.start, period.start)
    return _more_at_pace(period, counted, since=since, until=min(period.end, contract.ends_at), now=now)


PRICING_SENTENCES = {
    Contract.Pricing.GRADUATED: (
        "Graduated pricing: the period's requests are priced tier by tier, the first ones at the first tier's "
        "price and those beyond each bound at the next tier's."
    ),
    Contract.Pricing.VOLUME: (
        "Volume pricing: every request of the period is priced at the price of the tier the period's total reaches."
    ),
}


@dataclass(frozen=True)
class ContractSummary:
    """What an Owner sees of the team's contract on the Billing tab."""

    contract: Contract
    scheduled: bool  # signed, not started yet: nothing below is counted under it
    tiers: list[contracts.TierRow]  # the tier the period's contract requests reached marked `current`
    pricing: str  # the pricing mode in one sentence
    payment_terms: str
    requests_counted: int  # billable requests counted under it in the current period
    estimate_cents: int | None  # the current period's invoice so far (minimum pro-rated); None if scheduled


def live_contract(team: Team) -> Contract | None:
    """The team's contract in force, or else its next scheduled one, with its tiers."""
    return (
        Contract.objects.filter(team=team, status__in=contracts.LIVE)
        .prefetch_related("tiers")
        .order_by("status", "starts_at", "pk")  # "active" sorts before "scheduled"
        .first()
    )


def contract_summary(
    team: Team,
    period: BillingPeriod,
    now: datetime,
    *,
    contract: Contract | None = None,
    subscription: Subscription | None = None,
) -> ContractSummary | None:
    """The team's active (or scheduled) contract as of `now` in `period` (its current period), or None.

    `contract` (from live_contract) and `subscription` spare their queries when the caller has them.
    """
    contract = contract or live_contract(team)
    if contract is None or contract.team_id != team.pk:
        return None
    scheduled = contract.status == Contract.Status.SCHEDULED
    counted = 0
    if not scheduled:
        counted = (
            UsageDaily.objects.filter(period=period, contract_key=contract.pk).aggregate(n=Sum("billable"))["n"] or 0
        )
    return ContractSummary(
        contract=contract,
        scheduled=scheduled,
        tiers=contracts.tier_rows(contract, used=None if scheduled else counted),
        pricing=PRICING_SENTENCES.get(contract.pricing, contract.get_pricing_display()),
        payment_terms=payment_terms(contract, subscription or current_subscription(team)),
        requests_counted=counted,
        estimate_cents=None if scheduled else closing.rate_usage(period, until=now).total_cents,
    )


def payment_terms(contract: Contract, subscription: Subscription) -> str:
    """How the contract's invoices are paid, in a few words."""
    if contract.paid_by == Contract.PaidBy.INVOICE:
        return f"Invoice, net {contract.net_days} — paid by bank transfer"
    card = f"Card ••••{subscription.card_last4}" if subscription.card_last4 else "Card on file"
    return f"{card}, charged automatically"


def awaits_transfer(invoice: Invoice) -> bool:
    """An invoice-paid invoice (Enterprise contract terms) not paid yet: paid by bank transfer, never by card."""
    return invoice.collection == Invoice.Collection.INVOICE and invoice.status in (
        Invoice.Status.OPEN,
        Invoice.Status.PAST_DUE,
    )


def payment_instructions(invoice: Invoice) -> str:
    """How to pay an invoice awaiting a bank transfer (settings.INVOICE_PAYMENT_INSTRUCTIONS); "" for any other."""
    return settings.INVOICE_PAYMENT_INSTRUCTIONS if awaits_transfer(invoice) else ""


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
    """Per application, named, with its client id (a deleted application shows as such, with none)."""
    rows = _breakdown(period, "application_key")
    applications = Application.objects.filter(pk__in=[r["application_key"] for r in rows]).values_list(
        "pk", "name", "client_id"
    )
    found = {pk: (name, client_id) for pk, name, client_id in applications}
    for row in rows:
        row["name"], row["client_id"] = found.get(row["application_key"], ("Deleted application", None))
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
