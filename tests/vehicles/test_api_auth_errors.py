"""Authentication, routing and the error envelope of the v2.0 API."""

import logging
import uuid
from datetime import timedelta

import pytest

from tests.vehicles.api_helpers import (
    assert_envelope,
    make_grant,
    make_owner,
    make_token,
    make_vehicle,
    request,
)
from vehicles.providers.base import VehicleError

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Token x",
        "bearer not-a-token",
        "Bearer 3f1c2b9e-8d4a-4c6e-9b7f-2a5d8e1c0f47",
    ],
)
def test_it_answers_401_for_missing_malformed_or_unknown_tokens(client, api, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    body = assert_envelope(request(client, "GET", api.base + "/odometer", headers=headers), "AUTHENTICATION", None, 401)
    assert body["resolution"] == {"type": None}
    assert body["docURL"].endswith("authentication-errors#null")


def test_it_answers_401_for_an_expired_token(client, api):
    token = make_token(api.grant, expires_in=timedelta(seconds=-1))
    assert_envelope(request(client, "GET", api.base + "/odometer", token=token), "AUTHENTICATION", None, 401)


def test_it_accepts_a_lower_case_bearer_scheme(client, api):
    response = request(client, "GET", api.base + "/odometer", headers={"Authorization": f"bearer {api.token}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2.0/vehicles"),
        ("GET", "/v2.0/user"),
        ("GET", "/v2.0/vehicles/{id}/"),
        ("GET", "/v2.0/vehicles/{id}/permissions"),
        ("DELETE", "/v2.0/vehicles/{id}/application"),
        ("POST", "/v2.0/vehicles/{id}/batch"),
        ("POST", "/v2.0/vehicles/{id}/security"),
    ],
)
def test_every_route_requires_a_token(client, api, method, path):
    path = path.replace("{id}", str(api.vehicle.public_id))
    assert_envelope(request(client, method, path, body={}), "AUTHENTICATION", None, 401)


def test_a_vehicle_id_that_is_not_a_uuid_is_a_validation_error(client, api):
    body = assert_envelope(
        request(client, "GET", "/v2.0/vehicles/bad_id/odometer", token=api.token), "VALIDATION", None, 400
    )
    assert body["resolution"] == {"type": None}
    assert body["detail"] == [{"field": "vehicle_id", "message": "vehicle_id must be a UUID."}]


def test_a_vehicle_of_another_owner_answers_permission(client, api):
    stranger = make_vehicle(make_owner())
    body = assert_envelope(
        request(client, "GET", f"/v2.0/vehicles/{stranger.public_id}/odometer", token=api.token),
        "PERMISSION",
        None,
        403,
    )
    assert body["resolution"] == {"type": "REAUTHENTICATE"}


def test_an_unknown_vehicle_id_answers_like_an_unconnected_one(client, api):
    path = f"/v2.0/vehicles/{uuid.uuid4()}/odometer"
    assert_envelope(request(client, "GET", path, token=api.token), "PERMISSION", None, 403)


def test_a_vehicle_connected_through_another_grant_is_not_reachable(client, api):
    other_grant = make_grant(api.application, api.owner, [make_vehicle(api.owner)])
    other_vehicle = other_grant.connections.get().vehicle
    path = f"/v2.0/vehicles/{other_vehicle.public_id}/odometer"
    assert_envelope(request(client, "GET", path, token=api.token), "PERMISSION", None, 403)


def test_a_revoked_connection_answers_permission(client, api):
    from django.utils import timezone

    api.grant.connections.filter(vehicle=api.vehicle).update(revoked_at=timezone.now())
    assert_envelope(request(client, "GET", api.base + "/odometer", token=api.token), "PERMISSION", None, 403)


def test_a_missing_scope_answers_permission_before_the_vehicle_is_looked_up(client, api):
    grant = make_grant(api.application, api.owner, [], scopes=["read_vin"])
    token = make_token(grant)
    assert_envelope(request(client, "GET", api.base + "/odometer", token=token), "PERMISSION", None, 403)
    assert api.provider.calls == []


