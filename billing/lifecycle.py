"""A team's subscription and billing periods over time: created on first need, opened at each period's start,
switched to a scheduled plan or a due contract at the boundary.

metering counts requests inside the period this module opens; plan changes (services), contracts and Garage
grants take `locked_subscription` first, as `open_period` does, so each team's changes happen one at a time.
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing import contracts, entitlements, periods
from billing.models import BillingEvent, BillingPeriod, Contract, Plan, Subscription
from dashboard.bulk import insert_rows


def subscription_for(team_id: int) -> Subscription:
    """The team's subscription, created on the Free plan the first time it is needed."""
    subscription = Subscription.objects.select_related("plan").filter(team_id=team_id).first()
    if subscription is not None:
        return subscription
    free = Plan.objects.get(code=Plan.FREE)
    try:
        with transaction.atomic():
            return Subscription.objects.create(team_id=team_id, plan=free)
    except IntegrityError:  # created concurrently
        return Subscription.objects.select_related("plan").get(team_id=team_id)


def current_period(team_id: int, now: datetime | None = None) -> BillingPeriod:
    """The team's period holding `now` (with its team's subscription), opened if it doesn't exist yet."""
    now = now or timezone.now()
    period = (
        BillingPeriod.objects.select_related("team__subscription")
        .filter(team_id=team_id, start__lte=now, end__gt=now)
        .first()
    )
    return period if period is not None else open_period(team_id, now)


def open_period(team_id: int, now: datetime) -> BillingPeriod:
    """Create the period holding `now` once, even when concurrent requests race to open it.

    The subscription row is locked while the period is created, as plan switches lock it: a switch
    racing the rollover either lands before (and the new period takes its terms) or after (and
    upgrades the new period too, see services._upgrade).
    """
    from accounts.models import Team

    team = Team.objects.get(pk=team_id)
    subscription_for(team_id)
    start, end = periods.period_bounds(periods.anchor_of(team.created_at), now)
    try:
        with transaction.atomic():
            subscription = apply_due_plan_change(locked_subscription(team_id), now)
            contract = contracts.switch_due_contract(subscription, now, opening=start)  # one due now does
            plan = subscription.plan
            grant = entitlements.active_grant(team_id, now)
            defaults = {"end": end, "plan": plan, **entitlements.terms_for(plan, grant, contract)}
            period, created = BillingPeriod.objects.get_or_create(team_id=team_id, start=start, defaults=defaults)
            if created:
                BillingEvent.objects.create(
                    team_id=team_id, period=period, kind=BillingEvent.Kind.PERIOD_OPENED, after=period_terms(period)
                )
    except IntegrityError:
        period = BillingPeriod.objects.get(team_id=team_id, start=start)
    return BillingPeriod.objects.select_related("team__subscription").get(pk=period.pk)


def open_next_periods(closed: list[BillingPeriod], now: datetime) -> None:
    """Open the period after each of `closed` (at max(now, its end)), together where nothing needs deciding.

    Together: teams with no contract, no plan change due and no period open there yet, under their subscriptions'
    locks (taken in team order), in bulk. Every other team, and all of them if a period was opened meanwhile by
    a request (the bulk insert's unique violation), goes through current_period one by one, as a request would.
    """
    moments = {period.team_id: max(now, period.end) for period in closed}
    alone = set()
    try:
        with transaction.atomic():
            # The team's creation day anchors its periods; the plans are a handful, read once (not a row each).
            subscriptions = list(
                Subscription.objects.select_for_update(of=("self",))
                .annotate(team_created_at=F("team__created_at"))
                .filter(team_id__in=moments)
                .order_by("team_id")
            )
            plans = Plan.objects.in_bulk({subscription.plan_id for subscription in subscriptions})
            alone = set(moments) - {subscription.team_id for subscription in subscriptions}
            alone |= set(Contract.objects.filter(team_id__in=moments).values_list("team_id", flat=True))
            opened = []
            for subscription in subscriptions:
                team_id, moment = subscription.team_id, moments[subscription.team_id]
                if team_id in alone or plan_change_due(subscription, moment):
                    alone.add(team_id)
                    continue
                start, end = periods.period_bounds(periods.anchor_of(subscription.team_created_at), moment)
                opened.append((subscription, start, end))
            candidates = BillingPeriod.objects.filter(
                team_id__in=[s.team_id for s, _, _ in opened], start__in={start for _, start, _ in opened}
            )
            existing = set(candidates.values_list("team_id", "start"))
            opened = [(s, start, end) for s, start, end in opened if (s.team_id, start) not in existing]
            grants = entitlements.active_grants({s.team_id: moments[s.team_id] for s, _, _ in opened})
            new = [
                BillingPeriod(
                    team_id=subscription.team_id,
                    start=start,
                    end=end,
                    plan=plans[subscription.plan_id],
                    **entitlements.terms_for(plans[subscription.plan_id], grants.get(subscription.team_id), None),
                )
                for subscription, start, end in opened
            ]
            insert_rows(BillingPeriod, new)
            insert_rows(
                BillingEvent,
                [
                    BillingEvent(
                        team_id=period.team_id,
                        period_id=period.pk,
                        kind=BillingEvent.Kind.PERIOD_OPENED,
                        after=period_terms(period),
                    )
                    for period in new
                ],
            )
    except IntegrityError:  # a request opened one of them meanwhile: let each team open its own
        alone = set(moments)
    for team_id in sorted(alone):
        current_period(team_id, moments[team_id])


def locked_subscription(team_id: int) -> Subscription:
    """The team's subscription row, locked until the transaction ends: plan switches, contract switches, grants and
    the opening of a period take it first, so they happen one at a time per team."""
    return (
        Subscription.objects.select_for_update(of=("self",)).select_related("plan", "pending_plan").get(team_id=team_id)
    )


def plan_change_due(subscription: Subscription, now: datetime) -> bool:
    """Whether a plan change is scheduled and its date has come by `now`."""
    return (
        subscription.pending_plan_id is not None
        and subscription.pending_at is not None
        and (subscription.pending_at <= now)
    )


def apply_due_plan_change(subscription: Subscription, now: datetime) -> Subscription:
    """Switch to the scheduled plan once its date has come (the period it was scheduled for has ended)."""
    if not plan_change_due(subscription, now):
        return subscription
    with transaction.atomic():
        locked = locked_subscription(subscription.team_id)
        if not plan_change_due(locked, now):
            return locked
        before = {"plan": locked.plan.code}
        locked.plan, locked.pending_plan, locked.pending_at = locked.pending_plan, None, None
        locked.save(update_fields=["plan", "pending_plan", "pending_at", "updated_at"])
        BillingEvent.objects.create(
            team_id=locked.team_id, kind=BillingEvent.Kind.PLAN_CHANGED, before=before, after={"plan": locked.plan.code}
        )
    return locked


def period_terms(period: BillingPeriod) -> dict:
    return {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "plan": period.plan.code,
        "request_allowance": period.request_allowance,
        "vehicle_allowance": period.vehicle_allowance,
        "unit_price_cents": period.unit_price_cents,
        "contract": period.contract_id,
    }
