"""Smartcar Connect pages (brand, sign-in, consent) and the OAuth token endpoint.

Connect answers untrusted requests (unknown client, unregistered redirect URI, bad response_type or
mode) with an error page and never a redirect; once the redirect URI is verified, errors go back to
it as `error` + `error_description` + `state`, like Smartcar.
"""

import base64
import binascii
import functools
import json
from urllib.parse import urlencode

from allauth.core import ratelimit
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Application
from accounts.selectors import verify_client_credentials
from vehicles import catalog, simulator
from vehicles.connect import flow as flows
from vehicles.connect.forms import BrandForm, ConsentForm, OwnerSignInForm
from vehicles.models import Mode, SimulatedOwner
from vehicles.providers import get_provider
from vehicles.scopes import PERMISSIONS
from vehicles.tokens import OAuthError, create_authorization_code, exchange_code, refresh_tokens

EXPIRED_FLOW = "This Connect session has expired or is not valid. Go back to the application and start again."


def _make_names() -> list[str]:
    return list(catalog.make_names())


def _error_page(request, message: str, *, application: Application | None = None) -> HttpResponse:
    context = {"message": message, "application": application}
    return render(request, "vehicles/connect/error.html", context, status=400)


def _step(url_name: str, flow: flows.Flow):
    return redirect(f"{reverse(url_name)}?{urlencode({'flow': flow.id})}")


@never_cache
@require_GET
def authorize(request):
    """GET /oauth/authorize: check the Connect URL, start a flow, and send the browser to its first page."""
    try:
        application, flow = flows.start_flow(request.GET, make_names=_make_names())
    except flows.ConnectPageError as error:
        return _error_page(request, str(error))
    except flows.ConnectRedirectError as error:
        return flows.redirect_error(error.flow, error.error, error.description)
    flows.save_flow(request.session, flow)
    return _step("connect_signin" if flow.make else "connect_brand", flow)


def _with_flow(view):
    """Load the flow named by the form (or URL) and its application, or show the expired-session page."""

    @functools.wraps(view)
    def wrapper(request):
        flow = flows.load_flow(request.session, request.POST.get("flow") or request.GET.get("flow"))
        application = flow and Application.objects.filter(client_id=flow.client_id).first()
        # Re-checked on every step: a redirect URI removed in the dashboard mid-flow no longer receives codes.
        if not application or not application.redirect_uris.filter(uri=flow.redirect_uri).exists():
            return _error_page(request, EXPIRED_FLOW)
        return view(request, flow, application)

    return never_cache(require_http_methods(["GET", "POST"])(wrapper))


def _render(request, template: str, flow: flows.Flow, application: Application, status=200, **context):
    context.update(flow=flow, application=application)
    return render(request, f"vehicles/connect/{template}", context, status=status)


@_with_flow
def brand(request, flow, application):
    form = BrandForm(request.POST or None, make_names=_make_names())
    if request.method == "POST" and form.is_valid():
        flow.make, flow.owner_id = form.cleaned_data["make"], None
        flows.save_flow(request.session, flow)
        return _step("connect_signin", flow)
    return _render(request, "brand.html", flow, application, form=form)


SIGN_IN_THROTTLED = "Too many failed sign-in attempts for this account. Wait a few minutes and try again."
TEST_ACCOUNTS_THROTTLED = (
    "Too many new test-mode accounts for this application. Wait a while, or sign in with an email address "
    "you have used in test mode before."
)


class SignInThrottled(Exception):
    """A rate limit refused the sign-in: the page answers 429 with the message."""


def _authenticate(
    request, flow: flows.Flow, application: Application, email: str, password: str
) -> SimulatedOwner | None:
    """The brand account for these credentials; failed live sign-ins are rate limited like the dashboard's."""
    if flow.mode == Mode.TEST:
        return _test_mode_owner(request, flow, application, email)
    throttle = {"action": "connect_login_failed", "key": f"{flow.make}:{email.strip().lower()}"}
    if not ratelimit.consume(request, dry_run=True, **throttle):
        raise SignInThrottled(SIGN_IN_THROTTLED)
    owner = simulator.authenticate_owner(make=flow.make, email=email, password=password, mode=flow.mode)
    if owner is None:
        ratelimit.consume(request, **throttle)
    return owner