@pytest.mark.parametrize(
    "path",
    [
        "/v2.0/",
        "/v2.0",
        "/v2.0/nope",
        "/v2.0/vehicles/{id}/nope",
        "/v2.0/vehicles/{id}/odometer/extra",
        "/v2.0/vehicles/{id}/battery/nominal_capacity",
        "/v2.0/management",
    ],
)
def test_unknown_paths_answer_resource_not_found_path_in_json(client, api, path):
    path = path.replace("{id}", str(api.vehicle.public_id))
    body = assert_envelope(request(client, "GET", path, token=api.token), "RESOURCE_NOT_FOUND", "PATH", 404)
    assert body["docURL"].endswith("resource-not-found-errors#path")


@pytest.mark.parametrize("path", ["/v1.0/vehicles", "/v3.0/vehicles/x/odometer", "/v99999999.99/user", "/v2.1/"])
def test_other_versions_answer_resource_not_found_version(client, api, path):
    assert_envelope(request(client, "GET", path, token=api.token), "RESOURCE_NOT_FOUND", "VERSION", 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/odometer"),
        ("DELETE", "/odometer"),
        ("GET", "/navigation/destination"),
        ("POST", "/battery"),
        ("GET", "/batch"),
        ("GET", "/application"),
        ("POST", "/permissions"),
        ("PUT", "/security"),
    ],
)
def test_a_method_a_route_does_not_serve_answers_path_not_found(client, api, method, path):
    assert_envelope(
        request(client, method, api.base + path, token=api.token, body={}), "RESOURCE_NOT_FOUND", "PATH", 404
    )


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/", None),
        ("GET", "/odometer/", None),
        ("GET", "/charge/limit/", None),
        ("POST", "/security/", {"action": "LOCK"}),
        ("POST", "/batch/", {"requests": [{"path": "/vin"}]}),
        ("DELETE", "/application/", None),
    ],
)
def test_trailing_slashes_are_optional_and_never_redirect(client, api, method, suffix, body):
    response = request(client, method, api.base + suffix, token=api.token, body=body)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/v2.0/vehicles/", "/v2.0/user/", "/v2.0/vehicles", "/v2.0/user"])
def test_top_level_routes_take_either_slash(client, api, path):
    assert request(client, "GET", path, token=api.token).status_code == 200


def test_every_response_carries_a_request_id(client, api):
    ok = request(client, "GET", api.base + "/vin", token=api.token)
    failed = request(client, "GET", api.base + "/vin")
    ids = {ok["SC-Request-Id"], failed["SC-Request-Id"]}
    assert len(ids) == 2
    for request_id in ids:
        assert str(uuid.UUID(request_id)) == request_id


def test_the_flags_query_is_ignored(client, api):
    response = request(client, "GET", api.base + "/odometer?flags=country:DE%20flag:true", token=api.token)
    assert response.status_code == 200


def test_a_provider_error_answers_its_envelope(client, api):
    api.provider.failures["odometer"] = VehicleError("VEHICLE_STATE", "ASLEEP")
    body = assert_envelope(
        request(client, "GET", api.base + "/odometer", token=api.token), "VEHICLE_STATE", "ASLEEP", 409
    )
    assert body["resolution"] == {"type": "RETRY_LATER"}
    assert "SC-Data-Age" not in request(client, "GET", api.base + "/odometer", token=api.token)


def test_a_provider_error_keeps_its_description(client, api):
    api.provider.failures["lock"] = VehicleError("VEHICLE_STATE", "IN_MOTION", "The car is driving.")
    response = request(client, "POST", api.base + "/security", token=api.token, body={"action": "LOCK"})
    assert assert_envelope(response, "VEHICLE_STATE", "IN_MOTION", 409)["description"] == "The car is driving."


