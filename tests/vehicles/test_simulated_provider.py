"""The simulated provider: repeatable, plausible readings that move with time, and state that persists."""

import math
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from vehicles import catalog, simulator
from vehicles.models import Engine, SimulatedOwner, SimulatedVehicle
from vehicles.providers import get_provider
from vehicles.providers.base import VehicleError, VehicleProvider
from vehicles.providers.simulated import SimulatedProvider

pytestmark = pytest.mark.django_db

FAILURES = ["VEHICLE_STATE:ASLEEP", "VEHICLE_STATE:IN_MOTION", "VEHICLE_STATE:UNREACHABLE", "UPSTREAM:UNKNOWN_ISSUE"]

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
READS = ("attributes", "vin", "odometer", "location", "lock_status", "tire_pressure")
MODELS = {Engine.BEV: ("TESLA", "Model 3"), Engine.ICE: ("FORD", "F-150"), Engine.PHEV: ("TOYOTA", "RAV4 Prime")}
_emails = iter(range(10_000))


def make_car(engine=Engine.BEV, **kwargs) -> SimulatedVehicle:
    make, model = MODELS[engine]
    # Straight to the ORM: create_owner's password hashing would only slow these tests down.
    owner = SimulatedOwner.objects.create(make=make, email=f"driver{next(_emails)}@example.com", password="!")
    return simulator.create_vehicle(owner=owner, model=model, now=T0, **kwargs)


def at(moment: datetime) -> SimulatedProvider:
    return SimulatedProvider(now=lambda: moment)


def km_between(a: dict, b: dict) -> float:
    north = (a["latitude"] - b["latitude"]) * 111.32
    east = (a["longitude"] - b["longitude"]) * 111.32 * math.cos(math.radians(a["latitude"]))
    return math.hypot(north, east)


def test_get_provider_answers_every_method_of_the_protocol():
    provider = get_provider(object())
    methods = [name for name in vars(VehicleProvider) if not name.startswith("_")]
    assert "send_destination" in methods
    assert all(callable(getattr(provider, name)) for name in methods)


@pytest.mark.parametrize("engine", list(Engine))
def test_the_same_vehicle_and_clock_give_the_same_readings(engine):
    car = make_car(engine)
    later = T0 + timedelta(days=3, hours=5)
    for method in (*READS, "fuel" if engine != Engine.BEV else "battery"):
        first = getattr(at(later), method)(car)
        again = getattr(at(later), method)(SimulatedVehicle.objects.get(pk=car.pk))
        assert first == again, method


def test_different_vehicles_are_somewhere_else_with_other_mileage():
    one, two = make_car(), make_car()
    provider = at(T0 + timedelta(days=1))
    assert provider.odometer(one).data != provider.odometer(two).data
    assert provider.location(one).data != provider.location(two).data


def test_the_odometer_starts_plausibly_and_grows_by_a_plausible_daily_distance():
    car = make_car()
    start = at(T0).odometer(car).data["distance"]
    assert 0 < start < (T0.year - car.year + 1) * 22_000 + 2_500  # the years it has been on the road
    after_ten_days = at(T0 + timedelta(days=10)).odometer(car).data["distance"]
    assert 8_000 / 365 * 9.9 < after_ten_days - start < 22_000 / 365 * 10.1
    assert after_ten_days == round(after_ten_days, 2)


def test_the_odometer_never_goes_backwards():
    car = make_car()
    readings = [at(T0 + timedelta(minutes=7 * step)).odometer(car).data["distance"] for step in range(500)]
    assert readings == sorted(readings)
    assert readings[-1] > readings[0]


def test_the_odometer_grows_with_the_real_clock():
    car = make_car()
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        first = get_provider(car).odometer(car)
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        later = get_provider(car).odometer(car)
    assert later.data["distance"] > first.data["distance"] + 100
    assert later.recorded_at > first.recorded_at


