"""Connect's test mode: at most 50 vehicles, rate-limited new accounts, owners per application, the purge."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts.applications import issue_client_secret
from accounts.models import RedirectURI
from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import assert_envelope, make_owner, make_vehicle
from tests.vehicles.api_helpers import request as api_request
from tests.vehicles.connect_helpers import CALLBACK, basic, connect, sign_in
from vehicles import simulator
from vehicles.models import AccessToken, Connection, Grant, Mode, SimulatedOwner, SimulatedVehicle
from vehicles.tasks import purge_unused_test_owners

T0 = "2026-03-01T12:00:00Z"
SECURITY = "read_vehicle_info read_security control_security"


def sign_in_test_mode(client, application, email):
    return sign_in(client, application, mode=Mode.TEST, email=email, password="anything")


def connect_test_mode(client, application, email, scope=SECURITY) -> dict:
    """Connect in test mode, exchange the code; the token response and the first vehicle's API path."""
    code = connect(client, application, mode=Mode.TEST, email=email, password="anything", scope=scope)["code"]
    tokens = client.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": code},
        headers={"Authorization": basic(application)},
    ).json()
    vehicles = api_request(client, "GET", "/v2.0/vehicles", token=tokens["access_token"]).json()["vehicles"]
    return {**tokens, "vehicle": f"/v2.0/vehicles/{vehicles[0]}"}


@pytest.fixture
def rival_application(other_team):
    """Another team's application, with the same redirect URI as ours."""
    application = ApplicationFactory(team=other_team, name="Rival Fleet")
    RedirectURI.objects.create(application=application, uri=CALLBACK, is_default=True)
    application.secret = issue_client_secret(application)
    return application


# --- how many vehicles ---------------------------------------------------------------------------------------------


def test_asking_for_more_vehicles_than_the_maximum_is_an_error_on_the_sign_in_page(client, application):
    response = sign_in_test_mode(client, application, "999-vehicles@example.com")

    assert response.status_code == 200
    assert "Test mode signs in with 1 to 50 vehicles, not 999." in response.content.decode()
    assert not SimulatedVehicle.objects.exists()
    assert b"at most 50" in response.content  # the page says so up front


def test_the_maximum_number_of_vehicles_signs_in(client, application):
    assert sign_in_test_mode(client, application, "50-vehicles@example.com").status_code == 302  # to consent
    assert SimulatedVehicle.objects.count() == 50


# --- rate limit ----------------------------------------------------------------------------------------------------


def test_new_test_accounts_are_rate_limited_per_application(client, application, rival_application, time_machine):
    time_machine.move_to(T0, tick=False)
    for n in range(30):
        assert sign_in_test_mode(client, application, f"driver{n}@example.com").status_code == 302

    throttled = sign_in_test_mode(client, application, "driver30@example.com")

    assert throttled.status_code == 429
    assert "Too many new test-mode accounts for this application" in throttled.content.decode()
    assert SimulatedOwner.objects.count() == SimulatedVehicle.objects.count() == 30
    assert sign_in_test_mode(client, application, "driver0@example.com").status_code == 302  # not a new account
    assert sign_in_test_mode(client, rival_application, "driver30@example.com").status_code == 302
    time_machine.shift(timedelta(hours=1))
    assert sign_in_test_mode(client, application, "driver30@example.com").status_code == 302


def test_a_refused_email_spends_nothing_of_the_rate_limit(client, application, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "connect_test_account": "1/h/key"}
    assert sign_in_test_mode(client, application, "0-vehicles@example.com").status_code == 200  # the form's error
    assert sign_in_test_mode(client, application, "ada@example.com").status_code == 302
    assert sign_in_test_mode(client, application, "bob@example.com").status_code == 429


# --- one application's test vehicles are its own ---------------------------------------------------------------------


def test_two_teams_with_the_same_test_email_get_separate_vehicles(client, application, rival_application):
    ours = connect_test_mode(client, application, "ada@example.com")
    theirs = connect_test_mode(client, rival_application, "ada@example.com")
    assert ours["vehicle"] != theirs["vehicle"]

    unlocked = api_request(
        client, "POST", theirs["vehicle"] + "/security", token=theirs["access_token"], body={"action": "UNLOCK"}
    )
    assert unlocked.status_code == 200, unlocked.content

    def is_locked(connected):
        response = api_request(client, "GET", connected["vehicle"] + "/security", token=connected["access_token"])
        return response.json()["isLocked"]

    assert (is_locked(ours), is_locked(theirs)) == (True, False)
    not_ours = api_request(client, "GET", theirs["vehicle"] + "/security", token=ours["access_token"])
    assert_envelope(not_ours, "PERMISSION", None, 403)


# --- the purge -----------------------------------------------------------------------------------------------------


