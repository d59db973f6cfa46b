"""The management API: GET and DELETE /v2.0/management/connections, Basic auth with the management token."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.applications import set_management_token
from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import assert_envelope, make_grant, make_owner, make_vehicle, request
from vehicles.models import Connection

pytestmark = pytest.mark.django_db
URL = "/v2.0/management/connections"


def _basic(token, user="default"):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


def _age(connection_qs, minutes):
    connection_qs.update(connected_at=timezone.now() - timedelta(minutes=minutes))


@pytest.fixture
def fleet(api):
    """Five (user, vehicle) connections of the application, newest first in the returned list."""
    owner2 = make_owner()
    extra = make_grant(api.application, owner2, [make_vehicle(owner2), make_vehicle(owner2), make_vehicle(owner2)])
    rows = list(Connection.objects.filter(application=api.application).select_related("vehicle", "grant__owner"))
    for minutes, connection in enumerate(sorted(rows, key=lambda c: c.pk), start=1):
        _age(Connection.objects.filter(pk=connection.pk), 100 - minutes)
    rows.sort(key=lambda c: c.pk, reverse=True)
    assert extra
    return [{"userId": str(c.grant.owner.public_id), "vehicleId": str(c.vehicle.public_id)} for c in rows]


def _pairs(body):
    return [{"userId": c["userId"], "vehicleId": c["vehicleId"]} for c in body["connections"]]


def test_list_answers_the_applications_connections_newest_first(client, api, management, fleet):
    body = request(client, "GET", URL, headers=management).json()
    assert _pairs(body) == fleet
    assert body["paging"] == {"cursor": None}
    assert all(c["connectedAt"].endswith("Z") for c in body["connections"])


def test_list_takes_a_trailing_slash(client, api, management, fleet):
    assert _pairs(request(client, "GET", URL + "/", headers=management).json()) == fleet


def test_list_pages_with_a_cursor(client, api, management, fleet):
    first = request(client, "GET", URL + "?limit=2", headers=management).json()
    assert _pairs(first) == fleet[:2]
    second = request(client, "GET", f"{URL}?limit=2&cursor={first['paging']['cursor']}", headers=management).json()
    assert _pairs(second) == fleet[2:4]
    third = request(client, "GET", f"{URL}?limit=2&cursor={second['paging']['cursor']}", headers=management).json()
    assert _pairs(third) == fleet[4:]
    assert third["paging"] == {"cursor": None}


def test_list_pages_through_ties_in_connection_time(client, api, management, fleet):
    Connection.objects.filter(application=api.application).update(connected_at=timezone.now())
    seen, cursor = [], ""
    for _ in range(5):
        body = request(client, "GET", f"{URL}?limit=2&cursor={cursor}", headers=management).json()
        seen += _pairs(body)
        cursor = body["paging"]["cursor"]
        if cursor is None:
            break
    assert sorted(seen, key=str) == sorted(fleet, key=str)
    assert len(seen) == 5


def test_list_defaults_to_ten_and_caps_at_100(client, api, management):
    for _ in range(11):
        make_grant(api.application, api.owner, [make_vehicle(api.owner)])
    body = request(client, "GET", URL, headers=management).json()
    assert len(body["connections"]) == 10
    assert body["paging"]["cursor"] is not None
    assert len(request(client, "GET", URL + "?limit=100", headers=management).json()["connections"]) == 13
    assert_envelope(request(client, "GET", URL + "?limit=101", headers=management), "VALIDATION", "PARAMETER", 400)


def test_list_filters_by_user_and_vehicle(client, api, management, fleet):
    body = request(client, "GET", f"{URL}?user_id={api.owner.public_id}", headers=management).json()
    assert {c["vehicleId"] for c in body["connections"]} == {str(api.vehicle.public_id), str(api.second.public_id)}
    body = request(client, "GET", f"{URL}?vehicle_id={api.second.public_id}", headers=management).json()
    assert _pairs(body) == [{"userId": str(api.owner.public_id), "vehicleId": str(api.second.public_id)}]


def test_list_shows_a_vehicle_connected_twice_once_with_its_first_connection(client, api, management):
    _age(Connection.objects.filter(grant=api.grant, vehicle=api.vehicle), 60)
    make_grant(api.application, api.owner, [api.vehicle])
    body = request(client, "GET", f"{URL}?vehicle_id={api.vehicle.public_id}", headers=management).json()
    (connection,) = body["connections"]
    first = Connection.objects.filter(grant=api.grant, vehicle=api.vehicle).get().connected_at
    assert connection["connectedAt"] == first.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_list_leaves_out_revoked_connections_and_other_applications(client, api, management):
    api.grant.connections.filter(vehicle=api.second).update(revoked_at=timezone.now())
    other = ApplicationFactory(team=api.team)
    make_grant(other, api.owner, [api.second])
    body = request(client, "GET", URL, headers=management).json()
    assert _pairs(body) == [{"userId": str(api.owner.public_id), "vehicleId": str(api.vehicle.public_id)}]


@pytest.mark.parametrize("query", ["user_id=nope", "vehicle_id=123", "cursor=%%%", "cursor=bm9wZQ", "limit=0"])
def test_list_rejects_bad_parameters(client, api, management, query):
    response = request(client, "GET", f"{URL}?{query}", headers=management)
    assert assert_envelope(response, "VALIDATION", response.json()["code"], 400)["detail"]


def test_delete_by_vehicle_revokes_that_vehicles_connections(client, api, management):
    make_grant(api.application, api.owner, [api.vehicle])
    response = request(client, "DELETE", f"{URL}?vehicle_id={api.vehicle.public_id}", headers=management)
    assert response.json() == {
        "connections": [{"userId": str(api.owner.public_id), "vehicleId": str(api.vehicle.public_id)}]
    }
    assert not Connection.objects.filter(vehicle=api.vehicle, revoked_at__isnull=True).exists()
    assert Connection.objects.get(vehicle=api.second).revoked_at is None
    assert_envelope(request(client, "GET", api.base + "/vin", token=api.token), "PERMISSION", None, 403)


def test_delete_by_user_revokes_all_their_vehicles(client, api, management, fleet):
    response = request(client, "DELETE", f"{URL}/?user_id={api.owner.public_id}", headers=management)
    assert {c["vehicleId"] for c in response.json()["connections"]} == {
        str(api.vehicle.public_id),
        str(api.second.public_id),
    }
    assert all(set(c) == {"userId", "vehicleId"} for c in response.json()["connections"])
    assert Connection.objects.filter(application=api.application, revoked_at__isnull=True).count() == 3


def test_delete_only_touches_the_tokens_application(client, api, management):
    other = ApplicationFactory(team=api.team)
    kept = make_grant(other, api.owner, [api.vehicle])
    request(client, "DELETE", f"{URL}?vehicle_id={api.vehicle.public_id}", headers=management)
    assert kept.connections.get().revoked_at is None


def test_delete_with_nothing_to_delete_answers_an_empty_list(client, api, management):
    response = request(client, "DELETE", f"{URL}?vehicle_id={make_vehicle(make_owner()).public_id}", headers=management)
    assert response.json() == {"connections": []}


@pytest.mark.parametrize("query", ["", "?vehicle_id={v}&user_id={u}", "?vehicle_id=nope"])
def test_delete_needs_exactly_one_valid_filter(client, api, management, query):
    query = query.format(v=api.vehicle.public_id, u=api.owner.public_id)
    assert_envelope(request(client, "DELETE", URL + query, headers=management), "VALIDATION", None, 400)
    assert not Connection.objects.filter(revoked_at__isnull=False).exists()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        _basic("wrong-token"),
        _basic(""),
    ],
)
def test_management_answers_401_without_a_valid_token(client, api, headers):
    set_management_token(api.application)
    assert_envelope(request(client, "GET", URL, headers=headers), "AUTHENTICATION", None, 401)
    assert_envelope(request(client, "DELETE", URL + "?user_id=x", headers=headers), "AUTHENTICATION", None, 401)


def test_a_bearer_access_token_is_not_a_management_token(client, api):
    assert_envelope(request(client, "GET", URL, token=api.token), "AUTHENTICATION", None, 401)


def test_a_rotated_management_token_stops_working(client, api):
    old = set_management_token(api.application)
    set_management_token(api.application)
    assert_envelope(request(client, "GET", URL, headers=_basic(old)), "AUTHENTICATION", None, 401)


def test_another_applications_token_sees_only_its_own(client, api, management):
    other = ApplicationFactory(team=api.team)
    response = request(client, "GET", URL, headers=_basic(set_management_token(other)))
    assert response.json() == {"connections": [], "paging": {"cursor": None}}


def test_management_rejects_other_methods(client, api, management):
    assert_envelope(request(client, "POST", URL, headers=management), "RESOURCE_NOT_FOUND", "PATH", 404)


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00"])
def test_a_cursor_with_an_impossible_date_is_a_validation_error(client, api, management, stamp):
    import uuid

    cursor = base64.urlsafe_b64encode(f"{stamp}|{uuid.uuid4()}".encode()).decode()
    response = request(client, "GET", f"{URL}?cursor={cursor}", headers=management)
    assert assert_envelope(response, "VALIDATION", "PARAMETER", 400)["detail"][0]["field"] == "cursor"
