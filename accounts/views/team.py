from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import selectors, teams
from accounts.credentials import hash_secret
from accounts.decorators import team_member_required
from accounts.exceptions import TeamRuleError
from accounts.forms import InviteForm, RoleForm, TeamNameForm, roles_grantable_by
from accounts.middleware import SESSION_TEAM_KEY
from accounts.models import Invitation, Membership
from accounts.roles import Perm, Role, role_can

AUDIT_PAGE_SIZE = 50


@team_member_required()
def team_page(request, invite_form=None, rename_form=None, status=200):
    membership = request.membership
    members = list(selectors.team_members(request.team))
    context = {
        "members": members,
        # The last Owner cannot leave (accounts.teams refuses it): the page says so instead of offering it.
        "only_owner": membership.role == Role.OWNER and sum(m.role == Role.OWNER for m in members) == 1,
        "invitations": selectors.pending_invitations(request.team),
        "invite_form": invite_form or InviteForm(actor_role=membership.role),
        "rename_form": rename_form or TeamNameForm(initial={"name": request.team.name}),
        "grantable_roles": roles_grantable_by(membership.role),
        "audit_events": selectors.recent_audit_events(request.team)
        if role_can(membership.role, Perm.VIEW_AUDIT_LOG)
        else None,
    }
    return render(request, "accounts/team.html", context, status=status)


@team_member_required(Perm.VIEW_AUDIT_LOG)
def audit_log(request):
    page = Paginator(selectors.team_audit_events(request.team), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/audit_log.html", {"page": page})


@require_POST
@team_member_required(Perm.MANAGE_TEAM)
def team_rename(request):
    form = TeamNameForm(request.POST)
    if not form.is_valid():
        return team_page(request, rename_form=form, status=400)
    teams.rename_team(actor=request.membership, name=form.cleaned_data["name"])
    messages.success(request, "Team renamed.")
    return redirect("team")


@login_required
def team_create(request):
    form = TeamNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = teams.create_team(owner=request.user, name=form.cleaned_data["name"])
        request.session[SESSION_TEAM_KEY] = team.pk
        messages.success(request, f"Created {team.name}. You are its Owner.")
        return redirect("overview")
    return render(request, "accounts/team_create.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
@login_required
def team_switch(request):
    try:
        team_id = int(request.POST.get("team_id", ""))
    except ValueError:
        raise Http404("No such team") from None
    membership = selectors.membership_for(request.user, team_id)
    if membership is None:
        raise Http404("No such team")
    request.session[SESSION_TEAM_KEY] = membership.team_id
    messages.info(request, f"Switched to {membership.team.name}.")
    return redirect("overview")


@require_POST
@team_member_required(Perm.MANAGE_MEMBERS)
def invite(request):
    form = InviteForm(request.POST, actor_role=request.membership.role)
    if form.is_valid():
        try:
            invitation, _ = teams.invite_member(
                actor=request.membership, email=form.cleaned_data["email"], role=form.cleaned_data["role"]
            )
        except TeamRuleError as error:
            form.add_error("email", str(error))
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("team")
    return team_page(request, invite_form=form, status=400)


def _team_action(request, action, success_message, **kwargs):
    try:
        action(actor=request.membership, **kwargs)
    except TeamRuleError as error:
        messages.error(request, str(error))
    except (Invitation.DoesNotExist, Membership.DoesNotExist):
        raise Http404 from None
    else:
        messages.success(request, success_message)
    return redirect("team")


@require_POST
@team_member_required(Perm.MANAGE_MEMBERS)
def invitation_resend(request, invitation_id):
    return _team_action(request, teams.resend_invitation, "Invitation sent again.", invitation_id=invitation_id)


@require_POST
@team_member_required(Perm.MANAGE_MEMBERS)
def invitation_revoke(request, invitation_id):
    return _team_action(request, teams.revoke_invitation, "Invitation revoked.", invitation_id=invitation_id)


@require_POST
@team_member_required(Perm.MANAGE_MEMBERS)
def member_role(request, membership_id):
    get_object_or_404(Membership, team=request.team, pk=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("team")
    return _team_action(
        request, teams.change_role, "Role changed.", membership_id=membership_id, role=form.cleaned_data["role"]
    )


@require_POST
@team_member_required()
def member_remove(request, membership_id):
    get_object_or_404(Membership, team=request.team, pk=membership_id)
    leaving = membership_id == request.membership.pk
    if not leaving and not role_can(request.membership.role, Perm.MANAGE_MEMBERS):
        raise PermissionDenied("Your role cannot remove members.")
    response = _team_action(
        request,
        teams.remove_member,
        f"You left {request.team.name}." if leaving else "Member removed.",
        membership_id=membership_id,
    )
    if leaving and not Membership.objects.filter(pk=membership_id).exists():
        request.session.pop(SESSION_TEAM_KEY, None)
        return redirect("overview")
    return response


def invitation(request, token):
    """The link in an invitation email: sign in (or sign up) as the invited address, then accept or decline."""
    found = Invitation.objects.select_related("team", "invited_by").filter(token_hash=hash_secret(token)).first()
    if found is None:
        raise Http404("This invitation link is not valid.")
    if not request.user.is_authenticated:
        return render(request, "accounts/invitation_signin.html", {"invitation": found})
    if request.method == "POST":
        decision = request.POST.get("decision")
        try:
            if decision == "accept":
                membership = teams.accept_invitation(token=token, user=request.user)
                request.session[SESSION_TEAM_KEY] = membership.team_id
                messages.success(request, f"You joined {membership.team.name} as {membership.get_role_display()}.")
                return redirect("overview")
            if decision == "decline":
                teams.decline_invitation(token=token, user=request.user)
                messages.info(request, f"You declined the invitation to {found.team.name}.")
                return redirect("overview")
            messages.error(request, "Choose Accept or Decline.")
        except TeamRuleError as error:
            messages.error(request, str(error))
    return render(request, "accounts/invitation.html", {"invitation": found})
