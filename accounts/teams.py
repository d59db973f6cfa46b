"""Team, membership and invitation services (writes). Every function checks the actor's role."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.audit import record_audit
from accounts.credentials import generate_secret, hash_secret
from accounts.exceptions import TeamRuleError
from accounts.models import Invitation, Membership, Team, User
from accounts.roles import ROLE_RANK, Perm, Role, role_can
from notifications.outbox import queue_templated_email


def require(membership: Membership, perm: str) -> None:
    if not role_can(membership.role, perm):
        raise PermissionDenied(f"Your role ({membership.get_role_display()}) cannot do this.")


def _require_may_manage_role(actor: Membership, role: str) -> None:
    """Only Owners grant or take away the Owner role; nobody grants more than they hold."""
    require(actor, Perm.MANAGE_MEMBERS)
    if role == Role.OWNER:
        require(actor, Perm.MANAGE_OWNERS)
    if ROLE_RANK[Role(role)] > ROLE_RANK[Role(actor.role)]:
        raise PermissionDenied("You cannot grant a role above your own.")


@transaction.atomic
def create_team(*, owner: User, name: str) -> Team:
    """Create a team with `owner` as its first Owner."""
    team = Team.objects.create(name=name.strip(), created_by=owner)
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    record_audit(team=team, actor=owner, action="team.created", target=team.name)
    return team


def create_personal_team(*, user: User) -> Team:
    """The team every new account starts with."""
    local_part = user.email.split("@", 1)[0]
    return create_team(owner=user, name=f"{local_part}'s team"[:100])


@transaction.atomic
def rename_team(*, actor: Membership, name: str) -> Team:
    require(actor, Perm.MANAGE_TEAM)
    team = actor.team
    old_name, team.name = team.name, name.strip()
    team.save(update_fields=["name"])
    record_audit(team=team, actor=actor.user, action="team.renamed", target=team.name, before=old_name)
    return team


# Invitations -----------------------------------------------------------------


def invitation_url(token: str) -> str:
    return settings.SITE_ROOT + reverse("invitation", args=[token])


def invite_member(*, actor: Membership, email: str, role: str) -> tuple[Invitation, str]:
    """Invite `email` to the actor's team; emails a tokenised link. Returns the invitation and its token."""
    _require_may_manage_role(actor, role)
    email = email.strip().lower()
    team = actor.team
    if Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise TeamRuleError(f"{email} is already a member of {team.name}.")
    token = generate_secret()
    try:
        with transaction.atomic():
            # An overdue invitation the hourly job has not expired yet must not block a new one.
            Invitation.objects.filter(
                team=team, email__iexact=email, status=Invitation.Status.PENDING, expires_at__lte=timezone.now()
            ).update(status=Invitation.Status.EXPIRED, responded_at=timezone.now())
            invitation = Invitation.objects.create(
                team=team,
                email=email,
                role=role,
                token_hash=hash_secret(token),
                invited_by=actor.user,
                expires_at=timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS),
            )
            record_audit(team=team, actor=actor.user, action="invitation.created", target=email, role=role)
            _queue_invitation_email(invitation, token)
    except IntegrityError:
        raise TeamRuleError(f"{email} already has a pending invitation. Revoke it or resend it.") from None
    return invitation, token


def resend_invitation(*, actor: Membership, invitation_id: int) -> tuple[Invitation, str]:
    """Send a pending invitation again with a fresh link and expiry; the old link stops working."""
    require(actor, Perm.MANAGE_MEMBERS)
    token = generate_secret()
    with transaction.atomic():
        invitation = _pending_invitation_for_update(actor.team, invitation_id)
        _require_may_manage_role(actor, invitation.role)
        invitation.token_hash = hash_secret(token)
        invitation.expires_at = timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS)
        invitation.save(update_fields=["token_hash", "expires_at"])
        record_audit(team=actor.team, actor=actor.user, action="invitation.resent", target=invitation.email)
        _queue_invitation_email(invitation, token)
    return invitation, token


def _queue_invitation_email(invitation: Invitation, token: str) -> None:
    queue_templated_email(
        "invitation",
        to=[invitation.email],
        context={"invitation": invitation, "url": invitation_url(token), "inviter": invitation.invited_by},
        sensitive=True,  # the link is the invitation's only secret: not kept once sent
    )


