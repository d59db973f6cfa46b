"""Producing billable usage in tests, counted by metering exactly as the API counts it."""

from billing import metering
from tests.factories import ApplicationFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle

ODOMETER = "/vehicles/{id}/odometer"


def count_billable_requests(team, count: int, *, vehicle=None):
    """`count` successful billable requests of the team (through a new application); the vehicle used."""
    vehicle = vehicle or make_vehicle(make_owner())
    application = ApplicationFactory(team=team)
    for index in range(count):
        metering.reserve(
            request_id=f"test-{application.pk}-{index}",
            team_id=team.pk,
            application_id=application.pk,
            vehicle_id=vehicle.pk,
            endpoint=ODOMETER,
        )
    return vehicle
