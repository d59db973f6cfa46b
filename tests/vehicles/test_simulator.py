"""The Simulator's services: owner logins, vehicles by model or VIN, and Connect's test-mode sign-in."""

import functools
from datetime import UTC, datetime

import pytest
from django.contrib.auth.hashers import check_password

from tests.factories import ApplicationFactory, TeamFactory
from vehicles import catalog, simulator
from vehicles.models import Mode, SimulatedOwner, SimulatedVehicle
from vehicles.providers.base import VehicleError
from vehicles.providers.simulated import SimulatedProvider
from vehicles.simulator import SimulatorError, authenticate_owner, create_owner, create_vehicle, seed_for_vin
from vehicles.vin import generate_vin, is_valid_vin, years_for_code

pytestmark = pytest.mark.django_db

FAILURES = ["VEHICLE_STATE:ASLEEP", "VEHICLE_STATE:IN_MOTION", "VEHICLE_STATE:UNREACHABLE", "UPSTREAM:UNKNOWN_ISSUE"]

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TESLA_VIN = generate_vin(wmi="5YJ", seed="tests", year=2019)


@pytest.fixture
def tesla_owner():
    return SimulatedOwner.objects.create(make="TESLA", email="ada@example.com", password="!")


# --- owners ----------------------------------------------------------------------------------------------------------


def test_it_creates_an_owner_with_a_hashed_password_who_can_sign_in():
    team = TeamFactory()
    owner = create_owner(team=team, make="tesla", email="Ada@Example.com", password="s3cret")
    assert (owner.make, owner.email, owner.mode, owner.team) == ("TESLA", "ada@example.com", Mode.LIVE, team)
    assert owner.password != "s3cret" and check_password("s3cret", owner.password)
    assert authenticate_owner(make="TESLA", email="ada@example.com", password="s3cret", mode="live") == owner


@pytest.mark.parametrize(
    ("make", "email", "password", "mode"),
    [
        ("TESLA", "ada@example.com", "wrong", "live"),
        ("TESLA", "bob@example.com", "s3cret", "live"),
        ("FORD", "ada@example.com", "s3cret", "live"),
        ("TESLA", "ada@example.com", "s3cret", "test"),
    ],
)
def test_sign_in_fails_for_another_password_email_brand_or_mode(make, email, password, mode):
    create_owner(team=None, make="TESLA", email="ada@example.com", password="s3cret")
    assert authenticate_owner(make=make, email=email, password=password, mode=mode) is None


def test_an_email_has_one_login_per_brand_and_mode():
    create_owner(team=None, make="TESLA", email="ada@example.com", password="one")
    with pytest.raises(SimulatorError, match="already has a Tesla login"):
        create_owner(team=None, make="TESLA", email="ADA@example.com", password="two")
    create_owner(team=None, make="FORD", email="ada@example.com", password="three")
    create_owner(team=None, make="TESLA", email="ada@example.com", password="four", mode=Mode.SIMULATED)
    assert SimulatedOwner.objects.count() == 3


@pytest.mark.parametrize(
    ("make", "email", "password", "message"),
    [("DELOREAN", "ada@example.com", "pw", "not a simulated brand"), ("TESLA", "ada", "pw", "not a valid email"),
     ("TESLA", "ada@example.com", "", "needs a password")],
)  # fmt: skip
def test_it_explains_why_it_cannot_create_an_owner(make, email, password, message):
    with pytest.raises(SimulatorError, match=message):
        create_owner(team=None, make=make, email=email, password=password)
    assert not SimulatedOwner.objects.exists()


# --- vehicles --------------------------------------------------------------------------------------------------------


def test_a_vehicle_with_nothing_specified_is_a_plausible_catalog_vehicle(tesla_owner):
    vehicle = create_vehicle(owner=tesla_owner, now=T0)
    spec = catalog.find_model("TESLA", vehicle.model)
    assert spec is not None and spec.first_year <= vehicle.year <= spec.last_year
    assert (vehicle.make, vehicle.engine, vehicle.created_at) == ("TESLA", spec.engine, T0)
    assert is_valid_vin(vehicle.vin) and vehicle.vin.startswith(spec.wmi)
    assert vehicle.year in years_for_code(vehicle.vin[9], latest=2030)
    assert vehicle.seed == seed_for_vin(vehicle.vin)
    assert vehicle.is_plugged_in and not vehicle.is_charging and vehicle.is_locked


