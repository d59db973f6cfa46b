"""What every /v2.0/ view shares: request ids, the error envelope, the safety net, metering, input parsing.

`api_view` wraps each view so that whatever happens the answer is JSON with an `SC-Request-Id`:
ApiError and provider VehicleError become their envelope, anything unexpected is logged and
answers SERVER:INTERNAL, and the metering hook is called exactly once.
"""

import json
import logging
import math
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from requestlog import services as requestlog
from vehicles.api import idempotency, metering_hook
from vehicles.errors import ApiError, error_response

logger = logging.getLogger("vehicles.api")

UNKNOWN_ENDPOINT = "unknown"
DEFAULT_RETRY_AFTER = 60  # seconds, for a provider's rate limit that doesn't say


@dataclass
class ApiCall:
    """What a view learned about the request, for metering; filled in as the view goes."""

    request_id: str
    method: str
    endpoint: str = UNKNOWN_ENDPOINT
    team_id: int | None = None
    application_id: int | None = None
    vehicle_id: int | None = None
    reported: bool = False  # the view already reported (batch: per sub-request)
    test_mode: bool = False  # a test-mode owner's vehicles are never metered
    idempotency_key: str | None = None
    idempotency_record: object | None = None  # the claimed IdempotentRequest, completed when answered
    counted: dict[str, int] = field(default_factory=dict)  # metering id of each request counted billable: its price
    connection: object | None = None  # the grant's live connection to the path's vehicle, found with the token
    error: ApiError | None = None  # what the request answered, if it failed
    started_at: datetime = field(default_factory=timezone.now)
    started: float = field(default_factory=time.perf_counter)

    def authenticated(self, *, team_id: int, application_id: int, test_mode: bool = False) -> None:
        self.team_id, self.application_id, self.test_mode = team_id, application_id, test_mode

    def metering_id(self, sub_request: int | None = None) -> str:
        """The id this request (or batch sub-request) is counted under. Retries with an Idempotency-Key are
        replayed before they get here (vehicles/api/idempotency.py), so the request's own id is enough."""
        return self.request_id if sub_request is None else f"{self.request_id}:{sub_request}"

    @contextmanager
    def metered(self, endpoint: str, *, metering_id: str | None = None):
        """Count a billable call before the block calls the vehicle (430 at a limit); uncount it if the block fails."""
        if self.test_mode or not metering_hook.classify(endpoint, self.method):
            yield
            return
        metering_id = metering_id or self.metering_id()
        reservation = metering_hook.reserve(
            request_id=metering_id,
            team_id=self.team_id,
            application_id=self.application_id,
            vehicle_id=self.vehicle_id,
            endpoint=endpoint,
        )
        try:
            yield
        except BaseException:
            metering_hook.release(reservation)
            raise
        if reservation.counted:
            self.counted[metering_id] = reservation.unit_price_cents

    def record(
        self,
        status: int,
        *,
        path: str,
        request_id: str | None = None,
        metering_id: str | None = None,
        endpoint: str | None = None,
        error: ApiError | None = None,
    ) -> None:
        """Report one answered request (a batch: each item, with its own ids) to metering and to the request log."""
        endpoint = endpoint or self.endpoint
        request_id = request_id or self.request_id
        price = self.counted.get(metering_id or self.metering_id())
        metering_hook.record_request(
            request_id=request_id,
            team_id=self.team_id,
            application_id=self.application_id,
            vehicle_id=self.vehicle_id,
            endpoint=endpoint,
            billable=metering_hook.classify(endpoint, self.method),
            outcome=status,
            counted=price is not None,
        )
        self.log(status, path=path, request_id=request_id, endpoint=endpoint, error=error, price_cents=price)

    def log(self, status: int, *, path: str, request_id=None, endpoint=None, error=None, price_cents=None) -> None:
        """Add the request (or a batch's item) to the team's request log (the dashboard's Logs tab)."""
        if self.team_id is None:
            return  # an unauthenticated request belongs to no team
        request_id = request_id or self.request_id
        error = error or self.error
        requestlog.record(
            team_id=self.team_id,
            occurred_at=self.started_at,
            request_id=request_id,
            batch_request_id=self.request_id if request_id != self.request_id else "",
            application_id=self.application_id,
            vehicle_id=self.vehicle_id,
            method=self.method,
            endpoint=endpoint or self.endpoint,
            path=path,
            status=status,
            error_type=error.type if error else None,
            error_code=error.code if error else None,
            price_cents=price_cents,
            duration_ms=round((time.perf_counter() - self.started) * 1000),
        )


