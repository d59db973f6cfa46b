"""POST /vehicles/{id}/batch: several GETs in one request, each answered, scoped and metered on its own."""

import uuid

import pytest

from tests.vehicles.api_helpers import (
    RECORDED_ISO,
    assert_envelope,
    make_grant,
    make_owner,
    make_token,
    make_vehicle,
    request,
)
from vehicles.providers.base import VehicleError

pytestmark = pytest.mark.django_db


def _batch(client, api, paths, token=None, **headers):
    body = {"requests": [{"path": path} for path in paths]}
    return request(client, "POST", api.base + "/batch", token=token or api.token, body=body, headers=headers)


def test_batch_answers_each_path_with_code_headers_and_body(client, api):
    response = _batch(client, api, ["/odometer", "/location"])
    assert response.status_code == 200
    first, second = response.json()["responses"]
    assert (first["path"], first["code"], first["body"]) == ("/odometer", 200, {"distance": 100.0})
    assert first["headers"]["sc-data-age"] == RECORDED_ISO
    assert first["headers"]["sc-unit-system"] == "metric"
    assert set(first["headers"]) == {"sc-data-age", "sc-fetched-at", "sc-unit-system", "sc-request-id"}
    assert (second["path"], second["code"]) == ("/location", 200)
    assert second["body"] == {"latitude": 37.4292, "longitude": -122.1381}
    assert "sc-unit-system" not in second["headers"]
    uuid.UUID(response["SC-Request-Id"])


def test_batch_echoes_paths_with_a_leading_slash(client, api):
    paths = ["tires/pressure", "/engine/oil/", "vin", "/", "", "/charge/limit"]
    responses = _batch(client, api, paths).json()["responses"]
    assert [item["path"] for item in responses] == ["/tires/pressure", "/engine/oil", "/vin", "/", "/", "/charge/limit"]
    assert all(item["code"] == 200 for item in responses)
    assert responses[3]["body"]["id"] == str(api.vehicle.public_id)


def test_batch_covers_every_read(client, api):
    paths = ["/", "/vin", "/odometer", "/location", "/security", "/fuel", "/battery", "/battery/capacity", "/charge",
             "/charge/limit", "/tires/pressure", "/engine/oil"]  # fmt: skip
    responses = _batch(client, api, paths).json()["responses"]
    assert [item["code"] for item in responses] == [200] * len(paths)
    assert len(api.provider.calls) == len(paths)


def test_batch_converts_units(client, api):
    responses = _batch(client, api, ["/odometer", "/tires/pressure"], **{"sc-unit-system": "imperial"}).json()
    odometer, tires = responses["responses"]
    assert odometer["body"] == {"distance": 62.14}
    assert odometer["headers"]["sc-unit-system"] == "imperial"
    assert tires["body"]["frontLeft"] == 35.0


def test_a_sub_request_without_its_scope_fails_alone(client, api):
    token = make_token(make_grant(api.application, api.owner, [api.vehicle], scopes=["read_odometer"]))
    odometer, location = _batch(client, api, ["/odometer", "/location"], token=token).json()["responses"]
    assert odometer["code"] == 200
    assert location["code"] == 403
    assert location["headers"]["content-type"] == "application/json"
    body = location["body"]
    assert (body["type"], body["code"], body["statusCode"]) == ("PERMISSION", None, 403)
    assert body["resolution"] == {"type": "REAUTHENTICATE"}
    assert body["requestId"] == location["headers"]["sc-request-id"]


def test_a_provider_error_in_one_sub_request_is_its_envelope(client, api):
    api.provider.failures["fuel"] = VehicleError("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")
    fuel, battery = _batch(client, api, ["/fuel", "/battery"]).json()["responses"]
    assert fuel["code"] == 501
    assert fuel["body"]["type"] == "COMPATIBILITY"
    assert fuel["body"]["code"] == "VEHICLE_NOT_CAPABLE"
    assert set(fuel["body"]) >= {"description", "docURL", "statusCode", "requestId", "resolution"}
    assert battery["code"] == 200