def test_a_provider_error_outside_the_table_becomes_server_internal(client, api):
    api.provider.failures["vin"] = VehicleError("MADE_UP", "CODE")
    assert_envelope(request(client, "GET", api.base + "/vin", token=api.token), "SERVER", "INTERNAL", 500)


def test_an_unexpected_exception_answers_server_internal_and_is_logged(client, api, caplog):
    api.provider.failures["location"] = RuntimeError("boom")
    with caplog.at_level(logging.ERROR, logger="vehicles.api"):
        response = request(client, "GET", api.base + "/location", token=api.token)
    body = assert_envelope(response, "SERVER", "INTERNAL", 500)
    assert body["resolution"] == {"type": "RETRY_LATER"}
    assert any(body["requestId"] in record.getMessage() and record.exc_info for record in caplog.records)


def test_a_provider_package_that_fails_to_import_answers_server_internal(client, api, monkeypatch):
    import sys

    from vehicles.api import resources

    monkeypatch.setattr("vehicles.api.views.provider_for", resources.provider_for)
    monkeypatch.setitem(sys.modules, "vehicles.providers", None)  # import now raises ImportError
    assert_envelope(request(client, "GET", api.base + "/odometer", token=api.token), "SERVER", "INTERNAL", 500)


def test_an_exception_in_authentication_is_caught_too(client, api, monkeypatch):
    def broken(token, vehicle_id=None):
        raise RuntimeError("database down")

    monkeypatch.setattr("vehicles.api.auth.lookup", broken)
    assert_envelope(request(client, "GET", "/v2.0/user", token=api.token), "SERVER", "INTERNAL", 500)


def test_success_bodies_are_json_objects(client, api):
    for method, path, body in [
        ("GET", "/v2.0/vehicles", None),
        ("GET", "/v2.0/user", None),
        ("POST", api.base + "/security", {"action": "UNLOCK"}),
        ("DELETE", api.base + "/application", None),
    ]:
        response = request(client, method, path, token=api.token, body=body)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert isinstance(response.json(), dict)


def test_posts_and_deletes_need_no_csrf_token(api):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    assert request(client, "POST", api.base + "/security", token=api.token, body={"action": "LOCK"}).status_code == 200
    assert request(client, "POST", api.base + "/batch", token=api.token, body={"requests": []}).status_code == 200
    assert request(client, "DELETE", api.base + "/application", token=api.token).status_code == 200


def test_a_provider_rate_limit_always_says_when_to_retry(client, api):
    api.provider.failures["odometer"] = VehicleError("RATE_LIMIT", "VEHICLE")
    api.provider.failures["vin"] = VehicleError("RATE_LIMIT", "VEHICLE", retry_after=7)
    assert request(client, "GET", api.base + "/odometer", token=api.token)["Retry-After"] == "60"
    assert request(client, "GET", api.base + "/vin", token=api.token)["Retry-After"] == "7"
    batch = request(client, "POST", api.base + "/batch", token=api.token, body={"requests": [{"path": "/vin"}]})
    assert batch.json()["responses"][0]["headers"]["retry-after"] == "7"


# Found by Schemathesis and by hand: inputs that used to answer 500.
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/charge/limit", '{"limit": 1' + "0" * 400 + "}"),
        ("/navigation/destination", '{"latitude": 1' + "0" * 400 + ', "longitude": 1}'),
        ("/security", "[" * 100_000 + "]" * 100_000),
        ("/batch", '{"requests": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    ],
)
def test_absurd_bodies_are_validation_errors(client, api, path, body):
    response = request(client, "POST", api.base + path, token=api.token, raw_body=body)
    assert_envelope(response, "VALIDATION", response.json()["code"], 400)


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "offset=2147483648", "limit=5&offset=-1"])
def test_out_of_range_paging_is_a_validation_error(client, api, query):
    response = request(client, "GET", f"/v2.0/vehicles?{query}", token=api.token)
    assert assert_envelope(response, "VALIDATION", "PARAMETER", 400)["detail"][0]["field"] == "offset"
