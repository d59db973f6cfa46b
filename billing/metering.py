"""Metering on the vehicle API's hot path: count every successful billable request exactly once (DESIGN §4).

A billable request is *reserved* before the vehicle is called, in one transaction that
  1. takes the period row with a conditional UPDATE (`requests_used < request_allowance`), which
     both enforces the allowance and serialises the team's reservations on that row;
  2. activates the vehicle if this is its first billable request of the period, again by a
     conditional UPDATE (`vehicles_active < vehicle_allowance`) plus an ActiveVehicle row;
  3. inserts the UsageEvent, whose unique request id makes a retried request count once;
  4. adds the request to its UsageDaily rollup.
Zero rows updated means a limit is reached: the transaction rolls back and the request answers
430. If the vehicle call then fails, `release` undoes the reservation (DESIGN: only successful
requests count). Because the period lock is always taken first, the counters, the events and
the rollups always agree, whatever the concurrency, and reservations never deadlock.
"""

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing import contracts, entitlements, periods, refusals
from billing.models import (
    ActiveVehicle,
    BillingEvent,
    BillingPeriod,
    Plan,
    Subscription,
    UsageAlert,
    UsageDaily,
    UsageEvent,
)
from dashboard.prepared import prepared_cursor

logger = logging.getLogger("billing.metering")

ALERT_PERCENT = 80  # the early alert, in whole percent of the allowance (integer arithmetic, as in SQL)


class LimitReached(Exception):
    """A billable request the team's billing does not allow now: `refusal` says why, in the dashboard's words,
    and `code` is the BILLING error code it answers."""

    def __init__(self, refusal: refusals.Refusal):
        super().__init__(refusal.code)
        self.refusal = refusal
        self.code = refusal.code


@dataclass(frozen=True)
class Reservation:
    request_id: str
    counted: bool  # False: a retry of a request already counted, nothing to undo
    period_id: int | None = None
    event_id: int | None = None
    vehicle_id: int | None = None
    application_id: int | None = None
    endpoint: str = ""
    day: date | None = None
    unit_price_cents: int = 0
    contract_key: int = 0
    activated_vehicle: bool = False


# --- periods and subscriptions -------------------------------------------------------------------------------------


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
            subscription = apply_due_plan_change(_locked_subscription(team_id), now)
            contract = contracts.switch_due_contract(subscription, now, opening=start)  # one due now does
            plan = subscription.plan
            grant = entitlements.active_grant(team_id, now)
            defaults = {"end": end, "plan": plan, **entitlements.terms_for(plan, grant, contract)}
            period, created = BillingPeriod.objects.get_or_create(team_id=team_id, start=start, defaults=defaults)
            if created:
                BillingEvent.objects.create(
                    team_id=team_id, period=period, kind=BillingEvent.Kind.PERIOD_OPENED, after=_period_terms(period)
                )
    except IntegrityError:
        period = BillingPeriod.objects.get(team_id=team_id, start=start)
    return BillingPeriod.objects.select_related("team__subscription").get(pk=period.pk)


def _locked_subscription(team_id: int) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",)).select_related("plan", "pending_plan").get(team_id=team_id)
    )


def apply_due_plan_change(subscription: Subscription, now: datetime) -> Subscription:
    """Switch to the scheduled plan once its date has come (the period it was scheduled for has ended)."""
    if subscription.pending_plan_id is None or subscription.pending_at is None or subscription.pending_at > now:
        return subscription
    with transaction.atomic():
        locked = _locked_subscription(subscription.team_id)
        if locked.pending_plan_id is None or locked.pending_at is None or locked.pending_at > now:
            return locked
        before = {"plan": locked.plan.code}
        locked.plan, locked.pending_plan, locked.pending_at = locked.pending_plan, None, None
        locked.save(update_fields=["plan", "pending_plan", "pending_at", "updated_at"])
        BillingEvent.objects.create(
            team_id=locked.team_id, kind=BillingEvent.Kind.PLAN_CHANGED, before=before, after={"plan": locked.plan.code}
        )
    return locked


def _period_terms(period: BillingPeriod) -> dict:
    return {
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "plan": period.plan.code,
        "request_allowance": period.request_allowance,
        "vehicle_allowance": period.vehicle_allowance,
        "unit_price_cents": period.unit_price_cents,
        "contract": period.contract_id,
    }


# --- the hot path --------------------------------------------------------------------------------------------------


