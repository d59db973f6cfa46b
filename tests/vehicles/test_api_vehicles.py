"""GET /vehicles, GET /user, GET /vehicles/{id}/permissions, DELETE /vehicles/{id}/application."""

import pytest
from django.utils import timezone

from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import (
    assert_envelope,
    make_grant,
    make_owner,
    make_token,
    make_vehicle,
    request,
)
from vehicles.models import Connection
from vehicles.scopes import PERMISSIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(api):
    """The api grant with 25 connected vehicles, oldest first."""
    vehicles = [api.vehicle, api.second] + [make_vehicle(api.owner) for _ in range(23)]
    for vehicle in vehicles[2:]:
        Connection.objects.create(grant=api.grant, application=api.application, vehicle=vehicle)
    return [str(v.public_id) for v in vehicles]


def test_vehicles_lists_the_grants_vehicles_ten_at_a_time(client, api, fleet):
    body = request(client, "GET", "/v2.0/vehicles", token=api.token).json()
    assert body == {"paging": {"count": 25, "offset": 0}, "vehicles": fleet[:10]}


def test_vehicles_pages_with_limit_and_offset(client, api, fleet):
    body = request(client, "GET", "/v2.0/vehicles?limit=5&offset=20", token=api.token).json()
    assert body == {"paging": {"count": 25, "offset": 20}, "vehicles": fleet[20:]}
    body = request(client, "GET", "/v2.0/vehicles?limit=50", token=api.token).json()
    assert body == {"paging": {"count": 25, "offset": 0}, "vehicles": fleet}


def test_vehicles_beyond_the_end_is_an_empty_page_with_the_total(client, api, fleet):
    body = request(client, "GET", "/v2.0/vehicles?offset=100", token=api.token).json()
    assert body == {"paging": {"count": 25, "offset": 100}, "vehicles": []}


def test_vehicles_count_is_the_total_when_the_page_is_full(client, api, fleet):
    body = request(client, "GET", "/v2.0/vehicles?limit=10&offset=10", token=api.token).json()
    assert body["paging"] == {"count": 25, "offset": 10}
    assert body["vehicles"] == fleet[10:20]


@pytest.mark.parametrize("query", ["limit=51", "limit=0", "limit=ten", "offset=-1", "offset=x"])
def test_vehicles_rejects_bad_paging(client, api, query):
    body = assert_envelope(
        request(client, "GET", f"/v2.0/vehicles?{query}", token=api.token), "VALIDATION", "PARAMETER", 400
    )
    assert body["detail"][0]["field"] == query.split("=")[0]


def test_vehicles_leaves_out_revoked_connections_and_other_grants(client, api):
    api.grant.connections.filter(vehicle=api.second).update(revoked_at=timezone.now())
    make_grant(api.application, api.owner, [make_vehicle(api.owner)])
    make_grant(api.application, make_owner(), [make_vehicle(make_owner())])
    body = request(client, "GET", "/v2.0/vehicles", token=api.token).json()
    assert body == {"paging": {"count": 1, "offset": 0}, "vehicles": [str(api.vehicle.public_id)]}


def test_vehicles_needs_no_scope(client, api):
    token = make_token(make_grant(api.application, api.owner, [api.vehicle], scopes=[]))
    assert request(client, "GET", "/v2.0/vehicles/", token=token).json()["vehicles"] == [str(api.vehicle.public_id)]


def test_user_is_the_owners_public_id(client, api):
    response = request(client, "GET", "/v2.0/user", token=api.token)
    assert response.json() == {"id": str(api.owner.public_id)}


def test_permissions_lists_the_granted_scopes_without_prefixes(client, api):
    body = request(client, "GET", api.base + "/permissions", token=api.token).json()
    assert body == {"permissions": list(PERMISSIONS), "paging": {"count": 13, "offset": 0}}


def test_permissions_defaults_to_25_and_pages(client, api):
    body = request(client, "GET", api.base + "/permissions?limit=5&offset=10", token=api.token).json()
    assert body == {"permissions": list(PERMISSIONS)[10:], "paging": {"count": 13, "offset": 10}}


def test_permissions_reflect_the_grant(client, api):
    token = make_token(make_grant(api.application, api.owner, [api.vehicle], scopes=["read_odometer", "read_vin"]))
    body = request(client, "GET", api.base + "/permissions/", token=token).json()
    # In the catalog's order, whatever order Connect stored them in.
    assert body == {"permissions": ["read_vin", "read_odometer"], "paging": {"count": 2, "offset": 0}}


def test_permissions_of_an_unconnected_vehicle_answer_permission(client, api):
    stranger = make_vehicle(make_owner())
    path = f"/v2.0/vehicles/{stranger.public_id}/permissions"
    assert_envelope(request(client, "GET", path, token=api.token), "PERMISSION", None, 403)


def test_permissions_reject_bad_paging(client, api):
    assert_envelope(
        request(client, "GET", api.base + "/permissions?limit=-3", token=api.token), "VALIDATION", "PARAMETER", 400
    )


def test_disconnect_revokes_the_connection_and_the_token_stops_working_for_it(client, api):
    response = request(client, "DELETE", api.base + "/application", token=api.token)
    assert response.json() == {"status": "success"}
    connection = Connection.objects.get(grant=api.grant, vehicle=api.vehicle)
    assert connection.revoked_at is not None
    assert_envelope(request(client, "GET", api.base + "/odometer", token=api.token), "PERMISSION", None, 403)
    assert_envelope(request(client, "DELETE", api.base + "/application", token=api.token), "PERMISSION", None, 403)
    # The token still reaches the grant's other vehicle.
    assert request(client, "GET", "/v2.0/vehicles", token=api.token).json()["vehicles"] == [str(api.second.public_id)]
    second = f"/v2.0/vehicles/{api.second.public_id}/odometer"
    assert request(client, "GET", second, token=api.token).status_code == 200


def test_disconnect_revokes_the_applications_other_grants_of_that_vehicle_only(client, api):
    again = make_grant(api.application, api.owner, [api.vehicle])
    other_app_grant = make_grant(ApplicationFactory(team=api.team), api.owner, [api.vehicle])
    request(client, "DELETE", api.base + "/application", token=api.token)
    assert again.connections.get().revoked_at is not None
    assert other_app_grant.connections.get().revoked_at is None
    assert request(client, "GET", api.base + "/vin", token=make_token(other_app_grant)).status_code == 200


def test_disconnect_needs_no_scope(client, api):
    token = make_token(make_grant(api.application, api.owner, [api.vehicle], scopes=[]))
    assert request(client, "DELETE", api.base + "/application", token=token).json() == {"status": "success"}


def test_disconnect_rejects_a_malformed_vehicle_id(client, api):
    response = request(client, "DELETE", "/v2.0/vehicles/123/application", token=api.token)
    assert_envelope(response, "VALIDATION", None, 400)