def test_readings_were_recorded_a_little_before_now():
    car, now = make_car(), T0 + timedelta(hours=30)
    recorded_at = at(now).odometer(car).recorded_at
    assert now - timedelta(minutes=6) < recorded_at < now


def test_the_vehicle_drives_around_its_home_city():
    car = make_car()
    start = at(T0).location(car).data
    positions = [at(T0 + timedelta(hours=hours)).location(car).data for hours in range(1, 24 * 14, 5)]
    assert any(km_between(start, position) > 0.5 for position in positions)
    for position in positions:
        assert km_between(start, position) < 25  # a loop of at most 12 km radius
        assert -90 <= position["latitude"] <= 90 and -180 <= position["longitude"] <= 180
        assert position["latitude"] == round(position["latitude"], 6)


def test_the_lock_status_has_the_six_keys_the_sdks_read():
    body = at(T0).lock_status(make_car()).data
    assert set(body) == {"isLocked", "doors", "windows", "sunroof", "storage", "chargingPort"}
    assert {door["type"] for door in body["doors"]} == {"frontLeft", "frontRight", "backLeft", "backRight"}
    assert all(
        item["status"] in {"OPEN", "CLOSED", "UNKNOWN"} for key in body if key != "isLocked" for item in body[key]
    )


def test_a_combustion_vehicle_has_no_charging_port():
    assert at(T0).lock_status(make_car(Engine.ICE)).data["chargingPort"] == []


def test_lock_and_unlock_persist_for_later_requests():
    car = make_car()
    assert SimulatedProvider().unlock(car).status == "success"
    assert SimulatedProvider().lock_status(SimulatedVehicle.objects.get(pk=car.pk)).data["isLocked"] is False
    SimulatedProvider().lock(SimulatedVehicle.objects.get(pk=car.pk))
    assert SimulatedProvider().lock_status(SimulatedVehicle.objects.get(pk=car.pk)).data["isLocked"] is True


def test_reads_never_touch_the_database(django_assert_num_queries):
    car = make_car(Engine.PHEV)
    with django_assert_num_queries(0):
        for method in (*READS, "fuel", "battery", "battery_capacity", "charge", "charge_limit", "engine_oil"):
            getattr(SimulatedProvider(), method)(car)


def test_the_charge_limit_persists_and_is_reported_as_a_fraction():
    car = make_car()
    SimulatedProvider().set_charge_limit(car, 0.9)
    assert SimulatedProvider().charge_limit(SimulatedVehicle.objects.get(pk=car.pk)).data == {"limit": 0.9}


@pytest.mark.parametrize("limit", [0.5, 1, "0.75"])
def test_the_charge_limit_accepts_half_to_full(limit):
    car = make_car()
    SimulatedProvider().set_charge_limit(car, limit)
    assert SimulatedVehicle.objects.get(pk=car.pk).charge_limit_percent == round(float(limit) * 100)


@pytest.mark.parametrize("limit", [0.49, 1.01, 0, 80, -1, "lots", None, float("nan")])
def test_the_charge_limit_refuses_values_outside_half_to_full(limit):
    car = make_car()
    with pytest.raises(VehicleError) as caught:
        SimulatedProvider().set_charge_limit(car, limit)
    assert (caught.value.type, caught.value.code) == ("VALIDATION", "PARAMETER")
    assert SimulatedVehicle.objects.get(pk=car.pk).charge_limit_percent == 80


def test_battery_stays_between_reserve_and_charge_limit_and_range_follows_it():
    car = make_car(Engine.BEV)
    spec = catalog.find_model("TESLA", "Model 3")
    for hours in range(0, 24 * 30, 7):
        battery = at(T0 + timedelta(hours=hours)).battery(car).data
        assert 0.14 <= battery["percentRemaining"] <= 0.8
        assert battery["range"] == pytest.approx(battery["percentRemaining"] * spec.electric_range_km, abs=5)
    assert at(T0).battery_capacity(car).data == {"capacity": spec.battery_kwh}