def test_two_default_vehicles_get_different_vins(tesla_owner):
    assert create_vehicle(owner=tesla_owner).vin != create_vehicle(owner=tesla_owner).vin


def test_a_vehicle_by_model_and_year(tesla_owner):
    vehicle = create_vehicle(owner=tesla_owner, model="model y", year=2022)
    assert (vehicle.model, vehicle.year, vehicle.engine) == ("Model Y", 2022, "BEV")


def test_a_vehicle_by_engine_picks_a_matching_model():
    owner = SimulatedOwner.objects.create(make="TOYOTA", email="t@example.com", password="!")
    assert {create_vehicle(owner=owner, engine="PHEV").engine for _ in range(5)} == {"PHEV"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "Mustang"}, "no model called Mustang"),
        ({"model": "Model Y", "year": 2015}, "built in 2015"),
        ({"engine": "ICE"}, "No combustion"),
        ({"vin": "NOT-A-VIN"}, "not a valid VIN"),
        ({"vin": "1M8GDM9AXKP042788"[:-1] + "9"}, "not a valid VIN"),
        ({"vin": generate_vin(wmi="1FT", seed=1, year=2020)}, "is a Ford VIN"),
    ],
)
def test_it_explains_why_it_cannot_create_a_vehicle(tesla_owner, kwargs, message):
    with pytest.raises(SimulatorError, match=message):
        create_vehicle(owner=tesla_owner, **kwargs)
    assert not SimulatedVehicle.objects.exists()


def test_a_vehicle_by_vin_takes_its_model_year_from_the_vin(tesla_owner):
    vehicle = create_vehicle(owner=tesla_owner, vin=TESLA_VIN.lower())
    assert (vehicle.vin, vehicle.year) == (TESLA_VIN, 2019)
    assert catalog.find_model("TESLA", vehicle.model).built_in(2019)


def test_the_same_vin_simulates_the_same_vehicle(tesla_owner):
    other_owner = SimulatedOwner.objects.create(make="TESLA", email="bob@example.com", password="!")
    one = create_vehicle(owner=tesla_owner, vin=TESLA_VIN, now=T0)
    two = create_vehicle(owner=other_owner, vin=TESLA_VIN, now=T0)
    assert (one.model, one.year, one.seed) == (two.model, two.year, two.seed)
    provider = SimulatedProvider(now=lambda: T0)
    assert provider.odometer(one) == provider.odometer(two)


def test_a_vin_from_a_maker_outside_the_catalog_is_accepted(tesla_owner):
    assert create_vehicle(owner=tesla_owner, vin="1M8GDM9AXKP042788").vin == "1M8GDM9AXKP042788"


# --- Connect's test mode ---------------------------------------------------------------------------------------------


@pytest.fixture
def sign_in_test_mode(application):
    """Connect's test-mode sign-in, as the `application` fixture."""
    return functools.partial(simulator.test_mode_owner, application=application)


def test_any_email_signs_in_with_one_vehicle_in_test_mode(sign_in_test_mode, application):
    owner = sign_in_test_mode(email="someone@example.com", make="BMW")
    assert (owner.mode, owner.team, owner.application, owner.make) == (Mode.TEST, None, application, "BMW")
    assert owner.vehicles.count() == 1
    assert owner.vehicles.get().make == "BMW"


@pytest.mark.parametrize("count", [1, 3, 50])
def test_n_vehicles_email_yields_n_vehicles(sign_in_test_mode, count, django_assert_max_num_queries):
    # Bulk inserts: a few batches (SQLite allows ~75 rows per INSERT), never one query per vehicle.
    with django_assert_max_num_queries(10):
        owner = sign_in_test_mode(email=f"{count}-vehicles@smartcar.com", make="TESLA")
    vehicles = list(owner.vehicles.all())
    assert len(vehicles) == count
    assert all(is_valid_vin(v.vin) and not v.failure for v in vehicles)
    assert len({v.vin for v in vehicles}) == count


@pytest.mark.parametrize("email", ["0-vehicles@smartcar.com", "51-vehicles@smartcar.com", "999-vehicles@x"])
def test_test_mode_refuses_zero_or_more_than_50_vehicles(sign_in_test_mode, email):
    with pytest.raises(SimulatorError, match="1 to 50 vehicles"):
        sign_in_test_mode(email=email, make="TESLA")
    assert not SimulatedOwner.objects.exists()


