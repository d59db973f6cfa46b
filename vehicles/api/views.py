"""Smartcar v2.0 vehicle endpoints: /vehicles, /user, and /vehicles/{id}/... (data, actions, batch).

Order of checks on a vehicle request: path and method (404 RESOURCE_NOT_FOUND:PATH), Bearer token
(401 AUTHENTICATION), vehicle id shape (400 VALIDATION: not a UUID), scope (403 PERMISSION), body
(400 VALIDATION with `detail`), the connection, the Idempotency-Key (replayed or claimed only once
every check above has passed), then the rate limits (429 RATE_LIMIT: the application's bucket, and the
vehicle's on endpoints that reach the vehicle). A well-formed vehicle id that is not connected to this
token's grant, or whose connection was revoked, answers **403 PERMISSION** (resolution REAUTHENTICATE):
the same answer whether or not the vehicle exists, and the fix Smartcar suggests for a lost authorization
is to run Connect again.

Queries per request (the hot path, docs/performance.md): one for the token with, on /vehicles/{id}/...,
its connection and vehicle (vehicles/api/lookup.py); one cache round trip for the rate limits; then the
metering's: on PostgreSQL one call of `ignition_reserve` for a billable request, one rollup upsert otherwise.
A successful data or action request adds one UPDATE of Connection.last_request_at, at most once a minute per
connection (LAST_REQUEST_RESOLUTION). /vehicles adds the page, and a count only when the page doesn't tell it.
A request with an Idempotency-Key adds the key's INSERT (and on a retry the SELECT of the stored answer).
tests/vehicles/test_api_queries.py holds these budgets.
"""

import uuid
from datetime import timedelta

from django.http import JsonResponse
from django.utils import timezone

from vehicles.api import idempotency
from vehicles.api.auth import bearer_lookup
from vehicles.api.base import (
    ApiCall,
    api_view,
    as_api_error,
    iso,
    json_body,
    parse_uuid,
    query_int,
    validation_error,
)
from vehicles.api.lookup import Access
from vehicles.api.rate_limits import check_rate_limits
from vehicles.api.resources import ACTIONS, READS, Read, provider_for
from vehicles.api.units import convert, unit_system
from vehicles.connections import revoke_connections
from vehicles.errors import ApiError, error_body
from vehicles.models import Connection
from vehicles.scopes import PERMISSIONS

VEHICLES_MAX_LIMIT = 50
VEHICLES_DEFAULT_LIMIT = 10
PERMISSIONS_DEFAULT_LIMIT = 25
MAX_BATCH_REQUESTS = 50
LAST_REQUEST_RESOLUTION = timedelta(minutes=1)


def _begin(request, call: ApiCall, endpoint: str, method: str, vehicle_id: str | None = None) -> Access:
    """Match the method, name the endpoint for metering, and authenticate; given the path's vehicle id, the same
    query finds the token's connection to it, which `_connection` checks in its turn (the order of checks holds)."""
    if request.method != method:
        raise ApiError("RESOURCE_NOT_FOUND", "PATH")
    call.endpoint = endpoint
    vehicle_uuid = _uuid_or_none(vehicle_id)
    found = bearer_lookup(request, vehicle_uuid)
    access = found.access
    call.authenticated(team_id=access.team_id, application_id=access.application_id, test_mode=access.test_mode)
    call.connection = found.connection
    return access


def _uuid_or_none(raw: str | None) -> uuid.UUID | None:
    """The path's vehicle id, or None for no id or a malformed one (parse_uuid answers 400 in its turn)."""
    try:
        return None if raw is None else parse_uuid(raw, "vehicle_id")
    except ApiError:
        return None


def _claim_idempotency_key(request, call: ApiCall, access: Access) -> None:
    """Called once every access check has passed: replay the answer the request's Idempotency-Key already has
    (raises idempotency.Replay), or claim the key. Never earlier, or a replay would reach a caller who may not
    see it (another owner's token, a disconnected vehicle, a lost permission)."""
    if call.idempotency_key is not None:
        call.idempotency_record = idempotency.claim(
            request, application_id=access.application_id, grant_id=access.grant_id, key=call.idempotency_key
        )


def _require_scope(access: Access, scope: str) -> None:
    if scope not in access.scopes:
        raise ApiError("PERMISSION")


