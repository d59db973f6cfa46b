"""Rate limits: 429 RATE_LIMIT:SMARTCAR_API per application and RATE_LIMIT:VEHICLE per vehicle, with Retry-After.

These run on whichever cache the suite is configured with: the database cache in the zero-config pass,
Redis (the atomic Lua script) in CI's PostgreSQL + Redis pass. The concurrency proof needs Redis.
"""

import threading
import uuid

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.cache import cache

from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import assert_envelope, make_grant, make_token, request
from vehicles.api import rate_limits

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    """Set the buckets as {kind: (burst, per_minute)}; unnamed kinds are effectively unlimited."""

    def configure(application=(10_000, 10_000), vehicle=(10_000, 10_000)):
        settings.VEHICLE_API_RATE_LIMITS_ENABLED = True
        settings.VEHICLE_API_RATE_LIMIT = {"application": application, "vehicle": vehicle}

    return configure


@pytest.fixture
def clock():
    with time_machine.travel("2026-03-01T12:00:00Z", tick=False) as traveller:
        yield traveller


def odometer(client, api, token=None, vehicle=None):
    vehicle = vehicle or api.vehicle
    return request(client, "GET", f"/v2.0/vehicles/{vehicle.public_id}/odometer", token=token or api.token)


def test_the_application_bucket_admits_its_burst_then_429s_with_retry_after(client, api, limits, clock):
    limits(application=(3, 2))  # 3 at once, then one every 30 s
    assert [odometer(client, api).status_code for _ in range(3)] == [200, 200, 200]

    refused = odometer(client, api)

    body = assert_envelope(refused, "RATE_LIMIT", "SMARTCAR_API", 429)
    assert refused["Retry-After"] == "30"
    assert body["resolution"] == {"type": "RETRY_LATER"}
    assert "rate limit" in body["description"]


def test_the_application_bucket_refills_at_its_rate(client, api, limits, clock):
    limits(application=(2, 2))
    odometer(client, api), odometer(client, api)
    assert odometer(client, api).status_code == 429

    clock.shift(29)
    assert odometer(client, api)["Retry-After"] == "1"
    clock.shift(1)
    assert odometer(client, api).status_code == 200  # one request earned back
    assert odometer(client, api).status_code == 429

    clock.shift(3600)  # a long pause refills the bucket to its burst, never beyond
    assert [odometer(client, api).status_code for _ in range(3)] == [200, 200, 429]


def test_every_endpoint_of_the_application_draws_on_the_same_bucket(client, api, limits, clock):
    limits(application=(4, 2))
    assert request(client, "GET", "/v2.0/vehicles", token=api.token).status_code == 200
    assert request(client, "GET", "/v2.0/user", token=api.token).status_code == 200
    assert request(client, "GET", api.base + "/permissions", token=api.token).status_code == 200
    assert request(client, "POST", api.base + "/security", token=api.token, body={"action": "LOCK"}).status_code == 200

    assert_envelope(request(client, "GET", "/v2.0/vehicles", token=api.token), "RATE_LIMIT", "SMARTCAR_API", 429)
    assert_envelope(request(client, "GET", "/v2.0/user", token=api.token), "RATE_LIMIT", "SMARTCAR_API", 429)


def test_a_refused_request_reaches_neither_the_vehicle_nor_the_metering_as_a_success(
    client, api, limits, clock, metered
):
    limits(application=(1, 2))
    odometer(client, api)
    calls_before = len(api.provider.calls)

    assert odometer(client, api).status_code == 429

    assert len(api.provider.calls) == calls_before
    assert metered[-1]["outcome"] == 429


def test_applications_have_their_own_buckets(client, api, limits, clock):
    limits(application=(1, 2))
    other_app = ApplicationFactory(team=api.team)
    other_token = make_token(make_grant(other_app, api.owner, [api.vehicle]))
    assert odometer(client, api).status_code == 200
    assert odometer(client, api).status_code == 429

    assert odometer(client, api, token=other_token).status_code == 200


