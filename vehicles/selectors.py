"""Reads for the dashboard's Vehicles tab, always scoped to the team."""

from django.shortcuts import get_object_or_404

from vehicles.models import Connection, SimulatedOwner


def team_connections(team):
    """Active connections of the team's applications, newest first, with what the table shows."""
    return (
        Connection.objects.filter(application__team=team, revoked_at__isnull=True)
        .select_related("vehicle", "application", "grant")
        .order_by("-connected_at", "-id")
    )


def team_has_called_the_api(team) -> bool:
    """Whether an application of the team has connected a vehicle and read or acted on it through the API (the
    Overview's "Getting started" step)."""
    return Connection.objects.filter(application__team=team, last_request_at__isnull=False).exists()


def get_team_connection(team, connection_id: int) -> Connection:
    return get_object_or_404(team_connections(team), pk=connection_id)


def team_simulated_owners(team):
    return SimulatedOwner.objects.filter(team=team).prefetch_related("vehicles").order_by("-created_at", "-id")


def mask_vin(vin: str) -> str:
    """Show only the last four characters: enough to tell vehicles apart."""
    return "•" * max(len(vin) - 4, 0) + vin[-4:]
