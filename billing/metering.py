"""Metering: reserve, release and record the vehicle API's requests, each successful billable one counted once.

A billable request is *reserved* before the vehicle is called, in one transaction that
  1. takes the period row with a conditional UPDATE (`requests_used < request_allowance`), which
     both enforces the allowance and serialises the team's reservations on that row;
  2. activates the vehicle if this is its first billable request of the period, again by a
     conditional UPDATE (`vehicles_active < vehicle_allowance`) plus an ActiveVehicle row;
  3. inserts the UsageEvent, whose unique request id makes a retried request count once;
  4. adds the request to its UsageDaily rollup.
Zero rows updated means a limit is reached: the transaction rolls back and the request answers
430. If the vehicle call then fails, `release` undoes the reservation (only successful requests
count). Because the period lock is always taken first, the counters, the events and the rollups
always agree, whatever the concurrency, and reservations never deadlock.

On PostgreSQL the common case takes one round trip: the function `ignition_reserve` (billing migration 0025)
does the four steps in the same order and declines, having changed nothing, whenever there is more to do (no
open period yet, a suspension, a limit, an alert threshold); this module's full path then runs as above. The
period itself comes from billing.lifecycle; the alerts a reservation raises from billing.alerts.
"""

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing import alerts, lifecycle, refusals, unbilled
from billing.models import (
    ActiveVehicle,
    BillingPeriod,
    Subscription,
    UsageDaily,
    UsageEvent,
)
from dashboard.prepared import prepared_cursor

logger = logging.getLogger("billing.metering")


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
    period = lifecycle.current_period(team_id, now)
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
            alerts.note_limit_reached(period, limit.code)
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
            [team_id, now, day, request_id, application_id, vehicle_id, endpoint, alerts.ALERT_PERCENT],
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
    alerts.check_alerts(period, state, activated)
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

    Counts are gathered in the process and written about once a second (billing/unbilled.py,
    `UNBILLED_FLUSH_SECONDS`); inside a caller's transaction, or with the setting at 0, the count is written at
    once, with the caller's writes.
    """
    now = now or timezone.now()
    database = connections[router.db_for_write(UsageDaily)]
    if settings.UNBILLED_FLUSH_SECONDS > 0 and _on_its_own(database):
        _unbilled.add(unbilled.Stream(team_id, application_id, vehicle_id, endpoint, now.date()), now)
        return
    _write_unbilled(database, team_id, application_id, vehicle_id, endpoint, now, count=1)


def _on_its_own(database) -> bool:
    """Whether a statement here is its own transaction (autocommit, no caller's `atomic`)."""
    return not database.in_atomic_block and database.get_autocommit()


def flush_unbilled() -> int:
    """Write the non-billable counts this process has gathered now; how many requests they were. Inside a caller's
    transaction it writes nothing (0): the counts would share the caller's fate, and its locks."""
    if not _on_its_own(connections[router.db_for_write(UsageDaily)]):
        return 0
    return _unbilled.flush()


def _write_gathered(gathered: dict) -> None:
    """The buffer's write: one upsert per rollup row, each its own transaction (none waits on another's locks).
    A stream that cannot be written (its team deleted meanwhile, a timeout) is logged and dropped; the rest go on."""
    database = connections[router.db_for_write(UsageDaily)]
    # A second's writes may follow a database restart: check the thread's connection first, as Django's own cursors
    # do once a request (the hot path's prepared cursors don't, to save the round trip).
    database.close_if_health_check_failed()
    for stream, (count, first_at) in gathered.items():
        team, application, vehicle = stream.team_id, stream.application_id, stream.vehicle_id
        try:
            _write_unbilled(database, team, application, vehicle, stream.endpoint, first_at, count=count)
        except Exception:
            logger.exception("Could not write %d non-billable request counts of team %s; they are dropped", count, team)


def _write_unbilled(database, team_id, application_id, vehicle_id, endpoint, now, *, count: int) -> None:
    """One statement finds the team's period holding `now` and adds `count` to its rollup row; the period is
    opened first only when there is none yet (the first request of a period). On PostgreSQL, as its own
    transaction, it commits without waiting for the disk (see _UPSERT_UNBILLED_NO_WAIT)."""
    at = database.ops.adapt_datetimefield_value(now)
    day = database.ops.adapt_datefield_value(now.date())
    row = [day, application_id or 0, vehicle_id or 0, endpoint, count]
    # Inside a caller's transaction the setting would cover the caller's writes too: those commit durably.
    no_wait = database.vendor == "postgresql" and _on_its_own(database)
    if _upsert_daily(database, _UPSERT_UNBILLED_NO_WAIT if no_wait else _UPSERT_UNBILLED, [*row, team_id, at, at]):
        return
    period_id = lifecycle.current_period(team_id, now).pk
    _add_daily(period_id, now.date(), application_id, vehicle_id, endpoint, non_billable=count)


_unbilled = unbilled.buffer_with_flush_at_exit(_write_gathered, interval=lambda: settings.UNBILLED_FLUSH_SECONDS)


# The statements are built once; only the models' own table names are formatted in, every value is a parameter.
_DAILY_COLUMNS = (
    "period_id, day, application_key, vehicle_key, endpoint, unit_price_cents, contract_key, "
    "billable, non_billable, amount_cents"
)
_DAILY_KEY = "period_id, day, application_key, vehicle_key, endpoint, unit_price_cents, contract_key"
_UPSERT_DAILY = (
    f'INSERT INTO "{UsageDaily._meta.db_table}" AS d ({_DAILY_COLUMNS}) {{rows}} '
    f"ON CONFLICT ({_DAILY_KEY}) DO UPDATE SET billable = d.billable + excluded.billable, "
    "non_billable = d.non_billable + excluded.non_billable, amount_cents = d.amount_cents + excluded.amount_cents"
)
# Non-billable requests, into the team's period holding the moment. Parameters: day, application, vehicle,
# endpoint, count, team, moment, moment.
_UNBILLED_ROW = f"""SELECT p."id", %s, %s, %s, %s, 0, 0, 0, %s, 0 FROM "{BillingPeriod._meta.db_table}" p{{no_wait}}
                    WHERE p."team_id" = %s AND p."start" <= %s AND p."end" > %s"""  # noqa: S608
_UPSERT_UNBILLED = _UPSERT_DAILY.format(rows=_UNBILLED_ROW.format(no_wait=""))
# The same on PostgreSQL, as its own transaction, committed without waiting for the WAL to reach the disk
# (synchronous_commit off for this transaction only: set_config's third argument). Every request of a team
# upserts the same few rollup rows, and a durable commit holds the row's lock through the flush. A PostgreSQL
# crash can lose the counts committed in its last moments (up to three wal_writer_delay, 600 ms by default);
# billable counts always commit durably. (The CTE runs whenever a row is written: the join needs its row.)
_UPSERT_UNBILLED_NO_WAIT = "WITH no_wait AS (SELECT set_config('synchronous_commit', 'off', true)) " + (
    _UPSERT_DAILY.format(rows=_UNBILLED_ROW.format(no_wait=", no_wait"))
)
_UPSERT_VALUES = _UPSERT_DAILY.format(rows="VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


def _upsert_daily(database, statement: str, params: list) -> int:
    """Run one of the rollup upserts above (rows in _DAILY_COLUMNS order, added to the rows that exist): one
    statement, race-free on PostgreSQL and SQLite alike. Returns the number of rows written."""
    with prepared_cursor(database.alias) as cursor:
        cursor.execute(statement, params)
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
    _upsert_daily(database, _UPSERT_VALUES, values)
