"""The dashboard's Vehicles tab: connected vehicles with disconnect, and the Simulator."""

from django.contrib.auth.hashers import check_password
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.roles import Role
from tests.conftest import login_as
from tests.factories import ApplicationFactory
from vehicles.models import Connection, Grant, SimulatedOwner, SimulatedVehicle


def connected_vehicle(application, *, vin="1FTFW1E50NFA00001"):
    owner = SimulatedOwner.objects.create(make="FORD", email=f"{vin}@ford.example", password="!")
    vehicle = SimulatedVehicle.objects.create(
        owner=owner, make="FORD", model="F-150", year=2022, vin=vin, engine="ICE", seed=1, created_at=timezone.now()
    )
    grant = Grant.objects.create(application=application, owner=owner, scopes=["read_odometer", "read_vin"])
    return Connection.objects.create(grant=grant, application=application, vehicle=vehicle)


def test_it_lists_the_teams_connected_vehicles_with_a_masked_vin(owner_client, team):
    application = ApplicationFactory(team=team, name="Fleet Tracker")
    connected_vehicle(application)
    html = owner_client.get(reverse("vehicle_list")).content.decode()
    assert "2022 Ford F-150" in html
    assert "Fleet Tracker" in html
    assert "1FTFW1E50NFA00001" not in html
    assert "0001" in html
    assert "read_odometer" in html and "2 permissions" in html


def test_it_shows_an_empty_state_without_connections(owner_client):
    html = owner_client.get(reverse("vehicle_list")).content.decode()
    assert "No vehicles are connected to your applications yet" in html


def test_disconnecting_revokes_the_connection_and_is_audited(owner_client, team):
    connection = connected_vehicle(ApplicationFactory(team=team))
    response = owner_client.post(reverse("vehicle_disconnect", args=[connection.pk]))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.revoked_at is not None
    assert AuditEvent.objects.filter(team=team, action="vehicle.disconnected").count() == 1
    assert "F-150" not in owner_client.get(reverse("vehicle_list")).content.decode().split("Simulator")[0]


def test_a_viewer_cannot_disconnect(client, team, make_member):
    connection = connected_vehicle(ApplicationFactory(team=team))
    login_as(client, make_member(Role.VIEWER))
    assert client.post(reverse("vehicle_disconnect", args=[connection.pk])).status_code == 403
    connection.refresh_from_db()
    assert connection.revoked_at is None


def test_an_editor_can_disconnect_only_from_assigned_applications(client, team, make_member):
    editor = make_member(Role.EDITOR)
    assigned, other = ApplicationFactory(team=team), ApplicationFactory(team=team)
    assigned.editors.add(editor.user)
    mine = connected_vehicle(assigned, vin="1FTFW1E50NFA00002")
    theirs = connected_vehicle(other, vin="1FTFW1E50NFA00003")
    login_as(client, editor)
    assert client.post(reverse("vehicle_disconnect", args=[theirs.pk])).status_code == 403
    assert client.post(reverse("vehicle_disconnect", args=[mine.pk])).status_code == 302


def test_the_simulator_creates_a_vehicle_and_shows_a_new_owner_login_once(owner_client, team):
    response = owner_client.post(reverse("simulated_vehicle_create"), {"make": "TESLA", "model": "", "year": ""})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    owner = SimulatedOwner.objects.get(team=team)
    html = response.content.decode()
    password = html.split('id="owner-password">')[1].split("<")[0]
    assert check_password(password, owner.password)
    assert owner.email in html and owner.make == "TESLA"
    assert owner.vehicles.count() == 1
    assert password not in owner_client.get(reverse("vehicle_list")).content.decode()
    assert AuditEvent.objects.filter(team=team, action="simulator.vehicle_created").exists()


def test_the_simulator_adds_vehicles_to_an_existing_owner_of_the_same_brand(owner_client, team):
    owner_client.post(reverse("simulated_vehicle_create"), {"make": "TESLA"})
    owner = SimulatedOwner.objects.get(team=team)
    response = owner_client.post(reverse("simulated_vehicle_create"), {"make": "TESLA", "owner": owner.pk})
    assert response.status_code == 302
    assert owner.vehicles.count() == 2
    assert SimulatedOwner.objects.filter(team=team).count() == 1


def test_the_simulator_refuses_an_invalid_vin_with_a_form_error(owner_client, team):
    response = owner_client.post(reverse("simulated_vehicle_create"), {"make": "FORD", "vin": "NOT-A-VIN"})
    assert response.status_code == 400
    assert SimulatedVehicle.objects.count() == 0
    assert SimulatedOwner.objects.filter(team=team).count() == 0  # nothing half-created


def test_the_simulator_never_uses_another_teams_owner(owner_client, other_team):
    rival = SimulatedOwner.objects.create(make="TESLA", email="rival@tesla.example", password="!", team=other_team)
    response = owner_client.post(reverse("simulated_vehicle_create"), {"make": "TESLA", "owner": rival.pk})
    assert response.status_code == 400
    assert rival.vehicles.count() == 0