def reserve(
    *,
    request_id: str,
    team_id: int,
    application_id: int | None,
    vehicle_id: int,
    endpoint: str,
    now: datetime | None = None,
) -> Reservation:
    """Count one billable request before the vehicle is called, or raise LimitReached (see the module docstring)."""
    now = now or timezone.now()
    try:
        reservation = _reserve_in_one_round_trip(request_id, team_id, application_id, vehicle_id, endpoint, now)
    except IntegrityError:
        reservation = None  # a retry of a counted request: the full path below says so
    if reservation is not None:
        return reservation
    period = current_period(team_id, now)
    # Decided from the row current_period read (no extra query): a suspension, or a period closed before its end.
    refusal = refusals.before_counting(
        suspended_account=period.team.subscription.status == Subscription.Status.SUSPENDED,
        period_open=period.status == BillingPeriod.Status.OPEN,
        end=period.end,
    )
    if refusal is not None and refusal.kind == refusals.SUSPENDED:
        raise LimitReached(refusal)  # retries included: nothing is served while suspended
    try:
        if refusal is not None:  # closed early; like a full period, it still answers a retry of a request it counted
            raise LimitReached(refusal)
        with transaction.atomic():
            reservation = _reserve_in_period(period, request_id, application_id, vehicle_id, endpoint, now)
    except IntegrityError:
        # Only the UsageEvent's unique request id can clash here: a retry of a counted request.
        if UsageEvent.objects.filter(request_id=request_id).exists():
            return Reservation(request_id=request_id, counted=False)
        raise
    except LimitReached as limit:
        if UsageEvent.objects.filter(request_id=request_id).exists():
            return Reservation(request_id=request_id, counted=False)  # a retry of a request counted before the limit
        if period.status == BillingPeriod.Status.OPEN:  # a closed period refuses usage without being "full"
            _note_limit_reached(period, limit.code)
        raise
    return reservation