def test_an_unexpected_error_in_one_sub_request_is_server_internal(client, api):
    api.provider.failures["vin"] = RuntimeError("boom")
    vin, odometer = _batch(client, api, ["/vin", "/odometer"]).json()["responses"]
    assert (vin["code"], vin["body"]["type"], vin["body"]["code"]) == (500, "SERVER", "INTERNAL")
    assert odometer["code"] == 200


@pytest.mark.parametrize("path", ["/nope", "/batch", "/permissions", "/application", "/navigation/destination"])
def test_paths_that_are_not_gets_of_vehicle_data_are_not_found(client, api, path):
    (item,) = _batch(client, api, [path]).json()["responses"]
    assert item["code"] == 404
    assert (item["body"]["type"], item["body"]["code"]) == ("RESOURCE_NOT_FOUND", "PATH")


def test_sub_requests_have_their_own_request_ids(client, api):
    response = _batch(client, api, ["/vin", "/vin", "/nope"])
    ids = [item["headers"]["sc-request-id"] for item in response.json()["responses"]]
    assert len(set(ids + [response["SC-Request-Id"]])) == 4


def test_an_empty_batch_answers_no_responses(client, api):
    assert _batch(client, api, []).json() == {"responses": []}


@pytest.mark.parametrize(
    "body",
    [{}, {"requests": "/odometer"}, {"requests": [{"path": 1}]}, {"requests": ["/odometer"]}, {"requests": [{}]}],
)
def test_a_malformed_batch_is_a_validation_error(client, api, body):
    response = request(client, "POST", api.base + "/batch", token=api.token, body=body)
    assert assert_envelope(response, "VALIDATION", None, 400)["detail"][0]["field"] == "requests"


def test_a_batch_has_at_most_50_requests(client, api):
    assert _batch(client, api, ["/vin"] * 50).status_code == 200
    assert_envelope(_batch(client, api, ["/vin"] * 51), "VALIDATION", "PARAMETER", 400)


def test_a_batch_for_an_unconnected_vehicle_answers_permission(client, api):
    stranger = make_vehicle(make_owner())
    body = {"requests": [{"path": "/vin"}]}
    response = request(client, "POST", f"/v2.0/vehicles/{stranger.public_id}/batch", token=api.token, body=body)
    assert_envelope(response, "PERMISSION", None, 403)


def test_a_batch_with_a_bad_token_or_id_fails_whole(client, api):
    assert_envelope(_batch(client, api, ["/vin"], token="nope"), "AUTHENTICATION", None, 401)
    body = {"requests": [{"path": "/vin"}]}
    response = request(client, "POST", "/v2.0/vehicles/not-a-uuid/batch", token=api.token, body=body)
    assert_envelope(response, "VALIDATION", None, 400)


def test_each_sub_request_is_metered_once_and_the_envelope_is_not(client, api, metered):
    response = _batch(client, api, ["/odometer", "/location", "/nope"])
    items = response.json()["responses"]
    assert [(call["endpoint"], call["billable"], call["outcome"]) for call in metered] == [
        ("/vehicles/{id}/odometer", True, 200),
        ("/vehicles/{id}/location", True, 200),
        ("unknown", False, 404),
    ]
    assert [call["request_id"] for call in metered] == [item["headers"]["sc-request-id"] for item in items]
    assert {call["vehicle_id"] for call in metered} == {api.vehicle.pk}
    assert {call["team_id"] for call in metered} == {api.team.pk}


def test_a_batch_that_fails_before_its_sub_requests_is_metered_once(client, api, metered):
    request(client, "POST", api.base + "/batch", token=api.token, body={"requests": 3})
    assert [(call["endpoint"], call["billable"], call["outcome"]) for call in metered] == [
        ("/vehicles/{id}/batch", False, 400)
    ]