def test_the_most_test_vehicles_is_a_setting(sign_in_test_mode, settings):
    settings.CONNECT_TEST_MODE_MAX_VEHICLES = 3
    assert sign_in_test_mode(email="3-vehicles@smartcar.com", make="TESLA").vehicles.count() == 3
    with pytest.raises(SimulatorError, match="1 to 3 vehicles, not 4"):
        sign_in_test_mode(email="4-vehicles@smartcar.com", make="TESLA")


def test_each_application_gets_its_own_test_owner_for_the_same_email(sign_in_test_mode, application, other_team):
    ours = sign_in_test_mode(email="2-vehicles@smartcar.com", make="FORD")
    other_application = ApplicationFactory(team=other_team)
    theirs = simulator.test_mode_owner(application=other_application, email="2-vehicles@smartcar.com", make="FORD")

    assert ours != theirs and (ours.application, theirs.application) == (application, other_application)
    assert not set(ours.vehicles.values_list("pk", flat=True)) & set(theirs.vehicles.values_list("pk", flat=True))
    assert sign_in_test_mode(email="2-vehicles@smartcar.com", make="FORD") == ours


def test_only_a_new_test_owner_asks_may_create(sign_in_test_mode):
    asked = []

    def refuse():
        asked.append(True)
        return False

    assert sign_in_test_mode(email="new@example.com", make="KIA", may_create=refuse) is None
    assert not SimulatedOwner.objects.exists() and asked == [True]
    owner = sign_in_test_mode(email="new@example.com", make="KIA")
    assert sign_in_test_mode(email="new@example.com", make="KIA", may_create=refuse) == owner
    assert asked == [True]


def test_signing_in_again_gives_the_same_owner_and_vehicles(sign_in_test_mode):
    first = sign_in_test_mode(email="3-vehicles@smartcar.com", make="FORD")
    vehicles = list(first.vehicles.values_list("public_id", flat=True).order_by("id"))
    again = sign_in_test_mode(email="3-Vehicles@SmartCar.com", make="ford")
    assert again == first
    assert list(again.vehicles.values_list("public_id", flat=True).order_by("id")) == vehicles
    assert SimulatedVehicle.objects.count() == 3


def test_test_mode_vehicles_are_the_same_every_time_they_are_created(sign_in_test_mode):
    def fleet():
        owner = sign_in_test_mode(email="2-vehicles@smartcar.com", make="HYUNDAI")
        return [(v.model, v.year, v.vin, v.engine) for v in owner.vehicles.order_by("id")]

    first = fleet()
    SimulatedOwner.objects.all().delete()
    assert fleet() == first


def test_test_mode_is_separate_from_live_logins(sign_in_test_mode):
    live = create_owner(team=None, make="TESLA", email="ada@example.com", password="s3cret")
    test = sign_in_test_mode(email="ada@example.com", make="TESLA")
    assert test != live and test.mode == Mode.TEST
    assert live.vehicles.count() == 0
    assert authenticate_owner(make="TESLA", email="ada@example.com", password="anything", mode="test") is None


@pytest.mark.parametrize("failure", FAILURES)
def test_an_error_email_yields_one_vehicle_that_fails_with_that_error(sign_in_test_mode, failure):
    owner = sign_in_test_mode(email=failure.replace(":", ".") + "@smartcar.com", make="TESLA")
    vehicle = owner.vehicles.get()
    assert vehicle.failure == failure
    with pytest.raises(VehicleError) as caught:
        SimulatedProvider().odometer(vehicle)
    assert f"{caught.value.type}:{caught.value.code}" == failure


def test_an_ordinary_dotted_email_is_not_an_error_email(sign_in_test_mode):
    assert sign_in_test_mode(email="jane.doe@example.com", make="TESLA").vehicles.get().failure == ""


def test_test_mode_needs_an_email_and_a_simulated_brand(sign_in_test_mode):
    with pytest.raises(SimulatorError):
        sign_in_test_mode(email="no-at-sign", make="TESLA")
    with pytest.raises(SimulatorError):
        sign_in_test_mode(email="a@b.c", make="DELOREAN")
