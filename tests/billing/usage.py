"""Producing usage in tests, counted by metering exactly as the API counts it, and reading it back."""

from django.db.models import Sum

from billing import metering
from billing.models import UsageDaily
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


def non_billable_requests(team) -> int:
    """The team's non-billable requests, as its daily rollups hold them (what the Billing tab shows)."""
    return UsageDaily.objects.filter(period__team=team).aggregate(n=Sum("non_billable"))["n"] or 0
