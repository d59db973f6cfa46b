"""Vehicle data sources. Every API call reaches a vehicle through `get_provider(vehicle)`."""

from functools import cache

from vehicles.providers.base import VehicleProvider


@cache
def _simulated() -> VehicleProvider:
    # Imported on first use: the simulation needs the app registry, and `providers.base` must stay importable early.
    from vehicles.providers.simulated import SimulatedProvider

    return SimulatedProvider()


def get_provider(vehicle) -> VehicleProvider:
    """The provider that serves `vehicle`: today every vehicle belongs to a simulated brand."""
    return _simulated()
