"""Smartcar's official Python SDK (smartcar 6.19.1 from PyPI) works unchanged against Ignition.

A live test server; the SDK's origins point at it; Connect is walked by submitting its HTML
forms as a browser would (cookies, CSRF token), then the SDK exchanges the code and reads and
commands the simulated vehicle. Nothing is mocked.
"""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import smartcar
from smartcar import config as sdk_config

from accounts import applications
from accounts.models import Membership
from accounts.roles import Role
from tests.factories import MembershipFactory
from vehicles import simulator

pytestmark = pytest.mark.django_db(transaction=True)

REDIRECT_URI = "https://app.example.com/callback"
SCOPES = ["read_vehicle_info", "read_vin", "read_odometer", "read_location", "read_security", "control_security"]


@pytest.fixture
def sdk_pointed_at(live_server, monkeypatch):
    # The SDK reads its origins from the environment at import; these are the same variables, set late.
    monkeypatch.setattr(sdk_config, "API_ORIGIN", live_server.url)
    monkeypatch.setattr(sdk_config, "AUTH_ORIGIN", f"{live_server.url}/oauth/token")
    monkeypatch.setattr(sdk_config, "CONNECT_ORIGIN", live_server.url)
    monkeypatch.setattr(sdk_config, "MANAGEMENT_API_ORIGIN", live_server.url)
    return live_server.url


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


def submit(session, origin, location, data):
    """GET a Connect page, then POST its form with the CSRF token, like a browser; returns the redirect."""
    url = location if location.startswith("http") else origin + location
    page = session.get(url)
    assert page.status_code == 200, page.text[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    flow = parse_qs(urlsplit(url).query)["flow"][0]
    if data.get("vehicle") == "all":
        data["vehicle"] = re.findall(r'name="vehicle" value="([0-9a-f-]{36})"', page.text)
    response = session.post(
        url, data={"csrfmiddlewaretoken": token, "flow": flow, **data}, headers={"Referer": url}, allow_redirects=False
    )
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def connect(sdk_origin, auth_client) -> str:
    """Walk Connect for the driver; returns the authorization code sent to the redirect URI."""
    auth_url = auth_client.get_auth_url(SCOPES, {"state": "state-42", "make_bypass": "TESLA"})
    session = requests.Session()
    first = session.get(auth_url, allow_redirects=False)
    assert first.status_code == 302
    consent = submit(
        session, sdk_origin, first.headers["Location"], {"email": "ada@tesla.example", "password": "p4ss-w0rd"}
    )
    callback = submit(session, sdk_origin, consent, {"decision": "allow", "vehicle": "all"})
    assert callback.startswith(REDIRECT_URI)
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == ["state-42"]
    return query["code"][0]


def test_the_official_python_sdk_runs_the_whole_journey(sdk_pointed_at, developer_app, driver):
    application, credentials, _ = developer_app
    auth_client = smartcar.AuthClient(str(application.client_id), credentials.client_secret, REDIRECT_URI, mode="live")

    access = auth_client.exchange_code(connect(sdk_pointed_at, auth_client))
    assert access.token_type == "Bearer"

    vehicles = smartcar.get_vehicles(access.access_token)
    assert vehicles.paging.count == 1
    assert smartcar.get_user(access.access_token).id == str(driver.public_id)

    vehicle = smartcar.Vehicle(vehicles.vehicles[0], access.access_token)
    attributes = vehicle.attributes()
    assert (attributes.make, attributes.model, attributes.year) == ("TESLA", "Model 3", 2022)
    assert vehicle.vin().vin == driver.vehicles.get().vin
    assert vehicle.odometer().distance > 0
    location = vehicle.location()
    assert -90 <= location.latitude <= 90 and -180 <= location.longitude <= 180
    assert vehicle.lock_status().is_locked is True
    assert vehicle.unlock().status == "success"
    assert vehicle.lock_status().is_locked is False
    assert vehicle.lock().status == "success"
    batch = vehicle.batch(["/odometer", "/location"])
    assert batch.odometer().distance > 0 and batch.location().latitude == location.latitude
    assert sorted(vehicle.permissions().permissions) == sorted(SCOPES)

    refreshed = auth_client.exchange_refresh_token(access.refresh_token)
    assert refreshed.access_token != access.access_token

    connections = smartcar.get_connections(credentials.management_token)
    assert [c.vehicle_id for c in connections.connections] == [vehicles.vehicles[0]]

    with pytest.raises(smartcar.SmartcarException) as denied:
        vehicle.request("GET", "fuel")  # read_fuel was not granted
    assert (denied.value.status_code, denied.value.type, denied.value.code) == (403, "PERMISSION", None)
    assert denied.value.resolution["type"] == "REAUTHENTICATE"

    assert vehicle.disconnect().status == "success"
    with pytest.raises(smartcar.SmartcarException) as gone:
        vehicle.odometer()
    assert gone.value.status_code == 403


def test_the_sdk_reports_a_bad_code_as_an_oauth_error(sdk_pointed_at, developer_app):
    application, credentials, _ = developer_app
    auth_client = smartcar.AuthClient(str(application.client_id), credentials.client_secret, REDIRECT_URI)
    with pytest.raises(smartcar.SmartcarException) as error:
        auth_client.exchange_code("THIS_SHOULD_NOT_WORK")
    assert error.value.status_code == 400
    assert error.value.message == "Invalid code: THIS_SHOULD_NOT_WORK."  # what the real API answers


def test_the_sdk_surfaces_the_vehicle_throttle_with_its_retry_after(sdk_pointed_at, developer_app, driver, settings):
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = True
    settings.VEHICLE_API_RATE_LIMIT = {"application": (100, 60), "vehicle": (1, 2)}  # then one every 30 s
    application, credentials, _ = developer_app
    auth_client = smartcar.AuthClient(str(application.client_id), credentials.client_secret, REDIRECT_URI)
    token = auth_client.exchange_code(connect(sdk_pointed_at, auth_client)).access_token
    vehicle = smartcar.Vehicle(smartcar.get_vehicles(token).vehicles[0], token)
    vehicle.odometer()

    with pytest.raises(smartcar.SmartcarException) as throttled:
        vehicle.odometer()

    assert (throttled.value.status_code, throttled.value.type, throttled.value.code) == (429, "RATE_LIMIT", "VEHICLE")
    assert throttled.value.resolution["type"] == "RETRY_LATER"
    assert 29 <= int(throttled.value.retry_after) <= 30
