"""The dashboard's Connect tester: a Connect URL built from a form, and Ignition's own callback page to land on.

A developer trying Connect before writing their callback needs somewhere for the driver to come back to. The
callback page (`connect_test_callback`, at `/connect/callback`) shows what came back (the code and state, or the
error) and the token exchange as a ready `curl`. It is an ordinary redirect URI: Connect only sends drivers to it
once the application has registered it, like any other. It shows nothing the address bar does not already hold,
except whether the code can still be exchanged and for which application (the client id, public anyway); the client
secret is never shown.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.credentials import hash_secret
from accounts.models import Application
from vehicles.models import AuthorizationCode


def callback_uri() -> str:
    """The built-in callback's absolute URL, on SITE_ROOT (what an application registers to use it)."""
    return settings.SITE_ROOT.rstrip("/") + reverse("connect_test_callback")


def connect_url(
    application: Application, *, redirect_uri: str, scopes: list[str], mode: str, make: str = "", single_select=False
) -> str:
    """The Connect URL the SDKs' getAuthUrl would build for these choices, with a fresh state."""
    query = {
        "response_type": "code",
        "client_id": str(application.client_id),
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "mode": mode,
        "state": secrets.token_urlsafe(8),
    }
    if make:
        query["make"] = make
    if single_select:
        query["single_select"] = "true"
    return settings.SITE_ROOT.rstrip("/") + reverse("connect_authorize") + "?" + urlencode(query)


@dataclass(frozen=True)
class CodeStatus:
    state: str  # "ready" (can be exchanged), "used", "expired", or "unknown"
    application: Application | None = None
    expires_at: datetime | None = None
    vehicles: int = 0


def code_status(code: str) -> CodeStatus:
    """What an authorization code is now: one query, by its hash (codes are stored hashed)."""
    found = (
        AuthorizationCode.objects.select_related("application").filter(code_hash=hash_secret(code)).first()
        if code
        else None
    )
    if found is None:
        return CodeStatus("unknown")
    if found.used_at is not None:
        state = "used"
    elif found.expires_at <= timezone.now():
        state = "expired"
    else:
        state = "ready"
    return CodeStatus(state, found.application, found.expires_at, found.vehicles.count())