def _reserve_in_one_round_trip(request_id, team_id, application_id, vehicle_id, endpoint, now) -> Reservation | None:
    """The common case in one round trip, on PostgreSQL: the function `ignition_reserve` (billing migration 0025)
    does what `_reserve_in_period` does, in the same lock order. It declines, having changed nothing, whenever the
    full path has more to do (no open period yet, a suspension, a limit or an alert threshold): None then."""
    database = connections[router.db_for_write(UsageEvent)]
    if database.vendor != "postgresql":
        return None
    day = now.date()
    # Alone, the call is its own transaction (autocommit); inside one, a savepoint keeps a retry's error contained.
    in_transaction = transaction.atomic(using=database.alias) if database.in_atomic_block else nullcontext()
    with in_transaction, prepared_cursor(database.alias) as cursor:
        cursor.execute(
            "SELECT * FROM ignition_reserve(%s, %s, %s, %s, %s, %s, %s, %s)",
            [team_id, now, day, request_id, application_id, vehicle_id, endpoint, ALERT_PERCENT],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    period_id, event_id, price, contract_key, activated = row
    return Reservation(
        request_id=request_id,
        counted=True,
        period_id=period_id,
        event_id=event_id,
        vehicle_id=vehicle_id,
        application_id=application_id,
        endpoint=endpoint,
        day=day,
        unit_price_cents=price,
        contract_key=contract_key,
        activated_vehicle=activated,
    )


def _reserve_in_period(period, request_id, application_id, vehicle_id, endpoint, now) -> Reservation:
    counted = (
        BillingPeriod.objects.filter(pk=period.pk, status=BillingPeriod.Status.OPEN)  # a closed period is frozen
        .filter(Q(request_allowance__isnull=True) | Q(requests_used__lt=F("request_allowance")))
        .update(requests_used=F("requests_used") + 1, accrued_cents=F("accrued_cents") + F("unit_price_cents"))
    )
    if not counted:  # the period is full (reserve refused a closed one before getting here)
        raise LimitReached(refusals.request_limit(period.request_allowance or 0, period.end))
    # We hold the period row now: these values are the ones the UPDATE used.
    state = BillingPeriod.objects.values(
        "unit_price_cents", "contract_id", "requests_used", "request_allowance", "vehicles_active", "vehicle_allowance"
    ).get(pk=period.pk)
    activated = False
    if not ActiveVehicle.objects.filter(period_id=period.pk, vehicle_id=vehicle_id).exists():
        room = (
            BillingPeriod.objects.filter(pk=period.pk)
            .filter(Q(vehicle_allowance__isnull=True) | Q(vehicles_active__lt=F("vehicle_allowance")))
            .update(vehicles_active=F("vehicles_active") + 1)
        )
        if not room:
            raise LimitReached(refusals.vehicle_limit(state["vehicle_allowance"] or 0, period.end))
        ActiveVehicle.objects.create(period_id=period.pk, vehicle_id=vehicle_id, first_request_at=now)
        activated = True
    price, contract_key = state["unit_price_cents"], state["contract_id"] or 0
    event = UsageEvent.objects.create(  # a duplicate request id raises IntegrityError: the caller rolls back
        request_id=request_id,
        period_id=period.pk,
        application_id=application_id,
        vehicle_id=vehicle_id,
        endpoint=endpoint,
        unit_price_cents=price,
        occurred_at=now,
    )
    day = now.date()
    _add_daily(
        period.pk,
        day,
        application_id,
        vehicle_id,
        endpoint,
        billable=1,
        amount_cents=price,
        unit_price=price,
        contract_key=contract_key,
    )
    _check_alerts(period, state, activated)
    return Reservation(
        request_id=request_id,
        counted=True,
        period_id=period.pk,
        event_id=event.pk,
        vehicle_id=vehicle_id,
        application_id=application_id,
        endpoint=endpoint,
        day=day,
        unit_price_cents=price,
        contract_key=contract_key,
        activated_vehicle=activated,
    )


def release(reservation: Reservation) -> None:
    """Undo a reservation whose vehicle call failed: the request is not counted and costs nothing."""
    if not reservation.counted:
        return
    with transaction.atomic():
        # The period row's lock first, as reservations take it; a period closed meanwhile is invoiced: leave it.
        undone = BillingPeriod.objects.filter(pk=reservation.period_id, status=BillingPeriod.Status.OPEN).update(
            requests_used=F("requests_used") - 1, accrued_cents=F("accrued_cents") - reservation.unit_price_cents
        )
        if not undone:
            logger.warning("Not releasing request %s: its period is closed", reservation.request_id)
            return
        UsageEvent.objects.filter(pk=reservation.event_id).delete()
        # Whichever request activated the vehicle, it stays active only while it has a counted request.
        still_used = UsageEvent.objects.filter(period_id=reservation.period_id, vehicle_id=reservation.vehicle_id)
        if not still_used.exists():
            deactivated = ActiveVehicle.objects.filter(
                period_id=reservation.period_id, vehicle_id=reservation.vehicle_id
            ).delete()[0]
            if deactivated:
                BillingPeriod.objects.filter(pk=reservation.period_id).update(vehicles_active=F("vehicles_active") - 1)
        _add_daily(
            reservation.period_id,
            reservation.day,
            reservation.application_id,
            reservation.vehicle_id,
            reservation.endpoint,
            billable=-1,
            amount_cents=-reservation.unit_price_cents,
            unit_price=reservation.unit_price_cents,
            contract_key=reservation.contract_key,
        )


def record_unbilled(
    *, team_id: int, application_id: int | None, vehicle_id: int | None, endpoint: str, now: datetime | None = None
) -> None:
    """Count a request that costs nothing (a free endpoint, a failure, test mode) in the daily rollup.

    One statement finds the team's period and upserts its rollup row; the period is opened first only when
    there is none yet (the first request of a period).
    """
    now = now or timezone.now()
    database = connections[router.db_for_write(UsageDaily)]
    # Only the model's own table name is formatted in; every value is a parameter.
    period = f"""SELECT p."id", %s, %s, %s, %s, 0, 0, 0, 1, 0 FROM "{BillingPeriod._meta.db_table}" p
                 WHERE p."team_id" = %s AND p."start" <= %s AND p."end" > %s"""  # noqa: S608
    adapt = database.ops.adapt_datetimefield_value
    params = [database.ops.adapt_datefield_value(now.date()), application_id or 0, vehicle_id or 0, endpoint]
    if _upsert_daily(database, period, [*params, team_id, adapt(now), adapt(now)]):
        return
    period_id = current_period(team_id, now).pk
    _add_daily(period_id, now.date(), application_id, vehicle_id, endpoint, non_billable=1)


_DAILY_COLUMNS = (
    "period_id, day, application_key, vehicle_key, endpoint, unit_price_cents, contract_key, "
    "billable, non_billable, amount_cents"
)
_DAILY_KEY = "period_id, day, application_key, vehicle_key, endpoint, unit_price_cents, contract_key"


def _upsert_daily(database, rows_sql: str, params: list) -> int:
    """INSERT the rollup rows `rows_sql` selects (in _DAILY_COLUMNS order), adding to the rows that exist: one
    statement, race-free on PostgreSQL and SQLite alike. Returns the number of rows written."""
    table = UsageDaily._meta.db_table
    sql = (  # only the model's own table name is formatted in; every value is a parameter
        f'INSERT INTO "{table}" AS d ({_DAILY_COLUMNS}) {rows_sql} '
        f"ON CONFLICT ({_DAILY_KEY}) DO UPDATE SET billable = d.billable + excluded.billable, "
        "non_billable = d.non_billable + excluded.non_billable, amount_cents = d.amount_cents + excluded.amount_cents"
    )
    with prepared_cursor(database.alias) as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _add_daily(
    period_id,
    day,
    application_id,
    vehicle_id,
    endpoint,
    *,
    billable=0,
    non_billable=0,
    amount_cents=0,
    unit_price=0,
    contract_key=0,
):
    """Add to the rollup row of these keys, creating it the first time (one upsert).

    Rows are per unit price and contract too, so a period that changed price (an upgrade) or moved to or
    from a contract is invoiced part by part exactly.
    """
    if billable < 0:  # a release: its row exists (the reservation wrote it), and an INSERT of negatives can't pass
        key = {"period_id": period_id, "day": day, "application_key": application_id or 0}
        key |= {"vehicle_key": vehicle_id or 0, "endpoint": endpoint, "unit_price_cents": unit_price}
        UsageDaily.objects.filter(**key, contract_key=contract_key).update(
            billable=F("billable") + billable, amount_cents=F("amount_cents") + amount_cents
        )
        return
    database = connections[router.db_for_write(UsageDaily)]
    values = [
        period_id,
        database.ops.adapt_datefield_value(day),
        application_id or 0,
        vehicle_id or 0,
        endpoint,
        unit_price,
        contract_key,
        billable,
        non_billable,
        amount_cents,
    ]
    _upsert_daily(database, "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", values)


# --- alerts --------------------------------------------------------------------------------------------------------


def alert_threshold(allowance: int) -> int:
    """The request count that raises the early alert: ALERT_PERCENT of the allowance, rounded up."""
    return max(1, (allowance * ALERT_PERCENT + 99) // 100)


def _check_alerts(period: BillingPeriod, state: dict, activated: bool) -> None:
    """Create the period's alerts as their thresholds are crossed; each exists once (unique), emailed on commit."""
    used, allowance, vehicles = state["requests_used"], state["request_allowance"], state["vehicle_allowance"]
    if allowance:
        if used == alert_threshold(allowance):
            _create_alert(period, UsageAlert.Kind.REQUESTS_80, allowance)
        if used == allowance:
            _create_alert(period, UsageAlert.Kind.REQUESTS_100, allowance)
    if activated and vehicles and state["vehicles_active"] + 1 == vehicles:
        _create_alert(period, UsageAlert.Kind.VEHICLES_100, vehicles)


def _create_alert(period: BillingPeriod, kind: str, allowance: int) -> None:
    try:
        with transaction.atomic():
            alert = UsageAlert.objects.create(period_id=period.pk, kind=kind, allowance=allowance)
    except IntegrityError:
        return  # already raised for this allowance this period
    if kind != UsageAlert.Kind.REQUESTS_80:
        BillingEvent.objects.create(
            team_id=period.team_id, period_id=period.pk, kind=BillingEvent.Kind.LIMIT_REACHED, after={"limit": kind}
        )
    transaction.on_commit(lambda: _enqueue_alert(alert.pk))


def _enqueue_alert(alert_id: int) -> None:
    """Queue the alert's email; if the broker is down, the beat sweep (send_pending_usage_alerts) sends it later."""
    from billing.tasks import send_usage_alert

    try:
        send_usage_alert.delay(alert_id)
    except Exception:  # the request was counted and must still be answered
        logger.exception("Could not queue usage alert %s; the sweep will send it", alert_id)


def _note_limit_reached(period: BillingPeriod, code: str) -> None:
    """A refusal at the limit makes sure the period's 100% alert exists (e.g. after a plan's allowance was lowered)."""
    if code not in ("VEHICLE_LIMIT", "VEHICLE_REQUEST_LIMIT"):
        return
    vehicles = code == "VEHICLE_LIMIT"
    kind = UsageAlert.Kind.VEHICLES_100 if vehicles else UsageAlert.Kind.REQUESTS_100
    allowance = (period.vehicle_allowance if vehicles else period.request_allowance) or 0
    if not period.alerts.filter(kind=kind, allowance=allowance).exists():
        try:
            with transaction.atomic():
                _create_alert(period, kind, allowance)
        except Exception:  # an alert must never turn a 430 into a 500
            logger.exception("Could not record the %s alert for period %s", kind, period.pk)