def test_test_owners_unused_for_30_days_are_purged_with_everything_they_had(client, application, time_machine):
    time_machine.move_to(T0, tick=False)
    connected = connect_test_mode(client, application, "2-vehicles@example.com")
    time_machine.shift(timedelta(days=30, seconds=1))

    assert simulator.purge_unused_test_owners() == 1

    assert not SimulatedOwner.objects.exists() and not SimulatedVehicle.objects.exists()
    assert not Grant.objects.exists() and not Connection.objects.exists() and not AccessToken.objects.exists()
    refreshed = client.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": connected["refresh_token"]},
        headers={"Authorization": basic(application)},
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_a_recent_sign_in_or_api_request_keeps_a_test_owner(client, application, time_machine):
    time_machine.move_to(T0, tick=False)
    make_vehicle(make_owner(email="live@example.com"))  # live owners are never purged
    connect_test_mode(client, application, "forgotten@example.com")
    sign_in_test_mode(client, application, "signs-in-again@example.com")
    used = connect_test_mode(client, application, "uses-the-api@example.com")

    time_machine.shift(timedelta(days=20))
    assert sign_in_test_mode(client, application, "signs-in-again@example.com").status_code == 302
    tokens = client.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": used["refresh_token"]},
        headers={"Authorization": basic(application)},
    ).json()
    assert api_request(client, "GET", used["vehicle"] + "/security", token=tokens["access_token"]).status_code == 200
    time_machine.shift(timedelta(days=15))

    assert simulator.purge_unused_test_owners() == 1

    kept = set(SimulatedOwner.objects.values_list("email", flat=True))
    assert kept == {"live@example.com", "signs-in-again@example.com", "uses-the-api@example.com"}


def test_the_retention_is_a_setting(application, settings, time_machine):
    time_machine.move_to(T0, tick=False)
    simulator.test_mode_owner(application=application, email="ada@example.com", make="TESLA")
    settings.CONNECT_TEST_MODE_RETENTION_DAYS = 2
    time_machine.shift(timedelta(days=1))
    assert simulator.purge_unused_test_owners() == 0
    time_machine.shift(timedelta(days=1, seconds=1))
    assert simulator.purge_unused_test_owners() == 1


def test_a_purged_test_account_signs_in_again_to_the_same_vehicles(application, time_machine):
    time_machine.move_to(T0, tick=False)
    first = simulator.test_mode_owner(application=application, email="3-vehicles@example.com", make="FORD")
    vins = list(first.vehicles.order_by("id").values_list("vin", flat=True))
    time_machine.shift(timedelta(days=31))
    simulator.purge_unused_test_owners()

    again = simulator.test_mode_owner(application=application, email="3-vehicles@example.com", make="FORD")

    assert list(again.vehicles.order_by("id").values_list("vin", flat=True)) == vins


def test_beat_runs_the_purge_daily():
    (entry,) = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "vehicles.tasks.purge_unused_test_owners"
    ]
    assert entry["schedule"] == 24 * 3600


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_purges_unused_test_owners(celery_worker, wait_for, application):
    # The worker runs on the real clock: make the owners old rather than moving time.
    old = timezone.now() - timedelta(days=31)
    unused = simulator.test_mode_owner(application=application, email="2-vehicles@example.com", make="KIA")
    fresh = simulator.test_mode_owner(application=application, email="fresh@example.com", make="KIA")
    SimulatedOwner.objects.filter(pk=unused.pk).update(created_at=old, last_signed_in_at=old)

    def runs() -> int:  # the session's worker log: other tests ran this task before
        return celery_worker.log.read_text().count("purge_unused_test_owners")

    before = runs()
    purge_unused_test_owners.apply_async(queue=celery_worker.queue)
    purge_unused_test_owners.apply_async(queue=celery_worker.queue)  # twice: the second finds nothing to do

    assert wait_for(lambda: runs() >= before + 4, timeout=60), celery_worker.log.read_text()[-3000:]
    assert list(SimulatedOwner.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert SimulatedVehicle.objects.filter(owner=unused.pk).count() == 0


# --- test owners made before they belonged to an application ---------------------------------------------------------


def migrate(app_label: str, migration: str):
    """Migrate `app_label` to `migration`; the models as they were then."""
    executor = MigrationExecutor(connection)
    executor.migrate([(app_label, migration)])
    executor.loader.build_graph()
    return executor.loader.project_state((app_label, migration)).apps


@pytest.mark.django_db(transaction=True)
def test_a_shared_test_owner_goes_to_the_first_application_that_connected_it(application, rival_application):
    old = migrate("vehicles", "0004_beat_purge_idempotency_keys")
    Owner, Vehicle, OldGrant, OldConnection = (
        old.get_model("vehicles", name) for name in ("SimulatedOwner", "SimulatedVehicle", "Grant", "Connection")
    )
    shared = Owner.objects.create(make="TESLA", email="ada@example.com", mode="test", password="!")
    never_connected = Owner.objects.create(make="TESLA", email="bob@example.com", mode="test", password="!")
    vehicle = Vehicle.objects.create(
        owner=shared,
        make="TESLA",
        model="Model 3",
        year=2022,
        vin="5YJ3E1EA7NF000001",
        engine="BEV",
        seed=1,
        created_at=timezone.now(),
    )
    for app in (application, rival_application):  # ours connected it first
        grant = OldGrant.objects.create(application_id=app.pk, owner=shared, scopes=["read_security"])
        OldConnection.objects.create(grant=grant, application_id=app.pk, vehicle=vehicle)

    migrate("vehicles", "0005_grant_revocation_and_test_mode_scope")

    assert SimulatedOwner.objects.get(pk=shared.pk).application == application
    assert SimulatedOwner.objects.get(pk=never_connected.pk).application is None
    active = Connection.objects.filter(vehicle_id=vehicle.pk, revoked_at__isnull=True)
    assert list(active.values_list("application_id", flat=True)) == [application.pk]
    assert Connection.objects.filter(application=rival_application, revoked_at__isnull=False).count() == 1