def _pending_invitation_for_update(team: Team, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.select_for_update().filter(team=team, pk=invitation_id).first()
    if invitation is None:
        raise Invitation.DoesNotExist
    if invitation.status != Invitation.Status.PENDING:
        raise TeamRuleError(f"This invitation is already {invitation.status}.")
    return invitation


@transaction.atomic
def revoke_invitation(*, actor: Membership, invitation_id: int) -> Invitation:
    require(actor, Perm.MANAGE_MEMBERS)
    invitation = _pending_invitation_for_update(actor.team, invitation_id)
    _require_may_manage_role(actor, invitation.role)
    _close_invitation(invitation, Invitation.Status.REVOKED, by=actor.user)
    record_audit(team=actor.team, actor=actor.user, action="invitation.revoked", target=invitation.email)
    return invitation


def _close_invitation(invitation: Invitation, status: str, *, by: User | None) -> None:
    invitation.status = status
    invitation.responded_at = timezone.now()
    invitation.responded_by = by
    invitation.save(update_fields=["status", "responded_at", "responded_by"])


def _invitation_for_response(token: str, user: User) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update().select_related("team").filter(token_hash=hash_secret(token)).first()
    )
    if invitation is None:
        raise Invitation.DoesNotExist
    if invitation.status == Invitation.Status.PENDING and invitation.expires_at <= timezone.now():
        raise TeamRuleError("This invitation has expired. Ask the team to send a new one.")
    if invitation.status != Invitation.Status.PENDING:
        raise TeamRuleError(f"This invitation is {invitation.status} and can no longer be used.")
    if invitation.email.lower() != user.email.lower():
        raise TeamRuleError(f"This invitation was sent to {invitation.email}. Sign in with that address to accept it.")
    return invitation


def accept_invitation(*, token: str, user: User) -> Membership:
    """Join the team the invitation is for, with the invited role."""
    with transaction.atomic():
        invitation = _invitation_for_response(token, user)
        membership, created = Membership.objects.get_or_create(
            team=invitation.team, user=user, defaults={"role": invitation.role}
        )
        _close_invitation(invitation, Invitation.Status.ACCEPTED, by=user)
        record_audit(
            team=invitation.team, actor=user, action="invitation.accepted", target=user.email, role=membership.role
        )
    return membership


@transaction.atomic
def decline_invitation(*, token: str, user: User) -> Invitation:
    invitation = _invitation_for_response(token, user)
    _close_invitation(invitation, Invitation.Status.DECLINED, by=user)
    record_audit(team=invitation.team, actor=user, action="invitation.declined", target=user.email)
    return invitation


def expire_invitations(*, now=None) -> int:
    """Mark pending invitations past their expiry as expired. Safe to run twice or concurrently."""
    now = now or timezone.now()
    return Invitation.objects.filter(status=Invitation.Status.PENDING, expires_at__lte=now).update(
        status=Invitation.Status.EXPIRED, responded_at=now
    )


# Members ---------------------------------------------------------------------


def _member_for_update(actor: Membership, membership_id: int) -> Membership:
    # The team row is the lock for membership changes: two Owners demoting each other at
    # the same moment queue here, and the second then sees the first's result (no deadlock).
    Team.objects.select_for_update().filter(pk=actor.team_id).first()
    try:
        actor.refresh_from_db(fields=["role"])
    except Membership.DoesNotExist:
        raise PermissionDenied("You are no longer a member of this team.") from None
    return Membership.objects.select_related("user").get(team_id=actor.team_id, pk=membership_id)


def _ensure_another_owner_remains(team: Team, leaving: Membership) -> None:
    if leaving.role != Role.OWNER:
        return
    if not Membership.objects.filter(team=team, role=Role.OWNER).exclude(pk=leaving.pk).exists():
        raise TeamRuleError("A team needs at least one Owner. Make someone else an Owner first.")


@transaction.atomic
def change_role(*, actor: Membership, membership_id: int, role: str) -> Membership:
    member = _member_for_update(actor, membership_id)
    _require_may_manage_role(actor, member.role)
    _require_may_manage_role(actor, role)
    if member.role == role:
        return member
    if role != Role.OWNER:
        _ensure_another_owner_remains(actor.team, member)
    before, member.role = member.role, role
    member.save(update_fields=["role"])
    record_audit(
        team=actor.team,
        actor=actor.user,
        action="member.role_changed",
        target=member.user.email,
        before=before,
        after=role,
    )
    return member


@transaction.atomic
def remove_member(*, actor: Membership, membership_id: int) -> None:
    """Remove a member (or, with the actor's own id, leave the team)."""
    member = _member_for_update(actor, membership_id)
    leaving = member.pk == actor.pk
    if not leaving:
        _require_may_manage_role(actor, member.role)
    _ensure_another_owner_remains(actor.team, member)
    member.user.edited_applications.remove(*member.user.edited_applications.filter(team=actor.team))
    member.delete()
    action = "member.left" if leaving else "member.removed"
    record_audit(team=actor.team, actor=actor.user, action=action, target=member.user.email, role=member.role)
