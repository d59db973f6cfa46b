"""Schemathesis fuzzes the v2.0 API, in process, against the schema the API serves at /v2.0/openapi.json.

Each documented operation gets Schemathesis' generated requests (the schema's examples, boundary
"coverage" cases, then random ones) with real credentials: the Bearer token of a connected simulated
vehicle holding every permission, or the application's management token. Most requests name that
vehicle, so they reach real data and real commands rather than stopping at 403. Checks: no 5xx, and
status codes, content types, headers and bodies as documented.

Reproducible (fixed seed, deterministic generation) and bounded (the boundary cases, then MAX_EXAMPLES
random requests per operation). Rate limits are off: this is a conformance run, not a load test.

The WSGI app runs in this thread through Django's whole request cycle, whose close_old_connections
would break pytest-django's per-test transaction: hence transaction=True.
"""

import base64
import os
import uuid
from datetime import timedelta

import hypothesis
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.applications import set_management_token
from accounts.credentials import hash_secret
from tests.factories import ApplicationFactory, TeamFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_vehicle
from vehicles.models import AccessToken, Connection, Engine, Mode

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA_URL = "/v2.0/openapi.json"
# CI runs this fixed amount with a fixed seed; set these to fuzz longer or differently on your machine.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20240506"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# One well-formed vehicle or user id in this many is left as Schemathesis made it (an unknown one: 403).
KEEP_GENERATED_ID_ONE_IN = 5


# Fixed credentials and ids: the schema, its auth and its hooks are set up when the module is collected
# (schemathesis.pytest.from_fixture, which would load them in a fixture, breaks on pytest 9.2's node ids).
ACCESS_TOKEN = "5d1ed6b2-3a43-4d8c-9d43-0f0b1b5e2a11"
MANAGEMENT_TOKEN = "amt_schemathesis-fuzzing-management-token"
VEHICLE_ID = "0c5d7a0e-6a34-4bd3-8a39-5d2c4a1b7e01"
USER_ID = "7b0f8f2c-1f0e-4f5e-9a53-2f1c3b9d6e02"


@pytest.fixture
def connected(settings):
    """A test-mode owner's plug-in hybrid (every endpoint has data) connected with every permission.

    Test mode: never metered, so the free plan's 100 requests don't turn the run into 430s.
    """
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False
    application = ApplicationFactory(team=TeamFactory(name="Fuzzing Co"))
    owner = make_owner(mode=Mode.TEST, public_id=USER_ID)
    vehicle = make_vehicle(owner, engine=Engine.PHEV, is_plugged_in=True, public_id=VEHICLE_ID)
    grant = make_grant(application, owner, [vehicle])
    AccessToken.objects.create(
        grant=grant, token_hash=hash_secret(ACCESS_TOKEN), expires_at=timezone.now() + timedelta(hours=2)
    )
    set_management_token(application, token=MANAGEMENT_TOKEN)
    return application


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "auth": {
            "openapi": {
                "accessToken": {"bearer": ACCESS_TOKEN},
                "managementToken": {"username": "default", "password": MANAGEMENT_TOKEN},
            }
        },
    }
)
# Loaded through the app, as a client would: GET /v2.0/openapi.json (the view touches no database).
schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application(), config=CONFIG)


def _aim_at_the_connected_vehicle(case) -> None:
    """Point most requests at the connected vehicle and its owner, so they reach real data and commands.

    Only well-formed ids are replaced (malformed ones test validation), and one in KEEP_GENERATED_ID_ONE_IN
    of those is kept, by a rule on the id itself so that a run is reproducible: an unknown vehicle (403).
    """
    for parameters, name, ours in (
        (case.path_parameters, "vehicle_id", VEHICLE_ID),
        (case.query, "vehicle_id", VEHICLE_ID),
        (case.query, "user_id", USER_ID),
    ):
        generated = _as_uuid(parameters.get(name)) if parameters else None
        if generated is not None and generated.int % KEEP_GENERATED_ID_ONE_IN:
            parameters[name] = ours


def _as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return None


# The fixture's vehicle deliberately lives across a test's examples (commands change it; that is fine).
FUZZING = hypothesis.settings(
    deadline=None,  # a request's time is the app's, not the generator's; slow CI machines must not fail on it
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow],
)


@schema.exclude(method="DELETE").parametrize()
@FUZZING
def test_every_operation_answers_as_documented(case, connected):
    _aim_at_the_connected_vehicle(case)
    case.call_and_validate(checks=CHECKS)


@schema.include(method="DELETE").parametrize()
@FUZZING
def test_disconnecting_answers_as_documented(case, connected):
    # Each request disconnects from a connected vehicle, not from one an earlier request already took away.
    Connection.objects.filter(application=connected).update(revoked_at=None)
    _aim_at_the_connected_vehicle(case)
    case.call_and_validate(checks=CHECKS)


def test_a_huge_vehicles_offset_is_a_validation_error(client, connected):
    """Found by this run: an offset beyond a 64-bit integer used to reach the database and answer 500."""
    response = client.get(
        "/v2.0/vehicles?offset=9223372036854775808", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "VALIDATION"


def test_the_fuzzed_vehicle_is_reachable_with_the_fuzzing_credentials(client, connected):
    """Guards the run above against passing vacuously: its credentials really reach the vehicle."""
    base = f"/v2.0/vehicles/{VEHICLE_ID}"
    bearer = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    assert client.get(f"{base}/odometer", headers=bearer).status_code == 200
    assert client.get(f"{base}/fuel", headers=bearer).status_code == 200
    assert client.get(f"{base}/battery", headers=bearer).status_code == 200
    basic = base64.b64encode(f"default:{MANAGEMENT_TOKEN}".encode()).decode()
    listed = client.get("/v2.0/management/connections", headers={"Authorization": f"Basic {basic}"}).json()
    assert [(c["userId"], c["vehicleId"]) for c in listed["connections"]] == [(USER_ID, VEHICLE_ID)]