def _connection(call: ApiCall) -> Connection:
    """This grant's live connection to the path's vehicle (with the vehicle row), found by _begin's query, or 403
    PERMISSION. Called after parse_uuid, so a malformed id has answered 400 first."""
    connection = call.connection
    if connection is None:
        raise ApiError("PERMISSION")
    call.vehicle_id = connection.vehicle_id
    return connection


def _touch(connection: Connection) -> None:
    """Record the request time on the connection: one UPDATE, skipped within LAST_REQUEST_RESOLUTION."""
    now = timezone.now()
    if connection.last_request_at is None or now - connection.last_request_at >= LAST_REQUEST_RESOLUTION:
        Connection.objects.filter(pk=connection.pk).update(last_request_at=now)


def _read(provider, read: Read, vehicle, system: str) -> tuple[dict, dict[str, str]]:
    """Call the provider; the body in `system` units and the SC-* headers it answers with."""
    reading = getattr(provider, read.method)(vehicle)
    headers = {"SC-Data-Age": iso(reading.recorded_at), "SC-Fetched-At": iso(timezone.now())}
    if read.units:
        headers["SC-Unit-System"] = system
    return convert(reading.data, read.units, system), headers


def _json(body: dict, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(body)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api_view
def vehicle_list(request, call):
    """GET /vehicles: the ids of the vehicles this token's grant reaches, oldest connection first."""
    access = _begin(request, call, "/vehicles", "GET")
    _claim_idempotency_key(request, call, access)
    check_rate_limits(access.application_id)
    limit = query_int(request, "limit", VEHICLES_DEFAULT_LIMIT, minimum=1, maximum=VEHICLES_MAX_LIMIT)
    offset = query_int(request, "offset", 0, minimum=0)
    active = Connection.objects.filter(grant_id=access.grant_id, revoked_at__isnull=True)
    page = [
        str(vehicle_id)
        for vehicle_id in active.order_by("connected_at", "id").values_list("vehicle__public_id", flat=True)[
            offset : offset + limit
        ]
    ]
    # A short, non-empty page (or an empty first one) already says how many there are.
    count = offset + len(page) if len(page) < limit and (page or offset == 0) else active.count()
    return _json({"paging": {"count": count, "offset": offset}, "vehicles": page})


@api_view
def user(request, call):
    """GET /user: the vehicle owner behind the token."""
    access = _begin(request, call, "/user", "GET")
    _claim_idempotency_key(request, call, access)
    check_rate_limits(access.application_id)
    return _json({"id": str(access.owner_public_id)})


def _ordered_scopes(scopes: frozenset[str]) -> list[str]:
    known = [name for name in PERMISSIONS if name in scopes]
    return known + sorted(scopes - set(known))


@api_view
def permissions(request, call, vehicle_id):
    """GET /vehicles/{id}/permissions: the grant's scopes, paged."""
    access = _begin(request, call, "/vehicles/{id}/permissions", "GET", vehicle_id)
    parse_uuid(vehicle_id, "vehicle_id")
    limit = query_int(request, "limit", PERMISSIONS_DEFAULT_LIMIT, minimum=1)
    offset = query_int(request, "offset", 0, minimum=0)
    _connection(call)
    _claim_idempotency_key(request, call, access)
    check_rate_limits(access.application_id)
    scopes = _ordered_scopes(access.scopes)
    return _json({"permissions": scopes[offset : offset + limit], "paging": {"count": len(scopes), "offset": offset}})


@api_view
def disconnect(request, call, vehicle_id):
    """DELETE /vehicles/{id}/application: this application loses the vehicle (every grant of this owner)."""
    access = _begin(request, call, "/vehicles/{id}/application", "DELETE", vehicle_id)
    parse_uuid(vehicle_id, "vehicle_id")
    connection = _connection(call)
    _claim_idempotency_key(request, call, access)
    check_rate_limits(access.application_id)
    revoke_connections(
        Connection.objects.filter(
            application_id=access.application_id, vehicle_id=connection.vehicle_id, grant__owner_id=access.owner_id
        )
    )
    return _json({"status": "success"})


@api_view
def vehicle_resource(request, call, vehicle_id, resource=""):
    """GET or POST /vehicles/{id}/<resource>: one provider read or action (table in resources.py)."""
    spec = {"GET": READS, "POST": ACTIONS}.get(request.method, {}).get(resource)
    if spec is None:
        raise ApiError("RESOURCE_NOT_FOUND", "PATH")
    access = _begin(request, call, spec.endpoint, request.method, vehicle_id)
    parse_uuid(vehicle_id, "vehicle_id")
    _require_scope(access, spec.scope)
    action = None if isinstance(spec, Read) else spec.parse(json_body(request))  # (provider method, args)
    connection = _connection(call)
    _claim_idempotency_key(request, call, access)
    check_rate_limits(access.application_id, connection.vehicle_id)
    provider, vehicle = provider_for(connection.vehicle), connection.vehicle
    with call.metered(spec.endpoint):
        if action is None:
            body, headers = _read(provider, spec, vehicle, unit_system(request))
        else:
            result = getattr(provider, action[0])(vehicle, *action[1])
            body, headers = {"status": result.status, "message": result.message, **result.extra}, None
    _touch(connection)
    return _json(body, headers)


def _batch_paths(body: dict) -> list[str]:
    """The sub-request paths, without slashes at either end ("" is the attributes endpoint)."""
    requests = body.get("requests")
    if not isinstance(requests, list) or not all(
        isinstance(item, dict) and isinstance(item.get("path"), str) for item in requests
    ):
        raise validation_error("requests", 'requests must be a list of {"path": "/..."} objects.', code=None)
    if len(requests) > MAX_BATCH_REQUESTS:
        raise validation_error("requests", f"A batch holds at most {MAX_BATCH_REQUESTS} requests.")
    return [item["path"].split("?", 1)[0].strip().strip("/") for item in requests]


def _batch_item(
    call: ApiCall, provider, access: Access, connection: Connection, path: str, system: str, index: int, batch_path: str
):
    """One sub-request answered as {path, code, headers, body}, metered on its own; errors carry the full envelope."""
    read = READS.get(path)
    request_id = str(uuid.uuid5(uuid.UUID(call.request_id), str(index)))
    error = None
    try:
        if read is None:
            raise ApiError("RESOURCE_NOT_FOUND", "PATH")
        _require_scope(access, read.scope)
        with call.metered(read.endpoint, metering_id=call.metering_id(sub_request=index)):
            body, headers = _read(provider, read, connection.vehicle, system)
        code = 200
    except Exception as exc:  # one failed sub-request must not sink the batch
        error = as_api_error(exc, request_id)
        body = error_body(error.type, error.code, request_id=request_id, description=error.description)
        code, headers = body["statusCode"], {"Content-Type": "application/json"}
        if error.retry_after is not None:
            headers["Retry-After"] = str(error.retry_after)
    headers["SC-Request-Id"] = request_id
    item = {"path": f"/{path}", "code": code, "headers": {k.lower(): v for k, v in headers.items()}, "body": body}
    call.record(
        code,
        path=f"{batch_path.removesuffix('/batch')}/{path}",
        request_id=request_id,
        metering_id=call.metering_id(sub_request=index),
        endpoint=read.endpoint if read else "unknown",
        error=error,
    )
    return item


@api_view
def batch(request, call, vehicle_id):
    """POST /vehicles/{id}/batch: several GETs in one request; each is scoped and metered on its own."""
    access = _begin(request, call, "/vehicles/{id}/batch", "POST", vehicle_id)
    parse_uuid(vehicle_id, "vehicle_id")
    paths = _batch_paths(json_body(request))
    connection = _connection(call)
    _claim_idempotency_key(request, call, access)
    check_rate_limits(access.application_id, connection.vehicle_id)  # a batch is one request to the vehicle
    provider = provider_for(connection.vehicle)
    system = unit_system(request)
    call.reported = True  # from here on, each sub-request reports itself
    responses = [
        _batch_item(call, provider, access, connection, path, system, i, request.path) for i, path in enumerate(paths)
    ]
    if any(item["code"] == 200 for item in responses):
        _touch(connection)
    return _json({"responses": responses})


@api_view
def path_not_found(request, call, **kwargs):
    raise ApiError("RESOURCE_NOT_FOUND", "PATH")


@api_view
def version_not_found(request, call, **kwargs):
    raise ApiError("RESOURCE_NOT_FOUND", "VERSION")
