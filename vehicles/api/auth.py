"""Who is calling: a Bearer access token (vehicle API) or a Basic management token (management API).

Anything missing, malformed, unknown or expired answers 401 AUTHENTICATION (code null).
"""

import base64
import binascii
import uuid

from accounts.models import Application
from accounts.selectors import application_for_management_token
from vehicles.api.lookup import Lookup, lookup
from vehicles.errors import ApiError


def _credentials(request, scheme: str) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")  # META, not request.headers: see vehicles/api/base.py
    given, _, credentials = header.strip().partition(" ")
    if given.lower() != scheme or not credentials.strip():
        raise ApiError("AUTHENTICATION")
    return credentials.strip()


def bearer_lookup(request, vehicle_id: uuid.UUID | None = None) -> Lookup:
    """The access an `Authorization: Bearer <token>` header carries and, if `vehicle_id` is given, the token's
    live connection to that vehicle (one query, vehicles/api/lookup.py)."""
    found = lookup(_credentials(request, "bearer"), vehicle_id)
    if found.access is None:
        raise ApiError("AUTHENTICATION")
    return found


def management_application(request) -> Application:
    """The application whose management token is in `Authorization: Basic base64("default:" + token)`.

    The SDKs always send the user name "default"; it carries nothing, so it is not checked.
    """
    try:
        decoded = base64.b64decode(_credentials(request, "basic"), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError("AUTHENTICATION") from exc
    _user, colon, token = decoded.partition(":")
    application = application_for_management_token(token) if colon else None
    if application is None:
        raise ApiError("AUTHENTICATION")
    return application