def test_fuel_stays_within_the_tank():
    car = make_car(Engine.ICE)
    spec = catalog.find_model("FORD", "F-150")
    for hours in range(0, 24 * 60, 11):
        fuel = at(T0 + timedelta(hours=hours)).fuel(car).data
        assert 0.09 <= fuel["percentRemaining"] <= 1
        assert 0 < fuel["amountRemaining"] <= spec.tank_litres
        assert 0 < fuel["range"] <= spec.fuel_range_km


def test_tires_and_oil_are_plausible():
    car = make_car(Engine.ICE)
    pressures = at(T0).tire_pressure(car).data
    assert set(pressures) == {"frontLeft", "frontRight", "backLeft", "backRight"}
    assert all(200 < kpa < 270 for kpa in pressures.values())
    assert 0 <= at(T0).engine_oil(car).data["lifeRemaining"] <= 1


BATTERY_ONLY = ("battery", "battery_capacity", "charge", "charge_limit", "start_charge", "stop_charge")


@pytest.mark.parametrize(
    ("engine", "method"),
    [(Engine.BEV, "fuel"), (Engine.BEV, "engine_oil")] + [(Engine.ICE, method) for method in BATTERY_ONLY],
)
def test_it_refuses_what_the_drivetrain_cannot_do(engine, method):
    with pytest.raises(VehicleError) as caught:
        getattr(SimulatedProvider(), method)(make_car(engine))
    assert (caught.value.type, caught.value.code) == ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")


def test_a_combustion_vehicle_cannot_set_a_charge_limit():
    with pytest.raises(VehicleError, match="COMPATIBILITY:VEHICLE_NOT_CAPABLE"):
        SimulatedProvider().set_charge_limit(make_car(Engine.ICE), 0.8)


def test_a_plug_in_hybrid_reports_both_fuel_and_battery():
    car = make_car(Engine.PHEV)
    assert set(at(T0).fuel(car).data) == {"amountRemaining", "percentRemaining", "range"}
    assert set(at(T0).battery(car).data) == {"percentRemaining", "range"}


def test_charging_needs_the_plug_and_persists():
    car = make_car(Engine.BEV)
    car.is_plugged_in = False
    car.save()
    with pytest.raises(VehicleError, match="VEHICLE_STATE:CHARGING_PLUG_NOT_CONNECTED"):
        SimulatedProvider().start_charge(car)
    assert at(T0).charge(car).data == {"isPluggedIn": False, "state": "NOT_CHARGING"}

    car.is_plugged_in = True
    car.save()
    SimulatedProvider().start_charge(car)
    fresh = SimulatedVehicle.objects.get(pk=car.pk)
    assert fresh.is_charging
    assert at(T0).charge(fresh).data["state"] in {"CHARGING", "FULLY_CHARGED"}
    SimulatedProvider().stop_charge(fresh)
    assert not SimulatedVehicle.objects.get(pk=car.pk).is_charging


def battery_at(car, moment) -> float:
    return at(moment).battery(SimulatedVehicle.objects.get(pk=car.pk)).data["percentRemaining"]


def charging_car(level_limit=90) -> SimulatedVehicle:
    """A Model 3 plugged in low enough that a charge session has room to rise."""
    for _ in range(50):
        car = make_car(Engine.BEV)
        car.charge_limit_percent = level_limit
        car.save(update_fields=["charge_limit_percent"])
        if at(T0).battery(car).data["percentRemaining"] <= 0.5:
            return car
    raise AssertionError("no simulated car below half charge in 50 seeds")


