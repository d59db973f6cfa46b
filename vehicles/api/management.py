"""Smartcar's management API: list and delete an application's vehicle connections.

Authenticated with `Basic base64("default:" + application management token)` and scoped to that
application. A connection here is a (user, vehicle) pair: an owner who ran Connect twice has two
Connection rows for the vehicle, listed once with the earlier `connectedAt`, deleted together.
Paging is a cursor over (connectedAt, vehicleId), newest first, opaque to the client.
"""

import base64
import binascii
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Min, Q
from django.http import JsonResponse

from vehicles.api.auth import management_application
from vehicles.api.base import ApiCall, api_view, iso, parse_uuid, query_int, validation_error
from vehicles.connections import revoke_connections
from vehicles.errors import ApiError
from vehicles.models import Connection

ENDPOINT = "/management/connections"
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def _filters(request) -> dict:
    filters = {}
    if request.GET.get("user_id"):
        filters["grant__owner__public_id"] = parse_uuid(request.GET["user_id"], "user_id")
    if request.GET.get("vehicle_id"):
        filters["vehicle__public_id"] = parse_uuid(request.GET["vehicle_id"], "vehicle_id")
    return filters


def _encode_cursor(connected_at: datetime, vehicle_id) -> str:
    return base64.urlsafe_b64encode(f"{connected_at.isoformat()}|{vehicle_id}".encode()).decode()


def _decode_cursor(cursor: str) -> Q:
    """The rows after the cursor's (connectedAt, vehicleId) in newest-first order."""
    try:
        stamp, _, vehicle_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        connected_at = datetime.fromisoformat(stamp)
        vehicle_uuid = parse_uuid(vehicle_id, "cursor")
        if connected_at.tzinfo is None:
            raise ValueError("naive")
        connected_at = connected_at.astimezone(UTC)  # OverflowError for 0001-01-01+14:00 and the like
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, ApiError) as exc:
        raise validation_error("cursor", "cursor is not one this API returned.") from exc
    return Q(first_connected__lt=connected_at) | Q(first_connected=connected_at, vehicle__public_id__lt=vehicle_uuid)


def _list(request, application_id: int) -> JsonResponse:
    limit = query_int(request, "limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    rows = (
        Connection.objects.filter(application_id=application_id, revoked_at__isnull=True, **_filters(request))
        .values("grant__owner__public_id", "vehicle__public_id")
        .annotate(first_connected=Min("connected_at"))
        .order_by("-first_connected", "-vehicle__public_id")
    )
    if request.GET.get("cursor"):
        rows = rows.filter(_decode_cursor(request.GET["cursor"]))
    page = list(rows[: limit + 1])
    more, page = len(page) > limit, page[:limit]
    connections = [
        {
            "userId": str(row["grant__owner__public_id"]),
            "vehicleId": str(row["vehicle__public_id"]),
            "connectedAt": iso(row["first_connected"]),
        }
        for row in page
    ]
    cursor = _encode_cursor(page[-1]["first_connected"], page[-1]["vehicle__public_id"]) if more else None
    return JsonResponse({"connections": connections, "paging": {"cursor": cursor}})


def _delete(request, application_id: int) -> JsonResponse:
    filters = _filters(request)
    if len(filters) != 1:
        raise validation_error("vehicle_id", "Pass exactly one of vehicle_id or user_id.", code=None)
    with transaction.atomic():
        active = Connection.objects.filter(application_id=application_id, revoked_at__isnull=True, **filters)
        rows = list(
            active.order_by("-connected_at", "-id").values("id", "grant__owner__public_id", "vehicle__public_id")
        )
        revoke_connections(Connection.objects.filter(id__in=[row["id"] for row in rows]))
    pairs = dict.fromkeys((str(row["grant__owner__public_id"]), str(row["vehicle__public_id"])) for row in rows)
    return JsonResponse({"connections": [{"userId": user, "vehicleId": vehicle} for user, vehicle in pairs]})


@api_view
def connections(request, call: ApiCall):
    """GET or DELETE /management/connections."""
    handler = {"GET": _list, "DELETE": _delete}.get(request.method)
    if handler is None:
        raise ApiError("RESOURCE_NOT_FOUND", "PATH")
    call.endpoint = ENDPOINT
    application = management_application(request)
    call.authenticated(team_id=application.team_id, application_id=application.id)
    return handler(request, application.id)
