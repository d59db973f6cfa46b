"""The one place the vehicle API meets metering (billing.metering does the counting, DESIGN §4).

For each billable call the view reserves *before* the vehicle is called (`metered`, in
vehicles/api/base.py): the reservation enforces the plan's limits (430 BILLING:*) and counts
the request; a failed vehicle call releases it. (A retry sent with an `Idempotency-Key` is
replayed before it gets here: vehicles/api/idempotency.py.) When the request has been answered,
`record_request` runs once (a batch: once per sub-request): anything not counted as a
successful billable request (free endpoints, failures, test mode) is added to the team's daily
rollup as non-billable, so the Billing tab's chart shows all traffic.
"""

import logging

from billing import metering
from vehicles.errors import ApiError

logger = logging.getLogger("vehicles.api")

# Smartcar's free endpoints (DESIGN §3); every other vehicle data or action endpoint is billable.
FREE = frozenset(
    {
        ("GET", "/vehicles"),
        ("GET", "/user"),
        ("GET", "/vehicles/{id}/permissions"),
        ("DELETE", "/vehicles/{id}/application"),
    }
)
BATCH = "/vehicles/{id}/batch"  # the envelope is free; each sub-request is classified on its own
VEHICLE_PREFIX = "/vehicles/{id}"


def classify(endpoint: str, method: str) -> bool:
    """Whether a request to `endpoint` (a path template such as "/vehicles/{id}/odometer") is billable.

    Billable means "charged if it succeeds": failed requests are never charged.
    Unknown paths, the management API, and the batch envelope are free.
    """
    if (method.upper(), endpoint) in FREE or endpoint == BATCH:
        return False
    return endpoint == VEHICLE_PREFIX or endpoint.startswith(VEHICLE_PREFIX + "/")


def reserve(*, request_id: str, team_id: int, application_id: int, vehicle_id: int, endpoint: str):
    """Count the request before the vehicle is called, or raise 430 BILLING:<limit> in the dashboard's words."""
    try:
        return metering.reserve(
            request_id=request_id,
            team_id=team_id,
            application_id=application_id,
            vehicle_id=vehicle_id,
            endpoint=endpoint,
        )
    except metering.LimitReached as limit:
        raise ApiError("BILLING", limit.code, description=limit.refusal.api_description) from limit


def release(reservation) -> None:
    metering.release(reservation)


def record_request(
    *,
    request_id: str,
    team_id: int | None,
    application_id: int | None,
    vehicle_id: int | None,
    endpoint: str,
    billable: bool,
    outcome: int,
    counted: bool = False,
) -> None:
    """Report one answered API request; `counted` means a reservation already counted it as billable."""
    if team_id is None or counted:
        return  # unauthenticated requests belong to no team; counted ones are in the rollup already
    metering.record_unbilled(team_id=team_id, application_id=application_id, vehicle_id=vehicle_id, endpoint=endpoint)
