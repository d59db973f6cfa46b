"""The built-in simulated brands: plausible, repeatable vehicle data computed from (seed, created_at, now).

Nothing is stored per reading. Each vehicle gets a profile from its seed (home city, loop route,
kilometres per day, tire pressures, ...); a reading is the profile evaluated at the instant the
vehicle last reported, so the same seed and clock always give the same answer, the odometer only
grows, and the location, fuel and battery follow the distance driven. What a driver or an API
call changes (lock, plug, charging, charge limit) lives on the SimulatedVehicle row.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.utils import timezone

from vehicles import catalog
from vehicles.models import Engine, SimulatedVehicle
from vehicles.providers.base import ActionResult, Reading, VehicleError
from vehicles.scopes import PERMISSIONS

KM_PER_DEGREE_LATITUDE = 111.32
SECONDS_PER_DAY = 86_400
TIRES = ("frontLeft", "frontRight", "backLeft", "backRight")

# Home cities (latitude, longitude) the simulated vehicles drive around.
CITIES = (
    (37.774929, -122.419418),  # San Francisco
    (34.052235, -118.243683),  # Los Angeles
    (47.606209, -122.332071),  # Seattle
    (30.267153, -97.743061),  # Austin
    (41.878113, -87.629799),  # Chicago
    (40.712776, -74.005974),  # New York
    (43.653225, -79.383186),  # Toronto
    (51.507351, -0.127758),  # London
    (48.856613, 2.352222),  # Paris
    (52.520008, 13.404954),  # Berlin
    (48.135124, 11.581981),  # Munich
    (52.367573, 4.904139),  # Amsterdam
)

# Drivers refuel or recharge somewhere in these bands rather than running dry.
BATTERY_LOW = 0.15
CHARGER_KW = 11.0  # a home wall box: a 75 kWh battery gains about 15 % an hour
FUEL_LOW, FUEL_FULL = 0.1, 1.0


@dataclass(frozen=True)
class Profile:
    """Everything about a simulated vehicle that follows from its seed alone."""

    annual_km: float
    initial_km_offset: float
    centre: tuple[float, float]
    loop_radius_km: float
    loop_phase: float  # radians: where on the loop the vehicle starts
    report_every_s: int  # how often the vehicle reports to its brand's cloud
    report_latency_s: float  # how long a report takes to reach us
    battery_used: float  # fraction of a charge cycle already used at time zero
    fuel_used: float
    tire_kpa: tuple[float, ...]
    oil_interval_km: float
    oil_used_km: float
    has_sunroof: bool


@lru_cache(maxsize=16_384)  # seeding a Random per request cost the API more than the rest of the simulation
def profile_for(seed: int) -> Profile:
    # A string seed keeps this stable across processes and Python versions.
    rng = random.Random(f"ignition-vehicle:{seed}")  # noqa: S311 (repeatable, not secret)
    nominal_kpa = rng.uniform(230, 260)
    oil_interval_km = rng.choice((10_000.0, 12_000.0, 15_000.0))
    return Profile(
        annual_km=rng.uniform(8_000, 22_000),
        initial_km_offset=rng.uniform(50, 2_500),
        centre=rng.choice(CITIES),
        loop_radius_km=rng.uniform(2, 12),
        loop_phase=rng.uniform(0, 2 * math.pi),
        report_every_s=rng.randrange(30, 301),
        report_latency_s=round(rng.uniform(1, 20), 3),
        battery_used=rng.random(),
        fuel_used=rng.random(),
        tire_kpa=tuple(nominal_kpa - rng.uniform(0, 12) for _ in TIRES),
        oil_interval_km=oil_interval_km,
        oil_used_km=rng.uniform(0, oil_interval_km),
        has_sunroof=rng.random() < 0.4,
    )


def _sawtooth(used: float, low: float, high: float) -> float:
    """A level that drains from `high` to `low` as `used` grows, then is topped up to `high` again."""
    span = max(high - low, 0.01)
    return high - (used % span)


@dataclass(frozen=True)
class Snapshot:
    """The vehicle as of its last report."""

    vehicle: SimulatedVehicle
    profile: Profile
    spec: catalog.ModelSpec
    recorded_at: datetime
    driven_km: float  # since created_at

    @property
    def odometer_km(self) -> float:
        years_before = max(self.vehicle.created_at.year - self.vehicle.year, 0) + 0.5
        return years_before * self.profile.annual_km + self.profile.initial_km_offset + self.driven_km

    def electric_share(self) -> float:
        # A plug-in hybrid covers about half its distance on the battery, then burns fuel.
        return {Engine.BEV: 1.0, Engine.PHEV: 0.5}.get(self.vehicle.engine, 0.0)

    @property
    def charge_limit(self) -> float:
        return self.vehicle.charge_limit_percent / 100

    def battery_used(self) -> float:
        """Charge cycles used by driving since time zero, shifted to where the last charge session ended."""
        driven = self.driven_km * self.electric_share() / self.spec.electric_range_km
        return self.profile.battery_used + driven + self.vehicle.battery_adjust

    def battery_fraction(self) -> float:
        vehicle = self.vehicle
        if vehicle.is_charging and vehicle.charging_since is not None and vehicle.charge_from is not None:
            hours = max((self.recorded_at - vehicle.charging_since).total_seconds(), 0) / 3600
            gained = hours * CHARGER_KW / max(self.spec.battery_kwh, 1)
            return min(self.charge_limit, max(vehicle.charge_from, BATTERY_LOW) + gained)
        return _sawtooth(self.battery_used(), BATTERY_LOW, self.charge_limit)

    def fuel_fraction(self) -> float:
        used = self.profile.fuel_used + self.driven_km * (1 - self.electric_share()) / self.spec.fuel_range_km
        return _sawtooth(used, FUEL_LOW, FUEL_FULL)

    def position(self) -> tuple[float, float]:
        """On a circular loop around the home city: the angle advances with the distance driven."""
        latitude, longitude = self.profile.centre
        radius = self.profile.loop_radius_km
        angle = self.profile.loop_phase + self.driven_km / radius
        north_km, east_km = radius * math.sin(angle), radius * math.cos(angle)
        km_per_degree_longitude = KM_PER_DEGREE_LATITUDE * math.cos(math.radians(latitude))
        return latitude + north_km / KM_PER_DEGREE_LATITUDE, longitude + east_km / km_per_degree_longitude


def snapshot(vehicle: SimulatedVehicle, now: datetime) -> Snapshot:
    """The vehicle as of its latest report before `now` (reports arrive every few minutes, a little late)."""
    profile = profile_for(vehicle.seed)
    since_zero = (now - vehicle.created_at).total_seconds() - profile.report_latency_s
    age_s = profile.report_latency_s + max(since_zero, 0) % profile.report_every_s
    recorded_at = now - timedelta(seconds=age_s)
    driven_s = max((recorded_at - vehicle.created_at).total_seconds(), 0)
    driven_km = profile.annual_km / 365 * driven_s / SECONDS_PER_DAY
    spec = catalog.spec_for(vehicle.make, vehicle.model, vehicle.engine)
    return Snapshot(vehicle, profile, spec, recorded_at, driven_km)


ELECTRIC_PERMISSIONS = {"read_battery", "read_charge", "control_charge"}
COMBUSTION_PERMISSIONS = {"read_fuel", "read_engine_oil"}


def _not_capable(description: str) -> VehicleError:
    return VehicleError("COMPATIBILITY", "VEHICLE_NOT_CAPABLE", description)


class SimulatedProvider:
    """VehicleProvider for SimulatedVehicle rows. `now` is a clock, so tests and replays can move time."""

    def __init__(self, now: Callable[[], datetime] | None = None):
        self._now = now or timezone.now

    def supported_permissions(self, vehicle: SimulatedVehicle) -> frozenset[str]:
        """Every permission but those the powertrain lacks: no battery on a combustion car, no tank on an EV."""
        lacking = {Engine.ICE: ELECTRIC_PERMISSIONS, Engine.BEV: COMBUSTION_PERMISSIONS}.get(vehicle.engine, set())
        return frozenset(PERMISSIONS) - lacking

    # --- guards ------------------------------------------------------------------------------------------------------

    def _read(self, vehicle: SimulatedVehicle, data: Callable[[Snapshot], dict]) -> Reading:
        raise_injected_failure(vehicle)
        moment = snapshot(vehicle, self._now())
        return Reading(data=data(moment), recorded_at=moment.recorded_at)

    @staticmethod
    def _require_plug(vehicle: SimulatedVehicle) -> None:
        if vehicle.engine == Engine.ICE:
            raise _not_capable("A combustion vehicle has no battery to charge or report on.")

    @staticmethod
    def _require_tank(vehicle: SimulatedVehicle) -> None:
        if vehicle.engine == Engine.BEV:
            raise _not_capable("A battery electric vehicle has no fuel tank or engine oil.")

    @staticmethod
    def _act(vehicle: SimulatedVehicle, **changes) -> ActionResult:
        """Persist what a command changed on the vehicle, in one UPDATE of just those fields."""
        for name, value in changes.items():
            setattr(vehicle, name, value)
        vehicle.save(update_fields=list(changes))
        return ActionResult()

    # --- identity and position ---------------------------------------------------------------------------------------

    def attributes(self, vehicle) -> Reading:
        def data(moment: Snapshot) -> dict:
            return {"id": str(vehicle.public_id), "make": vehicle.make, "model": vehicle.model, "year": vehicle.year}

        return self._read(vehicle, data)

    def vin(self, vehicle) -> Reading:
        return self._read(vehicle, lambda m: {"vin": vehicle.vin})

    def odometer(self, vehicle) -> Reading:
        return self._read(vehicle, lambda m: {"distance": round(m.odometer_km, 2)})

    def location(self, vehicle) -> Reading:
        def data(moment: Snapshot) -> dict:
            latitude, longitude = moment.position()
            return {"latitude": round(latitude, 6), "longitude": round(longitude, 6)}

        return self._read(vehicle, data)

    # --- security ----------------------------------------------------------------------------------------------------

    def lock_status(self, vehicle) -> Reading:
        return self._read(vehicle, _lock_status_body)

    def lock(self, vehicle) -> ActionResult:
        raise_injected_failure(vehicle)
        return self._act(vehicle, is_locked=True)

    def unlock(self, vehicle) -> ActionResult:
        raise_injected_failure(vehicle)
        return self._act(vehicle, is_locked=False)

    # --- energy ------------------------------------------------------------------------------------------------------

    def fuel(self, vehicle) -> Reading:
        raise_injected_failure(vehicle)
        self._require_tank(vehicle)

        def data(moment: Snapshot) -> dict:
            fraction = moment.fuel_fraction()
            return {
                "amountRemaining": round(fraction * moment.spec.tank_litres, 2),
                "percentRemaining": round(fraction, 2),
                "range": round(fraction * moment.spec.fuel_range_km, 2),
            }

        return self._read(vehicle, data)

    def battery(self, vehicle) -> Reading:
        raise_injected_failure(vehicle)
        self._require_plug(vehicle)

        def data(moment: Snapshot) -> dict:
            fraction = moment.battery_fraction()
            return {"percentRemaining": round(fraction, 2), "range": round(fraction * moment.spec.electric_range_km, 2)}

        return self._read(vehicle, data)

    def battery_capacity(self, vehicle) -> Reading:
        raise_injected_failure(vehicle)
        self._require_plug(vehicle)
        return self._read(vehicle, lambda m: {"capacity": m.spec.battery_kwh})

    def charge(self, vehicle) -> Reading:
        raise_injected_failure(vehicle)
        self._require_plug(vehicle)
        return self._read(vehicle, lambda m: {"isPluggedIn": vehicle.is_plugged_in, "state": _charge_state(m)})

    def start_charge(self, vehicle) -> ActionResult:
        raise_injected_failure(vehicle)
        self._require_plug(vehicle)
        if not vehicle.is_plugged_in:
            raise VehicleError("VEHICLE_STATE", "CHARGING_PLUG_NOT_CONNECTED")
        if vehicle.is_charging:
            return ActionResult()  # already charging: keep the session's start
        now = self._now()
        level = snapshot(vehicle, now).battery_fraction()
        return self._act(vehicle, is_charging=True, charging_since=now, charge_from=level)

    def stop_charge(self, vehicle) -> ActionResult:
        raise_injected_failure(vehicle)
        self._require_plug(vehicle)
        if not vehicle.is_charging:
            return ActionResult()
        moment = snapshot(vehicle, self._now())
        level = moment.battery_fraction()
        adjust = _drain_adjust_for(moment, level)  # from here the level drains again, from what was charged
        return self._act(vehicle, is_charging=False, charging_since=None, charge_from=None, battery_adjust=adjust)

    def charge_limit(self, vehicle) -> Reading:
        raise_injected_failure(vehicle)
        self._require_plug(vehicle)
        return self._read(vehicle, lambda m: {"limit": vehicle.charge_limit_percent / 100})

    def set_charge_limit(self, vehicle, limit: float) -> ActionResult:
        raise_injected_failure(vehicle)
        self._require_plug(vehicle)
        try:
            limit = float(limit)
        except (TypeError, ValueError):
            limit = math.nan
        if not 0.5 <= limit <= 1:  # also refuses NaN
            raise VehicleError("VALIDATION", "PARAMETER", "The charge limit must be a fraction from 0.5 to 1.")
        return self._act(vehicle, charge_limit_percent=round(limit * 100))

    # --- maintenance and navigation ----------------------------------------------------------------------------------

    def tire_pressure(self, vehicle) -> Reading:
        return self._read(vehicle, _tire_pressures)

    def engine_oil(self, vehicle) -> Reading:
        raise_injected_failure(vehicle)
        self._require_tank(vehicle)

        def data(moment: Snapshot) -> dict:
            interval = moment.profile.oil_interval_km
            used = (moment.profile.oil_used_km + moment.driven_km) % interval
            return {"lifeRemaining": round(1 - used / interval, 2)}

        return self._read(vehicle, data)

    def send_destination(self, vehicle, latitude: float, longitude: float) -> ActionResult:
        raise_injected_failure(vehicle)
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise VehicleError("VALIDATION", "PARAMETER", "Latitude must be within ±90 and longitude within ±180.")
        return ActionResult()


def raise_injected_failure(vehicle: SimulatedVehicle) -> None:
    """A vehicle whose `failure` is "TYPE:CODE" answers every call with that error (the Simulator's switch)."""
    if vehicle.failure:
        type_, _, code = vehicle.failure.partition(":")
        raise VehicleError(type_, code or None)


def _closures(statuses: dict[str, str]) -> list[dict]:
    return [{"type": type_, "status": status} for type_, status in statuses.items()]


def _lock_status_body(moment: Snapshot) -> dict:
    """All six keys Smartcar returns; a parked simulated vehicle has everything shut."""
    vehicle = moment.vehicle
    closed = dict.fromkeys(TIRES, "CLOSED")
    port = {"chargingPort": "OPEN" if vehicle.is_plugged_in else "CLOSED"}
    return {
        "isLocked": vehicle.is_locked,
        "doors": _closures(closed),
        "windows": _closures(closed),
        "sunroof": _closures({"sunroof": "CLOSED"}) if moment.profile.has_sunroof else [],
        "storage": _closures({"rear": "CLOSED", "front": "CLOSED"}),
        "chargingPort": _closures(port) if vehicle.engine != Engine.ICE else [],
    }


def _drain_adjust_for(moment: Snapshot, level: float) -> float:
    """The battery_adjust that puts the drain sawtooth at `level` now, so stopping a charge keeps the level."""
    high = moment.charge_limit
    span = max(high - BATTERY_LOW, 0.01)
    target = min(max(high - level, 0.0), span - 1e-9)  # how far below the top of the tooth `level` is
    unadjusted = moment.battery_used() - moment.vehicle.battery_adjust
    return target - unadjusted % span


def _charge_state(moment: Snapshot) -> str:
    vehicle = moment.vehicle
    if not vehicle.is_plugged_in:
        return "NOT_CHARGING"
    if moment.battery_fraction() >= vehicle.charge_limit_percent / 100 - 0.005:
        return "FULLY_CHARGED"
    return "CHARGING" if vehicle.is_charging else "NOT_CHARGING"


def _tire_pressures(moment: Snapshot) -> dict:
    # Pressure follows the air temperature: a couple of kPa higher in the afternoon than before dawn.
    hour = moment.recorded_at.hour + moment.recorded_at.minute / 60
    swing = 2.5 * math.sin((hour - 9) / 24 * 2 * math.pi)
    return {tire: round(kpa + swing, 1) for tire, kpa in zip(TIRES, moment.profile.tire_kpa, strict=True)}
