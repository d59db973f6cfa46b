"""OAuth credentials of the vehicle API: codes, access and refresh tokens, stored as keyed hashes.

Lifetimes follow Smartcar: codes 10 minutes and single use, access tokens 2 hours,
refresh tokens 60 days, and a used refresh token dies 1 minute after its first use
(so a client that retries a refresh in flight is not locked out). A code exchanged twice
revokes its grant: every token issued from it, before or after, stops working.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.credentials import hash_secret
from accounts.models import Application
from vehicles.connections import revoke_connections
from vehicles.models import (
    AccessToken,
    AuthorizationCode,
    Connection,
    Grant,
    RefreshToken,
    SimulatedOwner,
    SimulatedVehicle,
)

CODE_TTL = timedelta(minutes=10)
ACCESS_TTL = timedelta(hours=2)
REFRESH_TTL = timedelta(days=60)
REFRESH_REUSE_WINDOW = timedelta(minutes=1)


class OAuthError(Exception):
    """An RFC 6749 error: answered as {"error", "error_description"} with `status`."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int = int(ACCESS_TTL.total_seconds())

    def as_response(self) -> dict:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


def _new_token() -> str:
    # UUID-shaped like Smartcar's; 122 random bits from the OS CSPRNG (uuid4).
    return str(uuid.uuid4())


def create_authorization_code(
    *, application: Application, owner: SimulatedOwner, vehicles, scopes: list[str], redirect_uri: str
) -> str:
    """Record a consent; returns the code to send back to the redirect URI."""
    code = _new_token()
    authorization = AuthorizationCode.objects.create(
        code_hash=hash_secret(code),
        application=application,
        owner=owner,
        scopes=scopes,
        redirect_uri=redirect_uri,
        expires_at=timezone.now() + CODE_TTL,
    )
    authorization.vehicles.set(vehicles)
    return code


def _issue_pair(grant: Grant) -> TokenPair:
    now = timezone.now()
    access, refresh = _new_token(), _new_token()
    AccessToken.objects.create(grant=grant, token_hash=hash_secret(access), expires_at=now + ACCESS_TTL)
    RefreshToken.objects.create(grant=grant, token_hash=hash_secret(refresh), expires_at=now + REFRESH_TTL)
    return TokenPair(access_token=access, refresh_token=refresh)


def exchange_code(*, application: Application, code: str, redirect_uri: str | None) -> TokenPair:
    """Trade a Connect code for tokens; connects its vehicles to the application. `redirect_uri` None: not sent.

    A code works once. Presented again, it is refused and the grant its exchange created is revoked
    (RFC 6749 §4.1.2: someone else may hold the code). The code's row lock orders concurrent exchanges:
    one gets tokens, the other finds the code used and revokes them.
    """
    with transaction.atomic():
        authorization = (
            AuthorizationCode.objects.select_for_update()
            .filter(code_hash=hash_secret(code or ""), application=application)
            .first()
        )
        now = timezone.now()
        if authorization is not None and authorization.used_at is not None:
            revoke_grant(authorization.grant_id)  # committed with the atomic block, before the error is raised
        elif authorization is not None and authorization.expires_at > now:
            if redirect_uri is not None and redirect_uri != authorization.redirect_uri:
                raise OAuthError("invalid_grant", f"Unauthorized redirect_uri: {redirect_uri}")
            return _redeem(authorization, now)
    raise OAuthError("invalid_grant", f"Invalid code: {code}.")


def _redeem(authorization: AuthorizationCode, now) -> TokenPair:
    grant = Grant.objects.create(
        application_id=authorization.application_id, owner_id=authorization.owner_id, scopes=authorization.scopes
    )
    authorization.used_at, authorization.grant = now, grant
    authorization.save(update_fields=["used_at", "grant"])
    _connect(grant, list(authorization.vehicles.values_list("pk", flat=True)))
    return _issue_pair(grant)


def _connect(grant: Grant, vehicle_ids: list[int]) -> None:
    """One live connection per vehicle and application, as Smartcar keeps: Connect run again for a vehicle already
    connected moves that connection to the new grant (its new permissions and tokens; the old tokens no longer reach
    the vehicle), keeping its history (connected since, last request). Other vehicles get a new connection. The
    vehicles' rows are locked first, so two exchanges for the same vehicle at once take turns."""
    list(SimulatedVehicle.objects.select_for_update().filter(pk__in=vehicle_ids).order_by("pk").values_list("pk"))
    live = Connection.objects.filter(
        application_id=grant.application_id, vehicle_id__in=vehicle_ids, revoked_at__isnull=True
    )
    kept, extra = {}, []
    for pk, vehicle_id in live.order_by("vehicle_id", "-connected_at", "-id").values_list("pk", "vehicle_id"):
        if vehicle_id in kept:
            extra.append(pk)
        else:
            kept[vehicle_id] = pk
    if extra:  # a second live row a Connect before this rule left: the newest one stays
        revoke_connections(Connection.objects.filter(pk__in=extra))
    Connection.objects.filter(pk__in=kept.values()).update(grant=grant)
    Connection.objects.bulk_create(
        Connection(grant=grant, application_id=grant.application_id, vehicle_id=vehicle_id)
        for vehicle_id in vehicle_ids
        if vehicle_id not in kept
    )


def revoke_grant(grant_id: int | None) -> None:
    """Every access and refresh token of the grant stops working, those refreshed later too; its vehicles disconnect."""
    if grant_id is None:  # a code used before grants were recorded on it, or whose grant is gone
        return
    Grant.objects.filter(pk=grant_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    revoke_connections(Connection.objects.filter(grant_id=grant_id))


def refresh_tokens(*, application: Application, refresh_token: str) -> TokenPair:
    """Rotate: a new access and refresh token; the used refresh token dies one minute later."""
    with transaction.atomic():
        token = (
            RefreshToken.objects.select_for_update()
            .select_related("grant")
            .filter(token_hash=hash_secret(refresh_token or ""), grant__application=application, grant__revoked_at=None)
            .first()
        )
        now = timezone.now()
        if token is None or token.expires_at <= now or (token.used_at and token.used_at + REFRESH_REUSE_WINDOW <= now):
            raise OAuthError("invalid_grant", f"Invalid refresh_token: {refresh_token}.")
        if token.used_at is None:
            token.used_at = now
            token.save(update_fields=["used_at"])
        return _issue_pair(token.grant)
