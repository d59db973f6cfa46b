"""Smartcar Connect's flow: checking the authorize request, its server-side state, and the redirect back.

A flow lives in the browser's session under a random id that the pages carry (URL and hidden field),
so two tabs run two flows without clashing and nothing the user could edit decides what is granted.
"""

import secrets
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.http import HttpResponse

from accounts.models import Application
from vehicles.models import Mode
from vehicles.scopes import DEFAULT_SCOPES, parse_scope_param

SESSION_KEY = "connect_flows"
FLOW_TTL_SECONDS = 30 * 60
MAX_FLOWS_PER_SESSION = 10
TRUE_VALUES = {"true", "1", "yes"}


class ConnectPageError(Exception):
    """The request cannot be trusted enough to redirect (unknown client, unregistered redirect URI…): show a page."""


@dataclass
class Flow:
    """One Connect attempt. `make` is chosen on the brand page (or by `make=`); `owner_id` is set by sign-in."""

    id: str
    client_id: str
    redirect_uri: str
    scopes: list[str]
    required_scopes: list[str]
    state: str | None
    mode: str
    make: str | None = None
    single_select: bool = False
    single_select_vin: str | None = None
    user: str | None = None
    approval_prompt: str = "auto"
    owner_id: int | None = None
    started_at: float = field(default_factory=time.time)


class ConnectRedirectError(Exception):
    """An error for the application, sent to the flow's verified redirect URI as `error` and `error_description`."""

    def __init__(self, flow: Flow, error: str, description: str):
        super().__init__(description)
        self.flow = flow
        self.error = error
        self.description = description


def _application_for(client_id: str | None) -> Application:
    try:
        application = Application.objects.filter(client_id=client_id).first() if client_id else None
    except ValidationError:  # not a UUID: just an unknown client
        application = None
    if application is None:
        raise ConnectPageError("This application is not registered. Check the client_id in the Connect URL.")
    return application


def _redirect_uri_for(application: Application, redirect_uri: str | None) -> str:
    registered = list(
        application.redirect_uris.order_by("-is_default", "created_at", "id").values_list("uri", flat=True)
    )
    if not redirect_uri:
        if not registered:
            raise ConnectPageError(f"{application.name} has no redirect URI registered yet.")
        return registered[0]
    if redirect_uri not in registered:
        raise ConnectPageError(f"The redirect URI is not registered for {application.name}.")
    return redirect_uri


def start_flow(params, *, make_names: list[str]) -> tuple[Application, Flow]:
    """Check a GET /oauth/authorize query; raises ConnectPageError, or ConnectRedirectError carrying the flow."""
    application = _application_for(params.get("client_id"))
    redirect_uri = _redirect_uri_for(application, params.get("redirect_uri"))
    if params.get("response_type") != "code":
        raise ConnectPageError("The Connect URL must have response_type=code.")
    mode = params.get("mode") or Mode.LIVE
    if mode not in Mode.values:
        raise ConnectPageError("The Connect URL's mode must be live, test or simulated.")
    vin = (params.get("single_select_vin") or "").strip().upper() or None
    make = (params.get("make") or "").strip().upper()
    flow = Flow(
        id=secrets.token_urlsafe(16),
        client_id=str(application.client_id),
        redirect_uri=redirect_uri,
        scopes=[],
        required_scopes=[],
        state=params.get("state"),
        mode=mode,
        make=make if make in make_names else None,  # an unknown brand bypass shows the brand list
        single_select=vin is not None or (params.get("single_select") or "").lower() in TRUE_VALUES,
        single_select_vin=vin,
        user=params.get("user"),
        approval_prompt=params.get("approval_prompt") or "auto",
    )
    scopes, required, unknown = parse_scope_param(params.get("scope"))
    if unknown:
        raise ConnectRedirectError(flow, "invalid_scope", f"Unknown permission: {', '.join(unknown)}.")
    flow.scopes = scopes or list(DEFAULT_SCOPES)
    flow.required_scopes = required
    return application, flow


def save_flow(session, flow: Flow) -> None:
    flows = {k: v for k, v in session.get(SESSION_KEY, {}).items() if _is_fresh(v) and k != flow.id}
    # Keep the newest few: a browser that starts many flows does not grow its session without bound.
    newest = sorted(flows.items(), key=lambda item: item[1]["started_at"])[-(MAX_FLOWS_PER_SESSION - 1) :]
    session[SESSION_KEY] = {**dict(newest), flow.id: asdict(flow)}


def load_flow(session, flow_id: str | None) -> Flow | None:
    data = session.get(SESSION_KEY, {}).get(flow_id or "")
    if data is None or not _is_fresh(data):
        return None
    try:
        return Flow(**data)
    except TypeError:  # a session written by an older version of Flow
        return None


def end_flow(session, flow: Flow) -> None:
    flows = session.get(SESSION_KEY, {})
    if flows.pop(flow.id, None) is not None:
        session[SESSION_KEY] = flows


def _is_fresh(data: dict) -> bool:
    return time.time() - data.get("started_at", 0) < FLOW_TTL_SECONDS


def redirect_to_client(redirect_uri: str, params: dict[str, str | None]) -> HttpResponse:
    """302 to the application's registered URI, keeping its own query parameters (None values are left out).

    Built by hand: HttpResponseRedirect refuses the custom `sc<client_id>://` schemes of mobile apps,
    and this URI was checked against the application's registered list.
    """
    parts = urlsplit(redirect_uri)
    ours = {k: v for k, v in params.items() if v is not None}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    query += list(ours.items())
    response = HttpResponse(status=302)
    response["Location"] = urlunsplit(parts._replace(query=urlencode(query)))
    response["Cache-Control"] = "no-store"
    return response


def redirect_error(flow: Flow, error: str, description: str, **extra) -> HttpResponse:
    return redirect_to_client(
        flow.redirect_uri, {"error": error, "error_description": description, **extra, "state": flow.state}
    )
