"""The billable vehicle endpoints: reads (body, SC-* headers, scope) and actions (body parsing, scope)."""

from datetime import datetime

import pytest

from tests.vehicles.api_helpers import RECORDED_ISO, assert_envelope, make_grant, make_token, request
from vehicles.scopes import PERMISSIONS

pytestmark = pytest.mark.django_db

ACTION_REPLY = {"status": "success", "message": "Successfully sent request to vehicle"}

# (path below /vehicles/{id}, scope, provider method, unit-bearing)
READS = [
    ("/", "read_vehicle_info", "attributes", False),
    ("/vin", "read_vin", "vin", False),
    ("/odometer", "read_odometer", "odometer", True),
    ("/location", "read_location", "location", False),
    ("/security", "read_security", "lock_status", False),
    ("/fuel", "read_fuel", "fuel", True),
    ("/battery", "read_battery", "battery", True),
    ("/battery/capacity", "read_battery", "battery_capacity", False),
    ("/charge", "read_charge", "charge", False),
    ("/charge/limit", "read_charge", "charge_limit", False),
    ("/tires/pressure", "read_tires", "tire_pressure", True),
    ("/engine/oil", "read_engine_oil", "engine_oil", False),
]

DESTINATION = {"latitude": 37.4, "longitude": -122.1}
# (path, scope, body, provider method, provider args)
ACTIONS = [
    ("/security", "control_security", {"action": "LOCK"}, "lock", ()),
    ("/security", "control_security", {"action": "UNLOCK"}, "unlock", ()),
    ("/charge", "control_charge", {"action": "START"}, "start_charge", ()),
    ("/charge", "control_charge", {"action": "STOP"}, "stop_charge", ()),
    ("/charge/limit", "control_charge", {"limit": 0.9}, "set_charge_limit", (0.9,)),
    ("/charge/limit", "control_charge", {"limit": "0.75"}, "set_charge_limit", (0.75,)),
    ("/charge/limit", "control_charge", {"limit": 1}, "set_charge_limit", (1.0,)),
    ("/charge/limit", "control_charge", {"limit": 0.5}, "set_charge_limit", (0.5,)),
    ("/navigation/destination", "control_navigation", DESTINATION, "send_destination", (37.4, -122.1)),
]  # fmt: skip


def _token_without(api, scope):
    return make_token(
        make_grant(api.application, api.owner, [api.vehicle], scopes=[s for s in PERMISSIONS if s != scope])
    )


def _token_with_only(api, scope):
    return make_token(make_grant(api.application, api.owner, [api.vehicle], scopes=[scope]))


@pytest.mark.parametrize(("path", "scope", "method", "units"), READS)
def test_each_read_answers_the_providers_data_with_data_age_headers(client, api, path, scope, method, units):
    response = request(client, "GET", api.base + path, token=_token_with_only(api, scope))
    assert response.status_code == 200
    assert api.provider.calls == [(method, api.vehicle.public_id, ())]
    assert response["SC-Data-Age"] == RECORDED_ISO
    assert datetime.fromisoformat(response["SC-Fetched-At"].replace("Z", "+00:00")) > datetime.fromisoformat(
        RECORDED_ISO.replace("Z", "+00:00")
    )
    assert response.get("SC-Unit-System") == ("metric" if units else None)


@pytest.mark.parametrize(("path", "scope", "method", "units"), READS)
def test_each_read_needs_its_scope(client, api, path, scope, method, units):
    response = request(client, "GET", api.base + path, token=_token_without(api, scope))
    assert assert_envelope(response, "PERMISSION", None, 403)["resolution"] == {"type": "REAUTHENTICATE"}
    assert api.provider.calls == []


@pytest.mark.parametrize(("path", "scope", "body", "method", "args"), ACTIONS)
def test_each_action_calls_the_provider_and_answers_success(client, api, path, scope, body, method, args):
    response = request(client, "POST", api.base + path, token=_token_with_only(api, scope), body=body)
    assert response.status_code == 200
    assert response.json() == ACTION_REPLY
    assert api.provider.calls == [(method, api.vehicle.public_id, args)]
    assert "SC-Data-Age" not in response


@pytest.mark.parametrize(("path", "scope", "body", "method", "args"), ACTIONS)
def test_each_action_needs_its_scope(client, api, path, scope, body, method, args):
    response = request(client, "POST", api.base + path, token=_token_without(api, scope), body=body)
    assert_envelope(response, "PERMISSION", None, 403)
    assert api.provider.calls == []


def test_read_scopes_do_not_grant_actions(client, api):
    token = _token_with_only(api, "read_security")
    response = request(client, "POST", api.base + "/security", token=token, body={"action": "LOCK"})
    assert_envelope(response, "PERMISSION", None, 403)


def test_attributes_body(client, api):
    body = request(client, "GET", api.base + "/", token=api.token).json()
    assert body == {"id": str(api.vehicle.public_id), "make": "TESLA", "model": "Model S", "year": 2021}


def test_metric_bodies_pass_through_unchanged(client, api):
    assert request(client, "GET", api.base + "/odometer", token=api.token).json() == {"distance": 100.0}
    assert request(client, "GET", api.base + "/charge/limit", token=api.token).json() == {"limit": 0.8}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/security", {"action": "lock"}, "action"),
        ("/security", {"action": "OPEN"}, "action"),
        ("/security", {}, "action"),
        ("/charge", {"action": "BEGIN"}, "action"),
        ("/charge", {"action": None}, "action"),
        ("/charge/limit", {"limit": 0.49}, "limit"),
        ("/charge/limit", {"limit": 1.01}, "limit"),
        ("/charge/limit", {"limit": "eighty"}, "limit"),
        ("/charge/limit", {"limit": True}, "limit"),
        ("/charge/limit", {"limit": "NaN"}, "limit"),
        ("/charge/limit", {}, "limit"),
        ("/navigation/destination", {"latitude": 91, "longitude": 0}, "latitude"),
        ("/navigation/destination", {"latitude": 0, "longitude": -181}, "longitude"),
        ("/navigation/destination", {"latitude": 0}, "longitude"),
    ],
)
def test_bad_action_parameters_are_validation_errors_with_detail(client, api, path, body, field):
    response = request(client, "POST", api.base + path, token=api.token, body=body)
    envelope = assert_envelope(response, "VALIDATION", "PARAMETER", 400)
    assert envelope["detail"][0]["field"] == field
    assert envelope["detail"][0]["message"]
    assert api.provider.calls == []


@pytest.mark.parametrize("raw", ["", "{", "not json", "[1, 2]", '"LOCK"', "\xff"])
def test_a_body_that_is_not_a_json_object_is_a_validation_error(client, api, raw):
    response = request(client, "POST", api.base + "/security", token=api.token, raw_body=raw)
    envelope = assert_envelope(response, "VALIDATION", None, 400)
    assert envelope["detail"] == [{"field": "body", "message": "The request body must be a JSON object."}]


def test_an_action_on_an_unconnected_vehicle_answers_permission(client, api):
    api.grant.connections.filter(vehicle=api.vehicle).delete()
    response = request(client, "POST", api.base + "/security", token=api.token, body={"action": "LOCK"})
    assert_envelope(response, "PERMISSION", None, 403)


def test_an_action_result_with_extra_fields_is_passed_on(client, api, monkeypatch):
    from vehicles.providers.base import ActionResult

    monkeypatch.setattr(api.provider, "lock", lambda vehicle: ActionResult(extra={"note": "queued"}))
    response = request(client, "POST", api.base + "/security", token=api.token, body={"action": "LOCK"})
    assert response.json() == {**ACTION_REPLY, "note": "queued"}
