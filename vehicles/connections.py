"""Writes on connections (vehicle ↔ application)."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.applications import can_edit_application
from accounts.audit import record_audit
from vehicles.models import Connection


def revoke_connections(connections) -> int:
    """Disconnect vehicles from applications; their tokens stop working for them. Returns how many were active."""
    return connections.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def revoke_connection(*, connection: Connection) -> bool:
    """Disconnect one vehicle from one application. False if it was already revoked."""
    return bool(revoke_connections(Connection.objects.filter(pk=connection.pk)))


@transaction.atomic
def disconnect_from_dashboard(*, actor, connection: Connection) -> bool:
    """A team member disconnects a vehicle on the Vehicles tab (needs edit rights on the application)."""
    if not can_edit_application(actor, connection.application):
        raise PermissionDenied("You cannot change this application's connections.")
    revoked = revoke_connection(connection=connection)
    if revoked:
        record_audit(
            team=actor.team,
            actor=actor.user,
            action="vehicle.disconnected",
            target=connection.application.name,
            vehicle=str(connection.vehicle.public_id),
        )
    return revoked
