"""Application services (writes): lifecycle, client secrets, redirect URIs, management token."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.audit import record_audit
from accounts.credentials import generate_secret, hash_secret, hint_for
from accounts.exceptions import TeamRuleError
from accounts.models import Application, ClientSecret, ManagementToken, Membership, RedirectURI, User
from accounts.roles import Perm, Role, role_can
from accounts.teams import require
from accounts.validators import validate_redirect_uri


@dataclass(frozen=True)
class NewCredentials:
    """Plaintext credentials, returned once to be shown once; never stored."""

    client_secret: str | None = None
    management_token: str | None = None


def can_edit_application(membership: Membership, application: Application) -> bool:
    if application.team_id != membership.team_id:
        return False
    if role_can(membership.role, Perm.EDIT_ANY_APPLICATION):
        return True
    return (
        role_can(membership.role, Perm.EDIT_ASSIGNED_APPLICATIONS)
        and application.editors.filter(pk=membership.user_id).exists()
    )


def _require_edit(actor: Membership, application: Application) -> None:
    if not can_edit_application(actor, application):
        raise PermissionDenied("You cannot change this application.")


def _audit(actor: Membership, application: Application, action: str, **data) -> None:
    record_audit(team=application.team, actor=actor.user, action=action, target=application.name, **data)


@transaction.atomic
def create_application(*, actor: Membership, name: str) -> tuple[Application, NewCredentials]:
    """Register an application; its client secret and management token are returned once."""
    require(actor, Perm.CREATE_APPLICATIONS)
    application = Application.objects.create(team=actor.team, name=name.strip(), created_by=actor.user)
    client_secret = issue_client_secret(application)
    management_token = set_management_token(application)
    _audit(actor, application, "application.created", client_id=str(application.client_id))
    return application, NewCredentials(client_secret=client_secret, management_token=management_token)


@transaction.atomic
def rename_application(*, actor: Membership, application: Application, name: str) -> Application:
    _require_edit(actor, application)
    before, application.name = application.name, name.strip()
    application.save(update_fields=["name"])
    _audit(actor, application, "application.renamed", before=before)
    return application


@transaction.atomic
def delete_application(*, actor: Membership, application: Application) -> None:
    require(actor, Perm.CREATE_APPLICATIONS)
    _audit(actor, application, "application.deleted", client_id=str(application.client_id))
    application.delete()


def issue_client_secret(application: Application, secret: str | None = None) -> str:
    secret = secret or generate_secret("sk_")
    ClientSecret.objects.create(application=application, secret_hash=hash_secret(secret), hint=hint_for(secret))
    return secret


@transaction.atomic
def rotate_client_secret(*, actor: Membership, application: Application, grace_hours: int) -> NewCredentials:
    """Issue a new client secret; the current ones stay valid for `grace_hours` (0: end now)."""
    _require_edit(actor, application)
    if grace_hours not in settings.CLIENT_SECRET_GRACE_CHOICES_HOURS:
        raise TeamRuleError("Choose one of the offered grace periods.")
    Application.objects.select_for_update().filter(pk=application.pk).first()  # serialise rotations
    now = timezone.now()
    ends = now + timedelta(hours=grace_hours)
    # A secret already set to expire sooner keeps its earlier end.
    application.client_secrets.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=ends)).update(expires_at=ends)
    application.client_secrets.filter(expires_at__lte=now - timedelta(days=30)).delete()
    secret = issue_client_secret(application)
    _audit(actor, application, "application.client_secret_rotated", grace_hours=grace_hours)
    return NewCredentials(client_secret=secret)


def set_management_token(application: Application, token: str | None = None) -> str:
    token = token or generate_secret("amt_")
    ManagementToken.objects.update_or_create(
        application=application, defaults={"token_hash": hash_secret(token), "hint": hint_for(token)}
    )
    return token


@transaction.atomic
def rotate_management_token(*, actor: Membership, application: Application) -> NewCredentials:
    """Replace the application management token; the old one stops working at once."""
    _require_edit(actor, application)
    token = set_management_token(application)
    _audit(actor, application, "application.management_token_rotated")
    return NewCredentials(management_token=token)


def add_redirect_uri(*, actor: Membership, application: Application, uri: str) -> RedirectURI:
    """Add a validated redirect URI; the first one becomes the default."""
    _require_edit(actor, application)
    uri = validate_redirect_uri(uri, client_id=application.client_id)
    try:
        with transaction.atomic():
            is_first = not application.redirect_uris.exists()
            redirect_uri = RedirectURI.objects.create(application=application, uri=uri, is_default=is_first)
            _audit(actor, application, "application.redirect_uri_added", uri=uri)
    except IntegrityError:
        raise TeamRuleError("This redirect URI is already registered.") from None
    return redirect_uri


@transaction.atomic
def remove_redirect_uri(*, actor: Membership, application: Application, redirect_uri_id: int) -> None:
    """Remove a redirect URI; if it was the default, the oldest remaining one takes over."""
    _require_edit(actor, application)
    redirect_uri = application.redirect_uris.select_for_update().get(pk=redirect_uri_id)
    redirect_uri.delete()
    if redirect_uri.is_default:
        successor = application.redirect_uris.order_by("created_at", "id").first()
        if successor:
            successor.is_default = True
            successor.save(update_fields=["is_default"])
    _audit(actor, application, "application.redirect_uri_removed", uri=redirect_uri.uri)


@transaction.atomic
def set_default_redirect_uri(*, actor: Membership, application: Application, redirect_uri_id: int) -> RedirectURI:
    _require_edit(actor, application)
    redirect_uri = application.redirect_uris.select_for_update().get(pk=redirect_uri_id)
    application.redirect_uris.filter(is_default=True).exclude(pk=redirect_uri.pk).update(is_default=False)
    if not redirect_uri.is_default:
        redirect_uri.is_default = True
        redirect_uri.save(update_fields=["is_default"])
        _audit(actor, application, "application.redirect_uri_default", uri=redirect_uri.uri)
    return redirect_uri


@transaction.atomic
def set_application_editors(*, actor: Membership, application: Application, user_ids: list[int]) -> list[User]:
    """Assign the team's Editors who may change this application."""
    require(actor, Perm.EDIT_ANY_APPLICATION)
    editors = list(User.objects.filter(pk__in=user_ids, memberships__team=actor.team, memberships__role=Role.EDITOR))
    if len(editors) != len(set(user_ids)):
        raise TeamRuleError("Only Editors of this team can be assigned to an application.")
    application.editors.set(editors)
    _audit(actor, application, "application.editors_set", editors=[u.email for u in editors])
    return editors