def test_a_charging_battery_rises_at_the_chargers_rate_up_to_the_limit():
    car = charging_car()
    start = battery_at(car, T0)
    at(T0).start_charge(car)
    kwh = at(T0).battery_capacity(car).data["capacity"]

    two_hours_later = battery_at(car, T0 + timedelta(hours=2))

    assert two_hours_later == pytest.approx(start + 2 * 11 / kwh, abs=0.02)
    state = at(T0 + timedelta(hours=2)).charge(SimulatedVehicle.objects.get(pk=car.pk)).data["state"]
    assert state == "CHARGING"
    assert battery_at(car, T0 + timedelta(days=2)) == 0.9
    full = at(T0 + timedelta(days=2)).charge(SimulatedVehicle.objects.get(pk=car.pk)).data
    assert full == {"isPluggedIn": True, "state": "FULLY_CHARGED"}


def test_starting_a_charge_twice_keeps_the_first_sessions_start():
    car = charging_car()
    at(T0).start_charge(car)
    at(T0 + timedelta(hours=1)).start_charge(SimulatedVehicle.objects.get(pk=car.pk))
    kwh = at(T0).battery_capacity(car).data["capacity"]
    assert battery_at(car, T0 + timedelta(hours=2)) == pytest.approx(battery_at(car, T0) + 2 * 11 / kwh, abs=0.03)


def test_stopping_a_charge_keeps_the_level_then_it_drains_with_driving():
    car = charging_car()
    at(T0).start_charge(car)
    stop = T0 + timedelta(hours=1)  # not yet full
    charged = battery_at(car, stop)
    at(stop).stop_charge(SimulatedVehicle.objects.get(pk=car.pk))

    assert battery_at(car, stop) == pytest.approx(charged, abs=0.01)
    assert battery_at(car, stop + timedelta(days=1)) < charged
    assert battery_at(car, stop + timedelta(days=1)) > charged - 0.3  # a day's driving, not a jump
    assert at(stop).charge(SimulatedVehicle.objects.get(pk=car.pk)).data["state"] == "NOT_CHARGING"


ALL_CALLS = {
    **{method: () for method in (*READS, "fuel", "battery", "battery_capacity", "charge", "charge_limit")},
    **{method: () for method in ("engine_oil", "lock", "unlock", "start_charge", "stop_charge")},
    "set_charge_limit": (0.9,),
    "send_destination": (37.77, -122.42),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_an_injected_failure_answers_every_call(failure):
    car = make_car(Engine.PHEV)
    car.failure = failure
    car.save()
    for method, args in ALL_CALLS.items():
        with pytest.raises(VehicleError) as caught:
            getattr(SimulatedProvider(), method)(car, *args)
        assert f"{caught.value.type}:{caught.value.code}" == failure, method
    assert SimulatedVehicle.objects.get(pk=car.pk).is_locked  # the refused unlock changed nothing


def test_a_moving_vehicle_still_locks_unless_in_motion_is_injected():
    car = make_car()
    for hours in range(0, 48, 3):  # the simulated car is always somewhere on its loop
        assert at(T0 + timedelta(hours=hours)).lock(car).status == "success"


def test_navigation_accepts_coordinates_on_earth_only():
    car = make_car()
    assert SimulatedProvider().send_destination(car, 48.1372, 11.5756).status == "success"
    with pytest.raises(VehicleError, match="VALIDATION:PARAMETER"):
        SimulatedProvider().send_destination(car, 91, 0)


@pytest.mark.parametrize("engine", list(MODELS))
def test_supported_permissions_match_what_the_reads_answer(engine):
    """Connect's compatibility check and the API agree: a permission is supported iff its reads work."""
    from vehicles.api.resources import READS

    car, provider = make_car(engine), at(T0 + timedelta(days=3))
    supported = provider.supported_permissions(car)
    for read in READS.values():
        try:
            getattr(provider, read.method)(car)
            capable = True
        except VehicleError as error:
            assert (error.type, error.code) == ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")
            capable = False
        assert capable == (read.scope in supported), (engine, read.path)
    assert ("read_battery" in supported, "read_fuel" in supported) == {
        Engine.BEV: (True, False),
        Engine.ICE: (False, True),
        Engine.PHEV: (True, True),
    }[engine]
