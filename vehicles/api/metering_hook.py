"""The one place the vehicle API reports each request for metering.

Every request under /v2.0/ calls `record_request` exactly once when it has been answered
(a batch: once per sub-request, with the sub-request's own id, and not for the envelope).
For now it records nothing: the metering issue fills it in (billing.metering's reserve /
release per DESIGN §4, which will also need a call before the provider; this hook marks
where the view already knows team, application, vehicle and endpoint).
"""

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

    Billable means "charged if it succeeds": failed requests are never charged (see `outcome`).
    Unknown paths, the management API, and the batch envelope are free.
    """
    if (method.upper(), endpoint) in FREE or endpoint == BATCH:
        return False
    return endpoint == VEHICLE_PREFIX or endpoint.startswith(VEHICLE_PREFIX + "/")


def record_request(
    *,
    request_id: str,
    team_id: int | None,
    application_id: int | None,
    vehicle_id: int | None,
    endpoint: str,
    billable: bool,
    outcome: int,
) -> None:
    """Report one answered API request. Records nothing yet: the metering issue implements it.

    `vehicle_id` is the SimulatedVehicle primary key (None when no vehicle was resolved);
    `team_id`/`application_id` are None when authentication failed; `endpoint` is a path
    template ("unknown" for unmatched paths); `outcome` is the HTTP status answered
    (2xx = success; only successful billable requests are charged).
    """
    return None