def new_request_id() -> str:
    return str(uuid.uuid4())


def vehicle_error_class() -> type | tuple:
    """providers.base.VehicleError, imported late: a broken provider package must not break URL loading."""
    try:
        from vehicles.providers.base import VehicleError
    except Exception:
        return ()
    return VehicleError


def as_api_error(exc: Exception, request_id: str) -> ApiError:
    """The Smartcar error an exception answers as; unexpected ones are logged and become SERVER:INTERNAL."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestDataTooBig):  # raised by request.body wherever it is first read: 413, not 500
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        description = f"The request body is larger than the {limit:,} bytes this API accepts."
        return ApiError("VALIDATION", "BODY_TOO_LARGE", description=description)
    if isinstance(exc, vehicle_error_class()):
        # A 429 always says when to retry (SDKs read Retry-After); a provider may not know, so default it.
        retry_after = getattr(exc, "retry_after", None) or (DEFAULT_RETRY_AFTER if exc.type == "RATE_LIMIT" else None)
        return ApiError(exc.type, exc.code, description=exc.description, retry_after=retry_after)
    logger.exception("Unhandled error in vehicle API request %s", request_id)
    return ApiError("SERVER", "INTERNAL")


def envelope_for(error: ApiError, request_id: str) -> JsonResponse:
    """The Smartcar error response for an error raised while answering (as_api_error)."""
    return error_response(
        error.type,
        error.code,
        request_id=request_id,
        description=error.description,
        detail=error.detail,
        retry_after=error.retry_after,
    )


def api_view(view):
    """Run `view(request, call, **kwargs)` inside the safety net; see the module docstring."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        # The API reads its few headers from META: request.headers would copy every header of every request.
        idempotency_key = request.META.get("HTTP_IDEMPOTENCY_KEY")
        call = ApiCall(request_id=new_request_id(), method=request.method, idempotency_key=idempotency_key)
        try:
            response = view(request, call, *args, **kwargs)
        except idempotency.Replay as replay:  # answered before under this Idempotency-Key
            response = replay.response()
        except Exception as exc:  # the safety net: nothing leaves as Django's HTML
            call.error = as_api_error(exc, call.request_id)
            response = envelope_for(call.error, call.request_id)
        response["SC-Request-Id"] = call.request_id
        if call.idempotency_record is not None:
            try:
                idempotency.complete(call.idempotency_record, response)
            except Exception:
                logger.exception("Could not store the answer to request %s for its Idempotency-Key", call.request_id)
        try:
            if call.reported:  # a batch: its items reported themselves; the batch itself is only logged
                call.log(response.status_code, path=request.path)
            else:
                call.record(response.status_code, path=request.path)
        except Exception:
            logger.exception("Metering hook failed for request %s", call.request_id)
        return response

    return wrapper


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, as Smartcar writes it: 2018-06-20T01:33:37.078Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validation_error(field: str, message: str, code: str | None = "PARAMETER") -> ApiError:
    return ApiError("VALIDATION", code, detail=[{"field": field, "message": message}])


def parse_uuid(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise validation_error(field, f"{field} must be a UUID.", code=None) from exc


# Query integers beyond this could not reach the database (a 64-bit OFFSET) and mean nothing here anyway.
QUERY_INT_MAX = 2**31 - 1


def query_int(request, name: str, default: int, *, minimum: int, maximum: int = QUERY_INT_MAX) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise validation_error(name, f"{name} must be an integer.") from exc
    if not minimum <= value <= maximum:
        raise validation_error(name, f"{name} must be between {minimum} and {maximum}.")
    return value


def json_body(request) -> dict:
    """The request's JSON object body, or 400 VALIDATION; the Content-Type is not checked (the body is)."""
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise validation_error("body", "The request body must be a JSON object.", code=None) from exc
    if not isinstance(body, dict):
        raise validation_error("body", "The request body must be a JSON object.", code=None)
    return body


def number_field(body: dict, name: str, *, low: float, high: float) -> float:
    """A number (or numeric string, as the Node SDK sends) within [low, high]."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        value = None
    try:
        value = float(value) if value is not None else None
    except (ValueError, OverflowError):  # OverflowError: an integer too large for a float
        value = None
    if value is None or not math.isfinite(value):
        raise validation_error(name, f"{name} must be a number.")
    if not low <= value <= high:
        raise validation_error(name, f"{name} must be between {low:g} and {high:g}.")
    return float(value)


def choice_field(body: dict, name: str, choices: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in choices:
        raise validation_error(name, f"{name} must be one of: [{','.join(choices)}]")
    return value