def _test_mode_owner(request, flow: flows.Flow, application: Application, email: str) -> SimulatedOwner:
    """Any email signs in; only a new test account (it creates vehicles) spends the rate limit."""
    throttle = {"action": "connect_test_account", "key": str(application.client_id)}
    owner = simulator.test_mode_owner(
        application=application, email=email, make=flow.make, may_create=lambda: ratelimit.consume(request, **throttle)
    )
    if owner is None:
        raise SignInThrottled(TEST_ACCOUNTS_THROTTLED)
    return owner


def _vehicles_for(flow: flows.Flow, owner: SimulatedOwner) -> list:
    vehicles = owner.vehicles.order_by("id")
    if flow.single_select_vin:
        vehicles = vehicles.filter(vin__iexact=flow.single_select_vin)
    return list(vehicles)


def _missing_permissions(flow: flows.Flow, vehicle) -> list[str]:
    """The permissions the app requires (`required:` in its scope) that this vehicle cannot give."""
    supported = get_provider(vehicle).supported_permissions(vehicle)
    return [name for name in flow.required_scopes if name not in supported]


def _incompatible_error(flow: flows.Flow, vehicle) -> HttpResponse:
    """Smartcar's `vehicle_incompatible`, naming the vehicle so the app can tell its user which one."""
    missing = ", ".join(_missing_permissions(flow, vehicle))
    description = f"The vehicle is not compatible with the permissions this application requires: {missing}."
    return flows.redirect_error(
        flow, "vehicle_incompatible", description, vin=vehicle.vin, make=vehicle.make, model=vehicle.model,
        year=vehicle.year,
    )  # fmt: skip


def _no_vehicles_description(flow: flows.Flow) -> str:
    if flow.single_select_vin:
        return f"No vehicle with VIN {flow.single_select_vin} is associated with this account."
    return "No vehicles are associated with this account."


@_with_flow
def signin(request, flow, application):
    if not flow.make:
        return _step("connect_brand", flow)
    form, status = OwnerSignInForm(request.POST or None), 200
    if request.method == "POST" and form.is_valid():
        try:
            owner = _authenticate(request, flow, application, form.cleaned_data["email"], form.cleaned_data["password"])
        except simulator.SimulatorError as error:
            owner = None
            form.add_error(None, str(error))
        except SignInThrottled as throttled:
            owner, status = None, 429
            form.add_error(None, str(throttled))
        else:
            if owner is None:
                form.add_error(None, "The email or password is incorrect.")
        if owner is not None:
            vehicles = _vehicles_for(flow, owner)
            if not vehicles:
                flows.end_flow(request.session, flow)
                return flows.redirect_error(flow, "no_vehicles", _no_vehicles_description(flow))
            if all(_missing_permissions(flow, vehicle) for vehicle in vehicles):
                flows.end_flow(request.session, flow)
                return _incompatible_error(flow, vehicles[0])
            flow.owner_id = owner.pk
            flows.save_flow(request.session, flow)
            return _step("connect_consent", flow)
    context = {"form": form, "make_name": catalog.display_name(flow.make)}
    context["test_mode_max_vehicles"] = settings.CONNECT_TEST_MODE_MAX_VEHICLES
    return _render(request, "signin.html", flow, application, status=status, **context)


