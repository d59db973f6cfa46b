"""The one-round-trip reservation (PostgreSQL's `ignition_reserve`) keeps exactly the books of the full path.

The same script of reservations, retries and releases is played for two Free teams (100 requests, 5 vehicles),
one as production runs it (the function first, the full path when it declines) and one with the function turned
off; every answer and every row written must be the same, alerts at 80 % and 100 % included. Run outside a test
transaction, so the function commits on its own as it does behind gunicorn.
"""

import pytest
from django.db.models import Sum

from billing import metering
from billing.models import ActiveVehicle, BillingEvent, BillingPeriod, UsageAlert, UsageDaily, UsageEvent
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ODOMETER = "/vehicles/{id}/odometer"
LOCATION = "/vehicles/{id}/location"


def script():
    """(action, request number, vehicle number, endpoint): 7 vehicles against 5 allowed, 120 requests against 100,
    retries of counted requests, and failed vehicle calls released."""
    steps = []
    for number in range(120):
        vehicle = number % 7 if number < 30 else number % 3
        steps.append(("reserve", number, vehicle, ODOMETER if number % 2 else LOCATION))
        if number in (3, 41, 79):
            steps.append(("reserve", number, vehicle, ODOMETER if number % 2 else LOCATION))  # a retry
        if number in (4, 50, 96):
            steps.append(("release", number, vehicle, None))  # the vehicle call failed
    return steps


def play(team, fast: bool, monkeypatch) -> list:
    if not fast:
        monkeypatch.setattr(metering, "_reserve_in_one_round_trip", lambda *args: None)
    application = ApplicationFactory(team=team)
    owner = make_owner()
    vehicles = [make_vehicle(owner) for _ in range(7)]
    reservations, answers = {}, []
    for action, number, vehicle, endpoint in script():
        if action == "release":
            metering.release(reservations[number])  # the scripted releases are of counted requests
            answers.append(("released", number))
            continue
        try:
            reservation = metering.reserve(
                request_id=f"{team.pk}-{number}",
                team_id=team.pk,
                application_id=application.pk,
                vehicle_id=vehicles[vehicle].pk,
                endpoint=endpoint,
            )
        except metering.LimitReached as limit:
            answers.append(("refused", number, limit.code))
            continue
        reservations.setdefault(number, reservation)
        answers.append(("counted" if reservation.counted else "retry", number, reservation.activated_vehicle))
    monkeypatch.undo()
    return answers, books(team, application, vehicles)


def books(team, application, vehicles) -> dict:
    """Everything metering wrote for the team, with ids replaced by positions."""
    period = BillingPeriod.objects.get(team=team)
    position = {vehicle.pk: index for index, vehicle in enumerate(vehicles)}
    return {
        "period": (period.requests_used, period.vehicles_active, period.accrued_cents, period.status),
        "events": sorted(
            (event.request_id.split("-", 1)[1], position[event.vehicle_id], event.endpoint, event.unit_price_cents)
            for event in UsageEvent.objects.filter(period=period)
        ),
        "active": sorted(position[active.vehicle_id] for active in ActiveVehicle.objects.filter(period=period)),
        "daily": sorted(
            (row.day, position.get(row.vehicle_key), row.endpoint, row.billable, row.non_billable, row.amount_cents)
            for row in UsageDaily.objects.filter(period=period)
        ),
        "alerts": sorted((alert.kind, alert.allowance) for alert in UsageAlert.objects.filter(period=period)),
        "events_logged": sorted(BillingEvent.objects.filter(team=team).values_list("kind", flat=True)),
        "application": application.pk is not None,
    }


def free_team(name):
    team = TeamFactory(name=name)
    MembershipFactory(team=team, role="owner")
    return team


def test_the_function_and_the_full_path_answer_and_write_the_same(monkeypatch):
    calls = []
    function = metering._reserve_in_one_round_trip

    def counting(*args):
        reservation = function(*args)
        calls.append(reservation is not None)
        return reservation

    monkeypatch.setattr(metering, "_reserve_in_one_round_trip", counting)
    fast_answers, fast_books = play(free_team("Fast Co"), True, monkeypatch)
    full_answers, full_books = play(free_team("Full Co"), False, monkeypatch)

    assert fast_answers == full_answers
    assert fast_books == full_books
    # The script reached every case: both limits, both alerts, retries, releases.
    assert full_books["period"] == (100, 5, 0, "open")
    assert ("refused", 119, "VEHICLE_REQUEST_LIMIT") in full_answers
    assert any(answer[0] == "refused" and answer[2] == "VEHICLE_LIMIT" for answer in full_answers)
    assert {kind for kind, _ in full_books["alerts"]} == {"requests_80", "requests_100", "vehicles_100"}
    assert ("retry", 41, False) in full_answers
    # Most requests took the one round trip; the thresholds, limits and retries the full path.
    assert calls.count(True) > 80
    assert calls.count(False) >= 10


def test_a_retry_through_the_function_counts_once_and_leaves_the_books_agreeing():
    team = free_team("Retry Co")
    vehicle = make_vehicle(make_owner())
    application = ApplicationFactory(team=team)
    reserve = {
        "request_id": "once",
        "team_id": team.pk,
        "application_id": application.pk,
        "vehicle_id": vehicle.pk,
        "endpoint": ODOMETER,
    }
    metering.reserve(**reserve)  # opens the period (the full path), then the function can count
    reserve["request_id"] = "twice"
    first = metering._reserve_in_one_round_trip("twice", team.pk, application.pk, vehicle.pk, ODOMETER, _now())
    assert first is not None and first.counted

    again = metering.reserve(**reserve)

    assert not again.counted
    period = BillingPeriod.objects.get(team=team)
    assert (period.requests_used, period.vehicles_active) == (2, 1)
    assert UsageEvent.objects.filter(period=period).count() == 2
    assert UsageDaily.objects.filter(period=period).aggregate(total=Sum("billable"))["total"] == 2


def test_a_suspended_team_is_refused_by_the_full_path_even_with_room_left():
    from billing.models import Subscription

    team = free_team("Suspended Co")
    vehicle = make_vehicle(make_owner())
    application = ApplicationFactory(team=team)
    metering.reserve(
        request_id="before", team_id=team.pk, application_id=application.pk, vehicle_id=vehicle.pk, endpoint=ODOMETER
    )
    Subscription.objects.filter(team=team).update(status=Subscription.Status.SUSPENDED)

    assert metering._reserve_in_one_round_trip("after", team.pk, application.pk, vehicle.pk, ODOMETER, _now()) is None
    with pytest.raises(metering.LimitReached):
        metering.reserve(
            request_id="after", team_id=team.pk, application_id=application.pk, vehicle_id=vehicle.pk, endpoint=ODOMETER
        )
    assert BillingPeriod.objects.get(team=team).requests_used == 1


def _now():
    from django.utils import timezone

    return timezone.now()
