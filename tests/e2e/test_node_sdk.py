"""Smartcar's official Node SDK (`smartcar` from npm, pinned in tests/e2e/node/package.json) works unchanged.

The twin of test_smartcar_sdk.py: a live test server; Node runs tests/e2e/node/journey.js with
the SDK's origin variables pointing at it. The SDK builds the Connect URL, Connect is walked by
submitting its HTML forms as a browser would, then the SDK exchanges the code, reads and commands
the simulated vehicle, and journey.js prints what the SDK returned as JSON for the assertions here.

Needs `node` and `npm ci --prefix tests/e2e/node`; without them the test is skipped, unless
REQUIRE_NODE_SDK=1 (CI), which turns that into a failure.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from accounts import applications
from accounts.models import Membership
from accounts.roles import Role
from tests.e2e.test_smartcar_sdk import submit
from tests.factories import MembershipFactory
from vehicles import simulator

pytestmark = pytest.mark.django_db(transaction=True)

NODE_DIR = Path(__file__).resolve().parent / "node"
SDK_VERSION = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["smartcar"]  # pinned exactly
REDIRECT_URI = "https://app.example.com/callback"
SCOPES = ["read_vehicle_info", "read_vin", "read_odometer", "read_location", "read_security", "control_security"]
STATE = "state-42"


@pytest.fixture(scope="session")
def node():
    """The `node` executable, once the pinned SDK is installed in tests/e2e/node/node_modules."""
    executable = shutil.which("node")
    installed = NODE_DIR / "node_modules" / "smartcar" / "package.json"
    if executable is None:
        problem = "node is not on PATH (install Node.js 18.20 or later)"
    elif not installed.is_file():
        problem = "the smartcar npm package is not installed"
    elif (version := json.loads(installed.read_text())["version"]) != SDK_VERSION:
        problem = f"smartcar {version} is installed, package.json pins {SDK_VERSION}"
    else:
        return executable
    message = f"{problem}: run `npm ci --prefix tests/e2e/node`"
    if os.environ.get("REQUIRE_NODE_SDK", "") == "1":
        pytest.fail(f"{message} (REQUIRE_NODE_SDK=1 forbids skipping the Node SDK test)", pytrace=False)
    pytest.skip(f"{message}, or set REQUIRE_NODE_SDK=1 to make this a failure")


@pytest.fixture
def developer_app(db):
    owner = MembershipFactory(role=Role.OWNER)
    application, credentials = applications.create_application(actor=owner, name="Fleet Tracker")
    applications.add_redirect_uri(actor=owner, application=application, uri=REDIRECT_URI)
    return application, credentials, Membership.objects.get(pk=owner.pk)


@pytest.fixture
def driver(developer_app):
    _, _, membership = developer_app
    owner = simulator.create_owner(team=membership.team, make="TESLA", email="ada@tesla.example", password="p4ss-w0rd")
    simulator.create_vehicle(owner=owner, model="Model 3", year=2022)
    return owner


@pytest.fixture
def journey(node, live_server, developer_app):
    """Runs `node journey.js <args>` with the SDK pointed at the live server; returns its stdout."""
    application, credentials, _ = developer_app
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SMARTCAR_")}
    environment.update(
        # The Node SDK takes origins only: it appends /oauth/token to the auth origin itself, and
        # builds the Connect URL on SMARTCAR_API_ORIGIN (SMARTCAR_CONNECT_ORIGIN is set for completeness).
        SMARTCAR_API_ORIGIN=live_server.url,
        SMARTCAR_AUTH_ORIGIN=live_server.url,
        SMARTCAR_CONNECT_ORIGIN=live_server.url,
        SMARTCAR_MANAGEMENT_API_ORIGIN=live_server.url,
        SMARTCAR_CLIENT_ID=str(application.client_id),
        SMARTCAR_CLIENT_SECRET=credentials.client_secret,
        SMARTCAR_REDIRECT_URI=REDIRECT_URI,
        JOURNEY_SCOPE=" ".join(SCOPES),
        JOURNEY_STATE=STATE,
        JOURNEY_MANAGEMENT_TOKEN=credentials.management_token,
    )

    def run(*args: str) -> str:
        done = subprocess.run(
            [node, "journey.js", *args], cwd=NODE_DIR, env=environment, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"node journey.js {' '.join(args)} failed:\n{done.stderr}{done.stdout}"
        return done.stdout

    return run


def connect(origin: str, auth_url: str) -> str:
    """Walk Connect for the driver from the SDK-built URL; returns the authorization code sent to the redirect URI."""
    assert auth_url.startswith(f"{origin}/oauth/authorize?")
    session = requests.Session()
    first = session.get(auth_url, allow_redirects=False)
    assert first.status_code == 302, first.text[:500]
    login = {"email": "ada@tesla.example", "password": "p4ss-w0rd"}
    consent = submit(session, origin, first.headers["Location"], login)
    callback = submit(session, origin, consent, {"decision": "allow", "vehicle": "all"})
    assert callback.startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [STATE]
    return query["code"][0]


def test_the_official_node_sdk_runs_the_whole_journey(live_server, journey, developer_app, driver):
    application, _, _ = developer_app
    auth_url = journey("auth-url").strip()
    query = parse_qs(urlsplit(auth_url).query)
    assert query["client_id"] == [str(application.client_id)]
    assert query["scope"] == [" ".join(SCOPES)] and query["make"] == ["TESLA"] and query["mode"] == ["live"]

    result = json.loads(journey("run", connect(live_server.url, auth_url)))
    assert result["sdkVersion"] == SDK_VERSION

    assert result["access"]["expiresInSeconds"] in range(7190, 7201)
    assert result["vehicles"]["paging"] == {"count": 1, "offset": 0}
    vehicle_id = result["vehicles"]["vehicles"][0]
    assert result["user"]["id"] == str(driver.public_id)

    attributes = {key: value for key, value in result["attributes"].items() if key != "meta"}
    assert attributes == {"id": vehicle_id, "make": "TESLA", "model": "Model 3", "year": 2022}
    assert result["vin"]["vin"] == driver.vehicles.get().vin

    odometer = result["odometer"]
    assert isinstance(odometer["distance"], int | float) and odometer["distance"] > 0
    # The meta the SDK parsed from our SC-* headers.
    assert len(odometer["meta"]["requestId"]) == 36
    assert odometer["meta"]["dataAge"] and odometer["meta"]["unitSystem"] == "metric"
    location = result["location"]
    assert -90 <= location["latitude"] <= 90 and -180 <= location["longitude"] <= 180
    assert location["meta"]["dataAge"]

    assert result["lockStatusBefore"]["isLocked"] is True
    doors = {door["type"] for door in result["lockStatusBefore"]["doors"]}
    assert doors == {"frontLeft", "frontRight", "backLeft", "backRight"}
    assert result["unlock"]["status"] == "success"
    assert result["unlock"]["message"] == "Successfully sent request to vehicle"
    assert result["lockStatusAfterUnlock"]["isLocked"] is False
    assert result["lock"]["status"] == "success"
    assert result["lockStatusAfterLock"]["isLocked"] is True

    batch = result["batch"]
    assert batch["odometer"]["distance"] > 0 and batch["odometer"]["meta"]["unitSystem"] == "metric"
    assert batch["location"]["latitude"] == location["latitude"]
    assert batch["location"]["longitude"] == location["longitude"]

    assert sorted(result["permissions"]["permissions"]) == sorted(SCOPES)
    assert result["permissions"]["paging"]["count"] == len(SCOPES)

    denied = result["deniedError"]  # read_fuel was not granted
    assert (denied["statusCode"], denied["type"], denied["code"]) == (403, "PERMISSION", None), denied
    assert denied["resolution"]["type"] == "REAUTHENTICATE"
    assert len(denied["requestId"]) == 36

    assert result["refreshedTokenDiffers"] is True and result["refreshedRefreshTokenDiffers"] is True
    assert result["userWithRefreshedToken"]["id"] == str(driver.public_id)

    connections = result["connections"]["connections"]
    assert [(c["vehicleId"], c["userId"]) for c in connections] == [(vehicle_id, str(driver.public_id))]
    assert connections[0]["connectedAt"]

    assert result["disconnect"]["status"] == "success"
    gone = result["afterDisconnectError"]
    assert gone.get("statusCode") == 403, gone
