"""Reads for accounts: every team-owned query takes the team, so nothing leaks across tenants."""

import uuid

from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.credentials import hash_secret, secret_matches
from accounts.models import Application, AuditEvent, Invitation, Membership, RedirectURI, Team, User


def user_has_mfa(user: User) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def memberships_for_user(user: User):
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name", "team_id")


def membership_for(user: User, team_id) -> Membership | None:
    return Membership.objects.filter(user=user, team_id=team_id).select_related("team").first()


def invitations_waiting_for(user: User):
    """Pending invitations to teams the user is not in yet, sent to one of the user's verified addresses (a new
    sign-up who was invited before having an account is told on the Overview)."""
    from allauth.account.models import EmailAddress

    addresses = [
        e.lower() for e in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    ]
    return (
        Invitation.objects.filter(status=Invitation.Status.PENDING, expires_at__gt=timezone.now())
        .annotate(lowered=Lower("email"))
        .filter(lowered__in=addresses)
        .exclude(team__memberships__user=user)
        .select_related("team", "invited_by")
        .order_by("created_at")
    )


def team_members(team: Team):
    return Membership.objects.filter(team=team).select_related("user").order_by("user__email")


def pending_invitations(team: Team):
    return Invitation.objects.filter(team=team, status=Invitation.Status.PENDING, expires_at__gt=timezone.now())


def team_applications(team: Team):
    return (
        Application.objects.filter(team=team)
        .annotate(redirect_uri_count=Count("redirect_uris", distinct=True))
        .order_by("name", "id")
    )


def team_has_redirect_uri(team: Team) -> bool:
    return RedirectURI.objects.filter(application__team=team).exists()


def get_team_application(team: Team, client_id) -> Application:
    """The team's application, or 404 (another team's id looks like a missing one)."""
    return get_object_or_404(Application.objects.select_related("team"), team=team, client_id=client_id)


def active_client_secrets(application: Application):
    now = timezone.now()
    return application.client_secrets.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def verify_client_credentials(*, client_id, client_secret: str) -> Application | None:
    """The application if the secret is one of its currently valid secrets, else None."""
    try:
        client_id = uuid.UUID(str(client_id))
    except ValueError:
        return None
    application = Application.objects.filter(client_id=client_id).first()
    if application is None or not client_secret:
        return None
    matched = False
    for secret_hash in active_client_secrets(application).values_list("secret_hash", flat=True):
        matched |= secret_matches(client_secret, secret_hash)
    return application if matched else None


def application_for_management_token(token: str) -> Application | None:
    if not token:
        return None
    return Application.objects.filter(management_token__token_hash=hash_secret(token)).first()


def team_audit_events(team: Team):
    return AuditEvent.objects.filter(team=team).select_related("actor").order_by("-created_at", "-id")


def recent_audit_events(team: Team, limit: int = 20):
    return team_audit_events(team)[:limit]
