"""The metering hook: what is billable, and that every API request reports exactly once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.vehicles.api_helpers import request
from vehicles.api.metering_hook import classify


@pytest.mark.parametrize(
    ("endpoint", "method", "billable"),
    [
        ("/vehicles", "GET", False),
        ("/user", "GET", False),
        ("/vehicles/{id}/permissions", "GET", False),
        ("/vehicles/{id}/application", "DELETE", False),
        ("/vehicles/{id}/batch", "POST", False),
        ("/management/connections", "GET", False),
        ("/management/connections", "DELETE", False),
        ("unknown", "GET", False),
        ("/vehicles/{id}", "GET", True),
        ("/vehicles/{id}/vin", "GET", True),
        ("/vehicles/{id}/odometer", "GET", True),
        ("/vehicles/{id}/location", "GET", True),
        ("/vehicles/{id}/security", "GET", True),
        ("/vehicles/{id}/security", "POST", True),
        ("/vehicles/{id}/charge/limit", "POST", True),
        ("/vehicles/{id}/navigation/destination", "post", True),
        ("/vehicles/{id}/tires/pressure", "GET", True),
    ],
)
def test_classify_follows_design_section_3(endpoint, method, billable):
    assert classify(endpoint, method) is billable


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body", "endpoint", "billable", "outcome"),
    [
        ("GET", "/v2.0/vehicles", None, "/vehicles", False, 200),
        ("GET", "/v2.0/user/", None, "/user", False, 200),
        ("GET", "{base}/permissions", None, "/vehicles/{id}/permissions", False, 200),
        ("DELETE", "{base}/application", None, "/vehicles/{id}/application", False, 200),
        ("GET", "{base}/", None, "/vehicles/{id}", True, 200),
        ("GET", "{base}/odometer", None, "/vehicles/{id}/odometer", True, 200),
        ("POST", "{base}/security", {"action": "LOCK"}, "/vehicles/{id}/security", True, 200),
        ("POST", "{base}/security", {"action": "NOPE"}, "/vehicles/{id}/security", True, 400),
        ("GET", "/v2.0/nothing", None, "unknown", False, 404),
        ("GET", "/v9.9/vehicles", None, "unknown", False, 404),
    ],
)
def test_every_request_reports_once(client, api, metered, method, path, body, endpoint, billable, outcome):
    response = request(client, method, path.format(base=api.base), token=api.token, body=body)
    assert response.status_code == outcome
    (call,) = metered
    assert (call["endpoint"], call["billable"], call["outcome"]) == (endpoint, billable, outcome)
    assert call["request_id"] == response["SC-Request-Id"]
    if outcome != 404:
        assert (call["team_id"], call["application_id"]) == (api.team.pk, api.application.pk)


@pytest.mark.django_db
def test_a_vehicle_request_reports_the_vehicle(client, api, metered):
    request(client, "GET", api.base + "/vin", token=api.token)
    assert metered[0]["vehicle_id"] == api.vehicle.pk


@pytest.mark.django_db
def test_a_failed_authentication_reports_without_a_team(client, api, metered):
    request(client, "GET", api.base + "/vin", token="nope")
    assert metered == [
        {
            "request_id": metered[0]["request_id"],
            "team_id": None,
            "application_id": None,
            "vehicle_id": None,
            "endpoint": "/vehicles/{id}/vin",
            "billable": True,
            "outcome": 401,
            "counted": False,
        }
    ]


@pytest.mark.django_db
def test_a_provider_failure_reports_its_status(client, api, metered):
    from vehicles.providers.base import VehicleError

    api.provider.failures["odometer"] = VehicleError("VEHICLE_STATE", "ASLEEP")
    request(client, "GET", api.base + "/odometer", token=api.token)
    assert (metered[0]["outcome"], metered[0]["vehicle_id"]) == (409, api.vehicle.pk)


@pytest.mark.django_db
def test_management_requests_report_their_application(client, api, metered, management):
    request(client, "GET", "/v2.0/management/connections", headers=management)
    (call,) = metered
    assert (call["endpoint"], call["billable"], call["application_id"]) == (
        "/management/connections",
        False,
        api.application.pk,
    )


@pytest.mark.django_db
def test_a_failing_metering_hook_does_not_fail_the_request(client, api, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("meter down")

    monkeypatch.setattr("vehicles.api.metering_hook.record_request", broken)
    assert request(client, "GET", api.base + "/vin", token=api.token).status_code == 200
    assert "Metering hook failed" in caplog.text


@pytest.mark.django_db
def test_a_successful_vehicle_request_stamps_the_connection_at_most_once_a_minute(client, api):
    connection = api.grant.connections.get(vehicle=api.vehicle)
    request(client, "GET", api.base + "/vin", token=api.token)
    connection.refresh_from_db()
    first = connection.last_request_at
    assert first is not None
    request(client, "GET", api.base + "/vin", token=api.token)
    connection.refresh_from_db()
    assert connection.last_request_at == first
    api.grant.connections.filter(pk=connection.pk).update(last_request_at=timezone.now() - timedelta(minutes=2))
    request(client, "POST", api.base + "/security", token=api.token, body={"action": "LOCK"})
    connection.refresh_from_db()
    assert connection.last_request_at > first


@pytest.mark.django_db
def test_failed_and_free_requests_do_not_stamp_the_connection(client, api):
    from vehicles.providers.base import VehicleError

    api.provider.failures["vin"] = VehicleError("VEHICLE_STATE", "ASLEEP")
    request(client, "GET", api.base + "/vin", token=api.token)
    request(client, "GET", api.base + "/permissions", token=api.token)
    assert api.grant.connections.get(vehicle=api.vehicle).last_request_at is None


@pytest.mark.django_db
def test_a_batch_with_one_success_stamps_the_connection(client, api):
    request(client, "POST", api.base + "/batch", token=api.token, body={"requests": [{"path": "/vin"}]})
    assert api.grant.connections.get(vehicle=api.vehicle).last_request_at is not None
