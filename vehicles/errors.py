"""The Smartcar v2.0 error envelope. Every API error, whatever raised it, leaves through `error_response`."""

from django.http import JsonResponse

DOC_BASE = "https://smartcar.com/docs/errors/api-errors"

# (type, code) -> (HTTP status, description, resolution type)
ERRORS: dict[tuple[str, str | None], tuple[int, str, str | None]] = {
    ("AUTHENTICATION", None): (
        401,
        "The authorization header is missing or malformed, or it contains invalid or expired authentication "
        "credentials. Please check for missing parameters, spelling and casing mistakes, and other syntax issues.",
        None,
    ),
    ("PERMISSION", None): (
        403,
        "Your application has insufficient permissions to access the requested resource. Please prompt the user "
        "to re-authenticate using Smartcar Connect.",
        "REAUTHENTICATE",
    ),
    ("VALIDATION", None): (
        400,
        "Request invalid or malformed. Please check for missing parameters, spelling and casing mistakes, and "
        "other syntax issues.",
        None,
    ),
    # Ours, not Smartcar's (it has no Idempotency-Key, and no body limit it documents); before PARAMETER, which
    # the OpenAPI schema shows as the example of a 400.
    ("VALIDATION", "IDEMPOTENCY_KEY_MISMATCH"): (
        400,
        "This Idempotency-Key was used in the last 24 hours with different parameters (method, path, query, "
        "sc-unit-system header or body). A key can only be retried with the parameters it was first used with; "
        "use a new key for a different request.",
        None,
    ),
    ("VALIDATION", "BODY_TOO_LARGE"): (413, "The request body is larger than this API accepts.", None),
    ("VALIDATION", "PARAMETER"): (400, "A parameter in the request has an invalid value.", None),
    ("RESOURCE_NOT_FOUND", "PATH"): (404, "The requested resource does not exist. Please check the URL.", None),
    ("RESOURCE_NOT_FOUND", "VERSION"): (404, "The requested API version does not exist.", None),
    ("RATE_LIMIT", "SMARTCAR_API"): (
        429,
        "Your application has exceeded its rate limit. Please retry your request in a few minutes.",
        "RETRY_LATER",
    ),
    ("RATE_LIMIT", "VEHICLE"): (
        429,
        "You have reached the throttling rate limit for this vehicle. Please see the retry-after header (seconds) "
        "for when to retry the request.",
        "RETRY_LATER",
    ),
    ("BILLING", "VEHICLE_LIMIT"): (
        430,
        "You have exceeded your active vehicle limit for the current billing period. Please log into the "
        "Ignition dashboard and visit the Billing tab to learn more.",
        "CONTACT_SUPPORT",
    ),
    ("BILLING", "VEHICLE_REQUEST_LIMIT"): (
        430,
        # Both reasons a period takes no more billable requests answer this code: its allowance is used up, or it
        # was closed early; billing.refusals gives each refusal its own description, this is the fallback.
        "No more billable API requests are allowed in the current billing period. Please log into the Ignition "
        "dashboard and visit the Billing tab to learn more.",
        "CONTACT_SUPPORT",
    ),
    ("BILLING", "ACCOUNT_SUSPENDED"): (
        430,
        "Your account is past due and has been suspended. Please pay the open invoice on the Billing tab of the "
        "Ignition dashboard.",
        "CONTACT_SUPPORT",
    ),
    ("BILLING", "INVALID_PLAN"): (
        430,
        "The feature you are trying to use is not included in your current pricing plan.",
        "CONTACT_SUPPORT",
    ),
    ("COMPATIBILITY", "MAKE_NOT_COMPATIBLE"): (
        501,
        "Ignition is not yet compatible with this vehicle's make in the country you specified.",
        None,
    ),
    ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE"): (501, "The vehicle is incapable of performing your request.", None),
    ("COMPATIBILITY", "SMARTCAR_NOT_CAPABLE"): (
        501,
        "Ignition does not yet support this feature for this vehicle.",
        None,
    ),
    ("VEHICLE_STATE", "ASLEEP"): (
        409,
        "The vehicle is in a sleep state and temporarily unable to perform your request.",
        "RETRY_LATER",
    ),
    ("VEHICLE_STATE", "IN_MOTION"): (
        409,
        "The vehicle is currently in motion and unable to perform your request.",
        "RETRY_LATER",
    ),
    ("VEHICLE_STATE", "UNREACHABLE"): (
        409,
        "The vehicle is outside of network coverage and unable to perform your request.",
        "RETRY_LATER",
    ),
    ("VEHICLE_STATE", "CHARGING_PLUG_NOT_CONNECTED"): (
        409,
        "The charging plug is not connected to the vehicle.",
        None,
    ),
    ("VEHICLE_STATE", "CHARGING_PLUG_CONNECTED"): (
        409,
        "The charging plug is connected to the vehicle, which prevents this request.",
        None,
    ),
    ("VEHICLE_STATE", "CHARGING_IN_PROGRESS"): (
        409,
        "The vehicle is currently charging and unable to perform your request.",
        None,
    ),
    ("VEHICLE_STATE", "CHARGE_FAULT"): (
        409,
        "The vehicle reported a charging fault and is unable to perform your request.",
        None,
    ),
    ("VEHICLE_STATE", "UNKNOWN"): (
        409,
        "The vehicle was unable to perform your request due to an unknown issue.",
        "RETRY_LATER",
    ),
    ("UPSTREAM", "UNKNOWN_ISSUE"): (
        502,
        "An unknown issue occurred with the vehicle's upstream service. Please retry your request at a later time.",
        "RETRY_LATER",
    ),
    ("UPSTREAM", "NO_RESPONSE"): (
        502,
        "The vehicle's upstream service did not respond. Please retry your request at a later time.",
        "RETRY_LATER",
    ),
    ("UPSTREAM", "INVALID_DATA"): (
        502,
        "Received invalid data from an upstream source. Please retry your request at a later time.",
        "RETRY_LATER",
    ),
    ("SERVER", "INTERNAL"): (
        500,
        "An internal error has occurred. Our team has been notified and is working to resolve this issue.",
        "RETRY_LATER",
    ),
}