@_with_flow
def consent(request, flow, application):
    owner = SimulatedOwner.objects.filter(pk=flow.owner_id).first() if flow.owner_id else None
    if owner is None:
        return _step("connect_signin", flow)
    if request.method == "POST" and request.POST.get("decision") == "deny":
        flows.end_flow(request.session, flow)
        return flows.redirect_error(flow, "access_denied", "User denied access to application.")
    vehicles, incompatible = [], []
    for vehicle in _vehicles_for(flow, owner):
        missing = _missing_permissions(flow, vehicle)
        (incompatible if missing else vehicles).append((vehicle, missing) if missing else vehicle)
    form = ConsentForm(request.POST or None, vehicles=vehicles, single_select=flow.single_select)
    if request.method == "POST" and form.is_valid():
        code = create_authorization_code(
            application=application,
            owner=owner,
            vehicles=form.cleaned_data["vehicles"],
            scopes=flow.scopes,
            redirect_uri=flow.redirect_uri,
        )
        flows.end_flow(request.session, flow)
        return flows.redirect_to_client(flow.redirect_uri, {"code": code, "state": flow.state})
    permissions = [(name, PERMISSIONS[name], name in flow.required_scopes) for name in flow.scopes]
    context = {
        "form": form,
        "owner": owner,
        "permissions": permissions,
        "incompatible": [(vehicle, [PERMISSIONS[name] for name in missing]) for vehicle, missing in incompatible],
        "make_name": catalog.display_name(flow.make),
    }
    return _render(request, "consent.html", flow, application, **context)


# --- POST /oauth/token -------------------------------------------------------------------------------------------


def _oauth_json(body: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _token_params(request) -> dict[str, str]:
    """The form body (or a JSON object, for lenient clients) as strings."""
    try:
        if request.content_type == "application/json":
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
            return {k: v for k, v in body.items() if isinstance(v, str)}
        return {k: request.POST.get(k) for k in request.POST}
    except (ValueError, MultiPartParserError, SuspiciousOperation):
        raise OAuthError("invalid_request", "The request body could not be parsed.") from None


def _uses_basic(request) -> bool:
    return request.headers.get("Authorization", "").split(" ", 1)[0].lower() == "basic"


def _client_credentials(request, params: dict[str, str]) -> tuple[str | None, str | None]:
    """HTTP Basic (what the SDKs send), else client_id/client_secret in the body (RFC 6749 §2.3.1).

    A secret in the query string is refused, with or without Basic: URLs end up in access logs and proxies.
    """
    if "client_secret" in request.GET:
        raise OAuthError(
            "invalid_request",
            "client_secret must not be sent in the query string: use HTTP Basic authentication or the request body.",
        )
    if _uses_basic(request):
        encoded = request.headers["Authorization"].split(" ", 1)[-1].strip()
        try:
            client_id, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, ValueError):
            client_id, sep, secret = "", "", ""
        if not sep:
            raise OAuthError("invalid_client", "Invalid client credentials.", status=401)
        return client_id, secret
    return params.get("client_id"), params.get("client_secret")


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise OAuthError("invalid_request", f'Missing required parameter: "{name}".')
    return value


def _issue(application: Application, params: dict[str, str]):
    grant_type = _required(params, "grant_type")
    if grant_type == "authorization_code":
        code = _required(params, "code")
        redirect_uri = params.get("redirect_uri")
        # The Node SDK sends the literal "undefined" when no redirect URI was configured: "not sent".
        redirect_uri = None if redirect_uri in (None, "", "undefined") else redirect_uri
        return exchange_code(application=application, code=code, redirect_uri=redirect_uri)
    if grant_type == "refresh_token":
        return refresh_tokens(application=application, refresh_token=_required(params, "refresh_token"))
    raise OAuthError("unsupported_grant_type", f"Unsupported grant_type: {grant_type}.")


@csrf_exempt
def token(request):
    """POST /oauth/token: exchange a Connect code, or rotate a refresh token (form body, Basic client auth)."""
    if request.method != "POST":
        response = _oauth_json({"error": "invalid_request", "error_description": "Use POST."}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        params = _token_params(request)
        client_id, client_secret = _client_credentials(request, params)
        application = verify_client_credentials(client_id=client_id, client_secret=client_secret or "")
        if application is None:
            raise OAuthError("invalid_client", "Invalid client credentials.", status=401)
        pair = _issue(application, params)
    except OAuthError as error:
        response = _oauth_json({"error": error.error, "error_description": error.description}, status=error.status)
        if error.status == 401 and _uses_basic(request):
            response["WWW-Authenticate"] = 'Basic realm="oauth"'
        return response
    return _oauth_json(pair.as_response())