def test_the_vehicle_throttle_is_per_vehicle_and_answers_rate_limit_vehicle(client, api, limits, clock):
    limits(vehicle=(2, 6))  # 2 at once, then one every 10 s
    assert [odometer(client, api).status_code for _ in range(2)] == [200, 200]

    refused = odometer(client, api)

    body = assert_envelope(refused, "RATE_LIMIT", "VEHICLE", 429)
    assert refused["Retry-After"] == "10"
    assert "retry-after" in body["description"]
    assert odometer(client, api, vehicle=api.second).status_code == 200  # the other car is not throttled
    assert request(client, "GET", "/v2.0/vehicles", token=api.token).status_code == 200  # nor the non-vehicle calls


def test_the_vehicle_throttle_spans_applications(client, api, limits, clock):
    limits(vehicle=(2, 6))
    other_token = make_token(make_grant(ApplicationFactory(), api.owner, [api.vehicle]))
    assert odometer(client, api).status_code == 200
    assert odometer(client, api, token=other_token).status_code == 200

    assert_envelope(odometer(client, api), "RATE_LIMIT", "VEHICLE", 429)
    assert_envelope(odometer(client, api, token=other_token), "RATE_LIMIT", "VEHICLE", 429)


def test_a_request_refused_for_its_vehicle_does_not_spend_the_application_budget(client, api, limits, clock):
    limits(application=(4, 2), vehicle=(2, 6))
    assert [odometer(client, api).status_code for _ in range(2)] == [200, 200]
    for _ in range(5):
        assert_envelope(odometer(client, api), "RATE_LIMIT", "VEHICLE", 429)

    assert [odometer(client, api, vehicle=api.second).status_code for _ in range(2)] == [200, 200]
    assert_envelope(odometer(client, api, vehicle=api.second), "RATE_LIMIT", "SMARTCAR_API", 429)


def test_a_batch_is_one_request_to_the_vehicle_and_is_refused_whole(client, api, limits, clock):
    limits(vehicle=(2, 6))
    batch = {"requests": [{"path": "/odometer"}, {"path": "/location"}, {"path": "/vin"}]}
    first = request(client, "POST", api.base + "/batch", token=api.token, body=batch)
    assert [item["code"] for item in first.json()["responses"]] == [200, 200, 200]
    assert odometer(client, api).status_code == 200

    refused = request(client, "POST", api.base + "/batch", token=api.token, body=batch)

    assert_envelope(refused, "RATE_LIMIT", "VEHICLE", 429)
    assert refused["Retry-After"] == "10"


def test_limits_can_be_turned_off(client, api, limits, settings):
    limits(application=(1, 1), vehicle=(1, 1))
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False
    assert {odometer(client, api).status_code for _ in range(5)} == {200}


def test_the_default_application_bucket_is_smartcars_120_refilling_2_a_minute():
    assert django_settings.VEHICLE_API_RATE_LIMIT["application"] == (120, 2)


@pytest.mark.skipif(
    not django_settings.CACHES["default"]["BACKEND"].endswith("RedisCache"),
    reason="the atomic bucket needs Redis (CACHE_URL=redis://...); CI's PostgreSQL + Redis pass runs this",
)
def test_on_redis_concurrent_requests_never_overshoot_the_bucket():
    cache.clear()
    bucket = rate_limits.Bucket(key=f"{rate_limits.KEY_PREFIX}test:{uuid.uuid4()}", burst=20, interval=60.0)
    outcomes, start = [], threading.Barrier(16)

    def client_thread():
        start.wait()
        for _ in range(10):
            outcomes.append(rate_limits.take([bucket], now=1_000_000.0))

    threads = [threading.Thread(target=client_thread) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(outcome is None for outcome in outcomes) == 20
    assert {outcome.retry_after for outcome in outcomes if outcome is not None} == {60}
