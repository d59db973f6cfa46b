"""The interface a vehicle data source implements. The simulated brands are one; a real OEM connector could be another.

Values are in metric units (km, litres, kPa, degrees); the API layer converts for
`sc-unit-system: imperial`. Percentages are fractions 0..1, as Smartcar returns them.
A provider raises VehicleError for anything the vehicle or upstream refuses.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class VehicleError(Exception):
    """A failure reported by the vehicle or its upstream, mapped to a Smartcar error (type, code)."""

    def __init__(self, type_: str, code: str | None, description: str | None = None, retry_after: int | None = None):
        super().__init__(f"{type_}:{code}")
        self.type = type_
        self.code = code
        self.description = description
        self.retry_after = retry_after  # seconds, for RATE_LIMIT errors (answered as Retry-After)


@dataclass(frozen=True)
class Reading:
    """A value read from a vehicle, with when the vehicle recorded it (SC-Data-Age)."""

    data: dict
    recorded_at: datetime


@dataclass(frozen=True)
class ActionResult:
    status: str = "success"
    message: str = "Successfully sent request to vehicle"
    extra: dict = field(default_factory=dict)


class VehicleProvider(Protocol):
    """What the v2.0 API needs from a vehicle. `vehicle` is our SimulatedVehicle row (or a connector's handle)."""

    def supported_permissions(self, vehicle) -> frozenset[str]: ...  # what Connect may require of it
    def attributes(self, vehicle) -> Reading: ...  # {"id","make","model","year"}
    def vin(self, vehicle) -> Reading: ...  # {"vin"}
    def odometer(self, vehicle) -> Reading: ...  # {"distance": km}
    def location(self, vehicle) -> Reading: ...  # {"latitude","longitude"}
    def lock_status(self, vehicle) -> Reading: ...  # isLocked, doors, windows, sunroof, storage, chargingPort
    def lock(self, vehicle) -> ActionResult: ...
    def unlock(self, vehicle) -> ActionResult: ...
    def fuel(self, vehicle) -> Reading: ...  # {"amountRemaining": l, "percentRemaining", "range": km}
    def battery(self, vehicle) -> Reading: ...  # {"percentRemaining","range": km}
    def battery_capacity(self, vehicle) -> Reading: ...  # {"capacity": kWh}
    def charge(self, vehicle) -> Reading: ...  # {"isPluggedIn","state"}
    def start_charge(self, vehicle) -> ActionResult: ...
    def stop_charge(self, vehicle) -> ActionResult: ...
    def charge_limit(self, vehicle) -> Reading: ...  # {"limit": 0.5..1}
    def set_charge_limit(self, vehicle, limit: float) -> ActionResult: ...
    def tire_pressure(self, vehicle) -> Reading: ...  # {"frontLeft","frontRight","backLeft","backRight"} kPa
    def engine_oil(self, vehicle) -> Reading: ...  # {"lifeRemaining"}
    def send_destination(self, vehicle, latitude: float, longitude: float) -> ActionResult: ...
