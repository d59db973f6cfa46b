"""Personal access tokens: a user's credential for the dashboard's JSON API (`/api/v1/...`) in one team.

A token is shown once and stored as a keyed hash (accounts.credentials), like client secrets. It carries
no permissions of its own: it acts as its user with the role they hold in its team *now*, so demoting or
removing someone takes effect on their tokens at once.
"""

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.audit import record_audit
from accounts.credentials import generate_secret, hash_secret, hint_for
from accounts.models import Membership, PersonalAccessToken

TOKEN_PREFIX = "igp_"
# What the creation form offers, in days; None: never expires.
EXPIRY_CHOICES_DAYS: tuple[int | None, ...] = (30, 90, 365, None)
DEFAULT_EXPIRY_DAYS = 90
# last_used_at is a hint for people, not an access log: one write a minute per token is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def is_expired(token: PersonalAccessToken, now: datetime | None = None) -> bool:
    return token.expires_at is not None and token.expires_at <= (now or timezone.now())


# --- writes ------------------------------------------------------------------------------------------------------


@transaction.atomic
def create_personal_token(
    *, actor: Membership, name: str, expires_in_days: int | None
) -> tuple[PersonalAccessToken, str]:
    """Issue a token for the actor in their team; the plaintext is returned once and never stored."""
    if expires_in_days not in EXPIRY_CHOICES_DAYS:
        raise ValueError(f"Unsupported expiry: {expires_in_days!r} days")
    secret = generate_secret(TOKEN_PREFIX)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    token = PersonalAccessToken.objects.create(
        user=actor.user,
        team=actor.team,
        name=name.strip(),
        token_hash=hash_secret(secret),
        hint=hint_for(secret),
        expires_at=expires_at,
    )
    record_audit(
        team=actor.team,
        actor=actor.user,
        action="personal_token.created",
        target=token.name,
        hint=token.hint,
        expires_at=expires_at.isoformat() if expires_at else None,
    )
    return token, secret


@transaction.atomic
def revoke_personal_token(*, actor: Membership, token: PersonalAccessToken) -> PersonalAccessToken:
    """Revoke one of the actor's own tokens in their team; it stops working at once. Revoking twice is a no-op."""
    if (token.user_id, token.team_id) != (actor.user_id, actor.team_id):
        raise PermissionDenied("You can revoke only your own tokens in this team.")
    updated = PersonalAccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    if updated:
        record_audit(
            team=actor.team, actor=actor.user, action="personal_token.revoked", target=token.name, hint=token.hint
        )
    return token


def touch_personal_token(token: PersonalAccessToken, now: datetime | None = None) -> None:
    """Record a use, at most once a minute (a conditional UPDATE, so concurrent requests write once)."""
    now = now or timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    PersonalAccessToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    token.last_used_at = now


# --- reads -------------------------------------------------------------------------------------------------------


def user_personal_tokens(membership: Membership):
    """The signed-in user's live (not revoked) tokens in the current team, newest first; expired ones included."""
    return PersonalAccessToken.objects.filter(
        user_id=membership.user_id, team_id=membership.team_id, revoked_at__isnull=True
    ).order_by("-created_at", "-id")


def get_user_personal_token(membership: Membership, token_id: int) -> PersonalAccessToken:
    """One of the user's live tokens in the current team, or 404 (anyone else's looks like a missing one)."""
    return get_object_or_404(user_personal_tokens(membership), pk=token_id)


def personal_token_for_secret(secret: str) -> PersonalAccessToken | None:
    """The token with this plaintext, with its user, team and the user's current `role` there (None when
    they are no longer a member): one query, by the unique hash."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    role = Membership.objects.filter(team_id=OuterRef("team_id"), user_id=OuterRef("user_id")).values("role")[:1]
    return (
        PersonalAccessToken.objects.select_related("user", "team")
        .annotate(role=Subquery(role))
        .filter(token_hash=hash_secret(secret))
        .first()
    )
