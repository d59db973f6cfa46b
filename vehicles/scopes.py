"""Smartcar v2.0 permissions (scopes) and what they mean in words, for the consent page."""

PERMISSIONS: dict[str, str] = {
    "read_vehicle_info": "Know the make, model and year",
    "read_vin": "Read the VIN",
    "read_odometer": "Read the odometer",
    "read_location": "Access the location",
    "read_security": "See whether doors and windows are locked or open",
    "control_security": "Lock and unlock the vehicle",
    "read_fuel": "Read the fuel tank level",
    "read_battery": "Read the EV battery's level and range",
    "read_charge": "Know whether the vehicle is charging",
    "control_charge": "Start or stop charging and set the charge limit",
    "read_tires": "Read the tire pressure",
    "read_engine_oil": "Read the engine oil life",
    "control_navigation": "Send destinations to the navigation system",
}

DEFAULT_SCOPES = ["read_vehicle_info"]


def parse_scope_param(raw: str | None) -> tuple[list[str], list[str], list[str]]:
    """Split a Connect `scope` parameter into (all, required, unknown) permission names.

    `required:read_odometer` makes a permission required; names come back without the prefix.
    """
    requested, required, unknown = [], [], []
    for item in (raw or "").split():
        name = item.removeprefix("required:")
        if name not in PERMISSIONS:
            unknown.append(name)
            continue
        if name not in requested:
            requested.append(name)
        if item.startswith("required:") and name not in required:
            required.append(name)
    return requested, required, unknown