def _doc_url(type_: str, code: str | None) -> str:
    anchor = (code or "null").lower().replace("_", "-")
    return f"{DOC_BASE}/{type_.lower().replace('_', '-')}-errors#{anchor}"


def error_body(
    type_: str, code: str | None, *, request_id: str, description: str | None = None, detail: list | None = None
) -> dict:
    """The JSON envelope for (type, code); unknown pairs become SERVER:INTERNAL rather than failing."""
    if (type_, code) not in ERRORS:
        type_, code = "SERVER", "INTERNAL"
    status, default_description, resolution = ERRORS[(type_, code)]
    body = {
        "type": type_,
        "code": code,
        "description": description or default_description,
        "docURL": _doc_url(type_, code),
        "statusCode": status,
        "requestId": request_id,
        "resolution": {"type": resolution},
    }
    if detail:
        body["detail"] = detail
    return body


def error_response(
    type_: str,
    code: str | None = None,
    *,
    request_id: str,
    description: str | None = None,
    detail: list | None = None,
    retry_after: int | None = None,
) -> JsonResponse:
    body = error_body(type_, code, request_id=request_id, description=description, detail=detail)
    response = JsonResponse(body, status=body["statusCode"])
    response["SC-Request-Id"] = request_id
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


class ApiError(Exception):
    """Raise anywhere in an API view to answer with the Smartcar envelope."""

    def __init__(self, type_: str, code: str | None = None, *, description=None, detail=None, retry_after=None):
        super().__init__(f"{type_}:{code}")
        self.type = type_
        self.code = code
        self.description = description
        self.detail = detail
        self.retry_after = retry_after
