"""Connect run again for a vehicle already connected to the application updates that connection, as Smartcar keeps
one per vehicle and application: no second row on the Vehicles tab or in the management API, the new permissions
and tokens reach the vehicle, the old tokens no longer do, and the connection keeps its history."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import login_as
from tests.factories import MembershipFactory
from tests.vehicles.api_helpers import request
from tests.vehicles.connect_helpers import basic, connect
from vehicles.models import Connection

pytestmark = pytest.mark.django_db


def exchange(client, application, code) -> str:
    response = client.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://app.example.com/callback"},
        HTTP_AUTHORIZATION=basic(application),
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_connecting_a_vehicle_again_moves_its_connection_to_the_new_authorization(client, application, driver):
    first_car, second_car = driver.test_vehicles
    old_token = exchange(client, application, connect(client, application, scope="read_vehicle_info")["code"])
    (connection,) = Connection.objects.filter(vehicle=first_car, revoked_at__isnull=True)  # and the second car
    Connection.objects.filter(pk=connection.pk).update(
        connected_at=timezone.now() - timedelta(days=3), last_request_at=timezone.now() - timedelta(hours=1)
    )
    connection.refresh_from_db()

    new_token = exchange(
        client, application, connect(client, application, scope="read_vehicle_info read_odometer")["code"]
    )

    live = Connection.objects.filter(application=application, revoked_at__isnull=True)
    assert sorted(live.values_list("vehicle_id", flat=True)) == sorted([first_car.pk, second_car.pk])  # one each
    moved = live.get(vehicle=first_car)
    assert moved.pk == connection.pk and moved.grant_id != connection.grant_id
    assert (moved.connected_at, moved.last_request_at) == (connection.connected_at, connection.last_request_at)
    base = f"/v2.0/vehicles/{first_car.public_id}"
    assert request(client, "GET", base + "/odometer", token=new_token).status_code == 200  # the new permission
    assert request(client, "GET", base, token=old_token).status_code == 403  # the old tokens: not any more
    vehicles = request(client, "GET", "/v2.0/vehicles", token=new_token).json()
    assert vehicles["paging"]["count"] == 2


def test_the_vehicles_tab_shows_the_vehicle_once(client, application, driver, team):
    for _ in range(2):
        exchange(client, application, connect(client, application)["code"])
    owner = MembershipFactory(team=team)
    page = login_as(client, owner).get("/vehicles/")
    assert len(page.context["connections"]) == 2  # two cars, each once
