"""Shared builders and fixtures for the v2.0 API tests (no tests here; import the fixtures you use).

The `fake_provider` fixture stands in for vehicles.providers.get_provider with fixed metric values,
so unit conversions and headers can be asserted exactly; test_api_simulated.py runs the real one.
"""

import base64
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.cache import caches
from django.utils import timezone

from accounts.applications import set_management_token
from accounts.credentials import hash_secret
from tests.factories import ApplicationFactory, TeamFactory
from vehicles.models import AccessToken, Connection, Engine, Grant, SimulatedOwner, SimulatedVehicle
from vehicles.providers.base import ActionResult, Reading
from vehicles.scopes import PERMISSIONS

ALL_SCOPES = list(PERMISSIONS)
RECORDED_AT = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
RECORDED_ISO = "2024-05-06T07:08:09.123Z"
_serial = itertools.count(1)


def make_owner(**kwargs) -> SimulatedOwner:
    n = next(_serial)
    return SimulatedOwner.objects.create(
        **{"make": "TESLA", "email": f"driver{n}@example.com", "password": "!", **kwargs}
    )


def make_vehicle(owner: SimulatedOwner, **kwargs) -> SimulatedVehicle:
    n = next(_serial)
    fields = {"make": owner.make, "model": "Model S", "year": 2021, "vin": f"5YJSA1CN5DFP{n:05d}", "engine": Engine.BEV}
    fields.update(seed=n, created_at=timezone.now() - timedelta(days=30), **kwargs)
    return SimulatedVehicle.objects.create(owner=owner, **fields)


def make_grant(application, owner, vehicles, scopes=None) -> Grant:
    grant = Grant.objects.create(application=application, owner=owner, scopes=ALL_SCOPES if scopes is None else scopes)
    for vehicle in vehicles:
        Connection.objects.create(grant=grant, application=application, vehicle=vehicle)
    return grant


def make_token(grant: Grant, *, expires_in: timedelta = timedelta(hours=2)) -> str:
    token = str(uuid.uuid4())
    AccessToken.objects.create(grant=grant, token_hash=hash_secret(token), expires_at=timezone.now() + expires_in)
    return token


def request(client, method: str, path: str, *, token=None, body=None, raw_body=None, headers=None):
    """Call the API as the SDKs do: Bearer token, JSON body."""
    headers = dict(headers or {})
    if token is not None:
        headers.setdefault("Authorization", f"Bearer {token}")
    data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else "")
    return client.generic(method, path, data=data, content_type="application/json", headers=headers)


class FakeProvider:
    """Fixed metric values, and the calls it received; `failures[method] = exc` makes a method raise."""

    def __init__(self):
        self.calls = []
        self.failures = {}

    def _answer(self, method, vehicle, *args, data=None):
        self.calls.append((method, vehicle.public_id, args))
        if method in self.failures:
            raise self.failures[method]
        return Reading(data=data, recorded_at=RECORDED_AT) if data is not None else ActionResult()

    def attributes(self, v):
        data = {"id": str(v.public_id), "make": v.make, "model": v.model, "year": v.year}
        return self._answer("attributes", v, data=data)

    def vin(self, v):
        return self._answer("vin", v, data={"vin": v.vin})

    def odometer(self, v):
        return self._answer("odometer", v, data={"distance": 100.0})

    def location(self, v):
        return self._answer("location", v, data={"latitude": 37.4292, "longitude": -122.1381})

    def lock_status(self, v):
        doors = [{"type": t, "status": "CLOSED"} for t in ("frontLeft", "frontRight", "backLeft", "backRight")]
        data = {
            "isLocked": True,
            "doors": doors,
            "windows": doors,
            "sunroof": [],
            "storage": [{"type": "rear", "status": "CLOSED"}],
            "chargingPort": [{"type": "chargingPort", "status": "CLOSED"}],
        }
        return self._answer("lock_status", v, data=data)

    def lock(self, v):
        return self._answer("lock", v)

    def unlock(self, v):
        return self._answer("unlock", v)

    def fuel(self, v):
        return self._answer(
            "fuel", v, data={"amountRemaining": 37.85411784, "percentRemaining": 0.5, "range": 160.9344}
        )

    def battery(self, v):
        return self._answer("battery", v, data={"percentRemaining": 0.3, "range": 321.8688})

    def battery_capacity(self, v):
        return self._answer("battery_capacity", v, data={"capacity": 75})

    def charge(self, v):
        return self._answer("charge", v, data={"isPluggedIn": True, "state": "CHARGING"})

    def start_charge(self, v):
        return self._answer("start_charge", v)

    def stop_charge(self, v):
        return self._answer("stop_charge", v)

    def charge_limit(self, v):
        return self._answer("charge_limit", v, data={"limit": 0.8})

    def set_charge_limit(self, v, limit):
        return self._answer("set_charge_limit", v, limit)

    def tire_pressure(self, v):
        kpa = 6.894757293168361 * 35
        return self._answer(
            "tire_pressure", v, data=dict.fromkeys(("frontLeft", "frontRight", "backLeft", "backRight"), kpa)
        )

    def engine_oil(self, v):
        return self._answer("engine_oil", v, data={"lifeRemaining": 0.35})

    def send_destination(self, v, latitude, longitude):
        return self._answer("send_destination", v, latitude, longitude)


@pytest.fixture
def in_memory_cache(settings):
    """Rate limits on an in-memory cache, for query budgets: in production they are a Redis round trip and no
    SQL, while the zero-config database cache would add its own queries to the count."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Rolled-back ids are reused (SQLite), so a bucket left by an earlier test could belong to "this" app.
    caches["default"].clear()


@pytest.fixture
def fake_provider(monkeypatch):
    provider = FakeProvider()
    monkeypatch.setattr("vehicles.api.views.provider_for", lambda vehicle: provider)
    return provider


@pytest.fixture
def api(db, fake_provider):
    """A team's application, an owner with two vehicles connected through a grant holding every scope."""
    team = TeamFactory(name="Fleet Co")
    application = ApplicationFactory(team=team)
    owner = make_owner()
    vehicle, second = make_vehicle(owner), make_vehicle(owner)
    grant = make_grant(application, owner, [vehicle, second])
    return SimpleNamespace(
        team=team,
        application=application,
        owner=owner,
        vehicle=vehicle,
        second=second,
        grant=grant,
        token=make_token(grant),
        provider=fake_provider,
        base=f"/v2.0/vehicles/{vehicle.public_id}",
    )


@pytest.fixture
def management(api):
    """The Basic header the SDKs send with the application's management token."""
    token = set_management_token(api.application)
    return {"Authorization": "Basic " + base64.b64encode(f"default:{token}".encode()).decode()}


@pytest.fixture
def metered(monkeypatch):
    """Every call to the metering hook, as its keyword arguments."""
    calls = []
    monkeypatch.setattr("vehicles.api.metering_hook.record_request", lambda **kwargs: calls.append(kwargs))
    return calls


def assert_envelope(response, type_, code, status):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["type"], body["code"], body["statusCode"]) == (type_, code, status)
    assert set(body) >= {"type", "code", "description", "docURL", "statusCode", "requestId", "resolution"}
    assert body["requestId"] == response["SC-Request-Id"]
    assert len(response["SC-Request-Id"]) == 36
    uuid.UUID(response["SC-Request-Id"])
    return body
