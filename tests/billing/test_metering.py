"""Metering through the vehicle API: what counts, limits answered 430, retries counted once (DESIGN §3-4)."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone

from billing import lifecycle, metering
from billing.models import ActiveVehicle, BillingEvent, BillingPeriod, UsageAlert, UsageDaily, UsageEvent
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory
from tests.vehicles.api_helpers import assert_envelope, make_grant, make_owner, make_token, make_vehicle, request
from vehicles.models import Mode

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False


@pytest.fixture
def fleet(db):
    """A Free team's application and an owner with 7 vehicles connected (more than Free's 5)."""
    team = TeamFactory(name="Metered Co")
    MembershipFactory(team=team, role="owner")
    application = ApplicationFactory(team=team)
    owner = make_owner()
    vehicles = [make_vehicle(owner) for _ in range(7)]
    grant = make_grant(application, owner, vehicles)
    return SimpleNamespace(
        team=team, application=application, owner=owner, vehicles=vehicles, grant=grant, token=make_token(grant)
    )


def read(client, fleet, vehicle=None, path="/odometer", **headers):
    vehicle = vehicle or fleet.vehicles[0]
    return request(client, "GET", f"/v2.0/vehicles/{vehicle.public_id}{path}", token=fleet.token, headers=headers)


def period_of(team) -> BillingPeriod:
    return BillingPeriod.objects.get(team=team, start__lte=timezone.now(), end__gt=timezone.now())


def assert_books_agree(period: BillingPeriod) -> None:
    """The counter, the events and the daily rollups tell the same story."""
    period.refresh_from_db()
    events = UsageEvent.objects.filter(period=period)
    daily = UsageDaily.objects.filter(period=period).aggregate(billable=Sum("billable"), amount=Sum("amount_cents"))
    assert period.requests_used == events.count() == (daily["billable"] or 0)
    assert period.accrued_cents == (events.aggregate(total=Sum("unit_price_cents"))["total"] or 0)
    assert period.accrued_cents == (daily["amount"] or 0)
    assert period.vehicles_active == ActiveVehicle.objects.filter(period=period).count()
    assert period.vehicles_active == events.values("vehicle").distinct().count()


def test_a_successful_billable_request_counts_once_against_the_free_plan(client, fleet):
    assert read(client, fleet).status_code == 200

    period = period_of(fleet.team)
    assert (period.plan.code, period.request_allowance, period.vehicle_allowance) == ("free", 100, 5)
    assert (period.requests_used, period.vehicles_active, period.accrued_cents) == (1, 1, 0)
    assert_books_agree(period)


def test_free_requests_are_not_counted_but_show_in_the_daily_chart(client, fleet):
    request(client, "GET", "/v2.0/vehicles", token=fleet.token)
    request(client, "GET", "/v2.0/user", token=fleet.token)
    request(client, "GET", f"/v2.0/vehicles/{fleet.vehicles[0].public_id}/permissions", token=fleet.token)

    period = period_of(fleet.team)
    assert period.requests_used == 0
    assert UsageDaily.objects.filter(period=period).aggregate(n=Sum("non_billable"))["n"] == 3


def test_a_failed_vehicle_call_costs_nothing_and_activates_nothing(client, fleet):
    asleep = fleet.vehicles[0]
    asleep.failure = "VEHICLE_STATE:ASLEEP"
    asleep.save(update_fields=["failure"])

    assert read(client, fleet, asleep).status_code == 409

    period = period_of(fleet.team)
    assert (period.requests_used, period.vehicles_active) == (0, 0)
    assert not UsageEvent.objects.exists()
    assert UsageDaily.objects.get(period=period).non_billable == 1
    assert_books_agree(period)


def test_the_101st_billable_request_of_a_free_period_answers_430_and_free_endpoints_keep_working(client, fleet):
    for _ in range(100):
        assert read(client, fleet).status_code == 200

    refused = read(client, fleet, path="/location")

    body = assert_envelope(refused, "BILLING", "VEHICLE_REQUEST_LIMIT", 430)
    assert "Billing tab" in body["description"]
    assert request(client, "GET", "/v2.0/vehicles", token=fleet.token).status_code == 200
    period = period_of(fleet.team)
    assert period.requests_used == 100
    assert_books_agree(period)
    assert set(period.alerts.values_list("kind", flat=True)) == {"requests_80", "requests_100"}


def test_a_sixth_vehicle_answers_vehicle_limit_while_the_first_five_keep_working(client, fleet):
    for vehicle in fleet.vehicles[:5]:
        assert read(client, fleet, vehicle).status_code == 200

    assert_envelope(read(client, fleet, fleet.vehicles[5]), "BILLING", "VEHICLE_LIMIT", 430)

    assert read(client, fleet, fleet.vehicles[4]).status_code == 200
    period = period_of(fleet.team)
    assert (period.vehicles_active, period.requests_used) == (5, 6)
    assert period.alerts.filter(kind="vehicles_100").exists()
    assert_books_agree(period)


def test_a_retry_with_the_same_idempotency_key_counts_once(client, fleet):
    first = read(client, fleet, **{"Idempotency-Key": "order-42"})
    retry = read(client, fleet, **{"Idempotency-Key": "order-42"})
    other = read(client, fleet, **{"Idempotency-Key": "order-43"})

    assert [first.status_code, retry.status_code, other.status_code] == [200, 200, 200]
    assert period_of(fleet.team).requests_used == 2
    assert_books_agree(period_of(fleet.team))


def test_idempotency_keys_are_scoped_to_the_application(client, fleet):
    other_app = ApplicationFactory(team=fleet.team)
    other_token = make_token(make_grant(other_app, fleet.owner, fleet.vehicles[:1]))
    read(client, fleet, **{"Idempotency-Key": "same"})
    path = f"/v2.0/vehicles/{fleet.vehicles[0].public_id}/odometer"
    request(client, "GET", path, token=other_token, headers={"Idempotency-Key": "same"})
    assert period_of(fleet.team).requests_used == 2


def test_a_retry_of_a_counted_request_still_works_at_the_limit(client, fleet):
    read(client, fleet, **{"Idempotency-Key": "last-one"})
    for _ in range(99):
        read(client, fleet)
    assert read(client, fleet, **{"Idempotency-Key": "last-one"}).status_code == 200
    assert read(client, fleet).status_code == 430


def test_an_overlong_idempotency_key_is_a_validation_error(client, fleet):
    assert_envelope(read(client, fleet, **{"Idempotency-Key": "k" * 256}), "VALIDATION", "PARAMETER", 400)
    assert not UsageEvent.objects.exists()


def test_each_batch_sub_request_counts_and_is_refused_on_its_own(client, fleet):
    for _ in range(98):
        read(client, fleet)
    body = {"requests": [{"path": "/odometer"}, {"path": "/vin"}, {"path": "/location"}, {"path": "/nope"}]}

    answer = request(client, "POST", f"/v2.0/vehicles/{fleet.vehicles[0].public_id}/batch", token=fleet.token,
                     body=body)  # fmt: skip

    assert [item["code"] for item in answer.json()["responses"]] == [200, 200, 430, 404]
    assert answer.json()["responses"][2]["body"]["code"] == "VEHICLE_REQUEST_LIMIT"
    assert period_of(fleet.team).requests_used == 100
    assert_books_agree(period_of(fleet.team))


def test_a_retried_batch_with_an_idempotency_key_counts_its_sub_requests_once(client, fleet):
    url = f"/v2.0/vehicles/{fleet.vehicles[0].public_id}/batch"
    body = {"requests": [{"path": "/odometer"}, {"path": "/vin"}]}
    for _ in range(2):
        request(client, "POST", url, token=fleet.token, body=body, headers={"Idempotency-Key": "batch-1"})
    assert period_of(fleet.team).requests_used == 2


def test_test_mode_vehicles_are_never_counted(client, fleet):
    fleet.owner.mode = Mode.TEST
    fleet.owner.save(update_fields=["mode"])
    for _ in range(120):
        assert read(client, fleet).status_code == 200
    assert period_of(fleet.team).requests_used == 0


def test_a_new_period_starts_from_zero_and_the_old_one_keeps_its_count(client, fleet):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(100):
            read(client, fleet)
        assert read(client, fleet).status_code == 430
        old = period_of(fleet.team)

        clock.move_to(old.end + timedelta(seconds=1))
        fleet.token = make_token(fleet.grant)  # the old access token expired on the way
        assert read(client, fleet).status_code == 200

        new = period_of(fleet.team)
        assert new.start == old.end
        assert (new.requests_used, new.vehicles_active) == (1, 1)
        old.refresh_from_db()
        assert old.requests_used == 100


def test_opening_a_period_is_audited_once(fleet):
    for _ in range(3):
        lifecycle.current_period(fleet.team.pk)
    assert BillingEvent.objects.filter(team=fleet.team, kind="period_opened").count() == 1


def test_a_suspended_team_gets_account_suspended_on_billable_requests_only(client, fleet):
    subscription = lifecycle.subscription_for(fleet.team.pk)
    subscription.status = "suspended"
    subscription.save(update_fields=["status"])

    assert_envelope(read(client, fleet), "BILLING", "ACCOUNT_SUSPENDED", 430)
    assert request(client, "GET", "/v2.0/vehicles", token=fleet.token).status_code == 200


def test_each_alert_is_raised_once_per_period(client, fleet):
    for _ in range(100):
        read(client, fleet)
    for _ in range(3):
        read(client, fleet)  # refused: the 100% alert exists already
    assert UsageAlert.objects.filter(period=period_of(fleet.team)).count() == 2
    assert BillingEvent.objects.filter(team=fleet.team, kind="limit_reached").count() == 1


def test_overlapping_failed_requests_leave_no_vehicle_active(fleet):
    """Review finding: the request that activated a vehicle may be released before another one to it."""
    vehicle = fleet.vehicles[0]
    kwargs = {"team_id": fleet.team.pk, "application_id": fleet.application.pk, "vehicle_id": vehicle.pk,
              "endpoint": "/vehicles/{id}/odometer"}  # fmt: skip
    activator = metering.reserve(request_id="first", **kwargs)
    follower = metering.reserve(request_id="second", **kwargs)
    assert activator.activated_vehicle and not follower.activated_vehicle

    metering.release(activator)
    metering.release(follower)

    period = period_of(fleet.team)
    assert (period.requests_used, period.vehicles_active) == (0, 0)
    assert_books_agree(period)
