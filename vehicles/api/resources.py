"""The vehicle data and action endpoints as data: path, scope, provider method, units, body parsing.

One table serves the direct routes and the batch sub-requests, so both check the same scope,
call the same provider method and convert the same fields.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from vehicles.api.base import choice_field, number_field


def provider_for(vehicle):
    """The VehicleProvider for `vehicle`; imported late so a provider bug can't break URL loading."""
    from vehicles.providers import get_provider

    return get_provider(vehicle)


def endpoint_for(path: str) -> str:
    """The metering template of a vehicle resource path ("" is the attributes endpoint)."""
    return "/vehicles/{id}" + (f"/{path}" if path else "")


@dataclass(frozen=True)
class Read:
    """A GET endpoint answered by `provider.<method>(vehicle)` -> Reading."""

    path: str
    scope: str
    method: str
    units: dict[str, str] = field(default_factory=dict)  # body field -> distance | volume | pressure

    @property
    def endpoint(self) -> str:
        return endpoint_for(self.path)


@dataclass(frozen=True)
class Action:
    """A POST endpoint: `parse(body)` -> (provider method name, args), answered with an ActionResult."""

    path: str
    scope: str
    parse: Callable[[dict], tuple[str, tuple]]

    @property
    def endpoint(self) -> str:
        return endpoint_for(self.path)


def _security(body: dict) -> tuple[str, tuple]:
    return {"LOCK": "lock", "UNLOCK": "unlock"}[choice_field(body, "action", ("LOCK", "UNLOCK"))], ()


def _charge(body: dict) -> tuple[str, tuple]:
    return {"START": "start_charge", "STOP": "stop_charge"}[choice_field(body, "action", ("START", "STOP"))], ()


def _charge_limit(body: dict) -> tuple[str, tuple]:
    return "set_charge_limit", (number_field(body, "limit", low=0.5, high=1),)


def _destination(body: dict) -> tuple[str, tuple]:
    latitude = number_field(body, "latitude", low=-90, high=90)
    return "send_destination", (latitude, number_field(body, "longitude", low=-180, high=180))


TIRES = ("frontLeft", "frontRight", "backLeft", "backRight")

READS: dict[str, Read] = {
    read.path: read
    for read in (
        Read("", "read_vehicle_info", "attributes"),
        Read("vin", "read_vin", "vin"),
        Read("odometer", "read_odometer", "odometer", {"distance": "distance"}),
        Read("location", "read_location", "location"),
        Read("security", "read_security", "lock_status"),
        Read("fuel", "read_fuel", "fuel", {"amountRemaining": "volume", "range": "distance"}),
        Read("battery", "read_battery", "battery", {"range": "distance"}),
        Read("battery/capacity", "read_battery", "battery_capacity"),
        Read("charge", "read_charge", "charge"),
        Read("charge/limit", "read_charge", "charge_limit"),
        Read("tires/pressure", "read_tires", "tire_pressure", dict.fromkeys(TIRES, "pressure")),
        Read("engine/oil", "read_engine_oil", "engine_oil"),
    )
}

ACTIONS: dict[str, Action] = {
    action.path: action
    for action in (
        Action("security", "control_security", _security),
        Action("charge", "control_charge", _charge),
        Action("charge/limit", "control_charge", _charge_limit),
        Action("navigation/destination", "control_navigation", _destination),
    )
}

# Every path below /vehicles/{id}/ that the table answers, longest first for the URL pattern.
PATHS = sorted({p for p in (*READS, *ACTIONS) if p}, key=len, reverse=True)
