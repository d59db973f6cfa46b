"""Teams: invitations by emailed link, roles and who may change them, leaving, switching and creating teams."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from accounts import teams
from accounts.applications import set_application_editors
from accounts.credentials import hash_secret
from accounts.exceptions import TeamRuleError
from accounts.models import AuditEvent, Invitation, Membership, Team
from accounts.roles import Role
from notifications.models import OutboundEmail
from tests.conftest import login_as
from tests.factories import PASSWORD, ApplicationFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TTL = timedelta(hours=settings.INVITATION_TTL_HOURS)
LAST_OWNER = "A team needs at least one Owner. Make someone else an Owner first."


@pytest.fixture
def owner_membership(team, owner):
    return Membership.objects.get(team=team, user=owner)


@pytest.fixture
def invitee(db):
    """Someone with a team of their own, about to be invited to Acme Mobility."""
    user = UserFactory(email="newcomer@example.com")
    MembershipFactory(user=user, role=Role.OWNER, team__name="Newcomer's garage")
    return user


def invitation_path(message) -> str:
    """The path of the invitation link in an email."""
    urls = re.findall(r"https?://[^\s\"'<>]+", message.body)
    paths = [urlparse(url).path for url in urls if "/invitations/" in url]
    assert len(paths) == 1, f"expected one invitation link in:\n{message.body}"
    return paths[0]


def audit_actions(team) -> list[str]:
    return list(AuditEvent.objects.filter(team=team).order_by("id").values_list("action", flat=True))


def page(response) -> str:
    return response.content.decode()


def invite(actor, email="newcomer@example.com", role=Role.EDITOR):
    invitation, token = teams.invite_member(actor=actor, email=email, role=role)
    return invitation, reverse("invitation", args=[token])


# Inviting ---------------------------------------------------------------------------------------


def test_it_emails_a_tokenised_link_and_stores_only_the_tokens_hash(owner_membership, mailoutbox, send_queued_emails):
    invitation, token = teams.invite_member(actor=owner_membership, email="  NewComer@Example.com ", role=Role.EDITOR)
    send_queued_emails()

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["newcomer@example.com"]
    assert "Acme Mobility" in message.subject
    assert invitation_path(message) == reverse("invitation", args=[token])
    assert f"{settings.SITE_ROOT}/invitations/{token}/" in message.body
    invitation.refresh_from_db()
    assert invitation.email == "newcomer@example.com"
    assert invitation.status == Invitation.Status.PENDING
    assert invitation.token_hash == hash_secret(token)
    assert token not in repr(list(Invitation.objects.values()))
    assert token not in repr(list(OutboundEmail.objects.values()))  # the sent email's link is not kept either
    assert audit_actions(owner_membership.team) == ["invitation.created"]


def test_it_invites_from_the_team_page(client, owner_membership, mailoutbox, send_queued_emails):
    login_as(client, owner_membership)

    response = client.post(reverse("team_invite"), {"email": "newcomer@example.com", "role": Role.ADMIN}, follow=True)
    send_queued_emails()

    assert response.redirect_chain == [(reverse("team"), 302)]
    assert "Invitation sent to newcomer@example.com." in page(response)
    invitation = Invitation.objects.get(team=owner_membership.team)
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "newcomer@example.com",
        Role.ADMIN,
        owner_membership.user,
    )
    assert [m.to for m in mailoutbox] == [["newcomer@example.com"]]
    assert "newcomer@example.com" in page(client.get(reverse("team")))


def test_it_refuses_to_invite_an_existing_member_with_an_inline_error(client, owner_membership, make_member):
    make_member(Role.VIEWER, email="already@example.com")
    login_as(client, owner_membership)

    response = client.post(reverse("team_invite"), {"email": "Already@example.com", "role": Role.EDITOR})

    assert response.status_code == 400
    assert 'id="id_email_error">already@example.com is already a member of Acme Mobility.<' in page(response)
    assert not Invitation.objects.exists()


def test_it_refuses_a_second_pending_invitation_for_the_same_address(
    client, owner_membership, mailoutbox, send_queued_emails
):
    invite(owner_membership)
    login_as(client, owner_membership)

    response = client.post(reverse("team_invite"), {"email": "NEWCOMER@example.com", "role": Role.VIEWER})
    send_queued_emails()

    assert response.status_code == 400
    expected = "newcomer@example.com already has a pending invitation. Revoke it or resend it."
    assert f'id="id_email_error">{expected}<' in page(response)
    assert Invitation.objects.count() == 1
    assert len(mailoutbox) == 1


def test_it_lets_the_team_invite_an_address_again_once_its_invitation_expired(
    client, owner_membership, mailoutbox, time_machine, send_queued_emails
):
    time_machine.move_to(START, tick=False)
    invite(owner_membership)
    time_machine.shift(TTL + timedelta(minutes=1))
    login_as(client, owner_membership)

    response = client.post(reverse("team_invite"), {"email": "newcomer@example.com", "role": Role.VIEWER})
    send_queued_emails()

    assert response.status_code == 302
    assert len(mailoutbox) == 2


# Answering the link -----------------------------------------------------------------------------


def test_it_shows_an_anonymous_visitor_how_to_sign_in_or_sign_up(client, owner_membership):
    _, link = invite(owner_membership)

    response = client.get(link)

    assert response.status_code == 200
    html = page(response)
    assert "Acme Mobility" in html
    assert "newcomer@example.com" in html
    assert f'href="{reverse("account_login")}?next={link}"' in html
    assert f'href="{reverse("account_signup")}?next={link}"' in html
    assert 'value="accept"' not in html


def test_it_brings_the_invitee_back_to_the_link_after_signing_in(client, owner_membership, invitee):
    _, link = invite(owner_membership, email=invitee.email)

    response = client.post(reverse("account_login"), {"login": invitee.email, "password": PASSWORD, "next": link})

    assert response["Location"] == link
    assert 'value="accept"' in page(client.get(link))


def test_it_ignores_an_anonymous_accept(client, owner_membership):
    invitation, link = invite(owner_membership)

    client.post(link, {"decision": "accept"})

    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.PENDING
    assert Membership.objects.filter(team=owner_membership.team).count() == 1


def test_it_answers_404_for_a_link_that_was_never_sent(client, owner_membership):
    invite(owner_membership)

    assert client.get(reverse("invitation", args=["not-a-real-token"])).status_code == 404


def test_it_joins_the_team_with_the_invited_role_and_switches_to_it(
    client, owner_membership, invitee, mailoutbox, send_queued_emails
):
    login_as(client, Membership.objects.get(user=invitee))
    teams.invite_member(actor=owner_membership, email=invitee.email, role=Role.EDITOR)
    send_queued_emails()
    link = invitation_path(mailoutbox[0])
    assert 'value="accept"' in page(client.get(link))

    response = client.post(link, {"decision": "accept"}, follow=True)

    assert response.redirect_chain[0] == (reverse("overview"), 302)
    assert "You joined Acme Mobility as Editor." in page(response)
    membership = Membership.objects.get(team=owner_membership.team, user=invitee)
    assert membership.role == Role.EDITOR
    assert client.session["current_team_id"] == owner_membership.team_id
    invitation = Invitation.objects.get()
    assert (invitation.status, invitation.responded_by) == (Invitation.Status.ACCEPTED, invitee)
    assert audit_actions(owner_membership.team) == ["invitation.created", "invitation.accepted"]


def test_it_declines_without_joining(client, owner_membership, invitee):
    invitation, link = invite(owner_membership, email=invitee.email)
    login_as(client, Membership.objects.get(user=invitee))

    response = client.post(link, {"decision": "decline"}, follow=True)

    assert "You declined the invitation to Acme Mobility." in page(response)
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.DECLINED
    assert not Membership.objects.filter(team=owner_membership.team, user=invitee).exists()
    assert client.session["current_team_id"] != owner_membership.team_id
    client.post(link, {"decision": "accept"})
    assert not Membership.objects.filter(team=owner_membership.team, user=invitee).exists()
    assert audit_actions(owner_membership.team) == ["invitation.created", "invitation.declined"]


def test_it_refuses_an_invitation_for_another_signed_in_address_with_a_clear_message(client, owner_membership):
    invitation, link = invite(owner_membership, email="newcomer@example.com")
    stranger = UserFactory(email="stranger@example.com")
    client.force_login(stranger)

    response = client.post(link, {"decision": "accept"})

    assert response.status_code == 200
    expected = "This invitation was sent to newcomer@example.com. Sign in with that address to accept it."
    assert expected in page(response)
    assert not Membership.objects.filter(user=stranger).exists()
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.PENDING


def test_it_stops_a_revoked_link_from_working(client, owner_membership, invitee):
    invitation, link = invite(owner_membership, email=invitee.email)
    login_as(client, owner_membership)

    response = client.post(reverse("invitation_revoke", args=[invitation.pk]), follow=True)

    assert "Invitation revoked." in page(response)
    assert list(client.get(reverse("team")).context["invitations"]) == []
    login_as(client, Membership.objects.get(user=invitee))
    response = client.post(link, {"decision": "accept"})
    assert "This invitation is revoked and can no longer be used." in page(response)
    assert not Membership.objects.filter(team=owner_membership.team, user=invitee).exists()
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.REVOKED
    assert audit_actions(owner_membership.team) == ["invitation.created", "invitation.revoked"]


def test_it_stops_the_old_link_from_working_after_a_resend(
    client, owner_membership, invitee, mailoutbox, time_machine, send_queued_emails
):
    time_machine.move_to(START, tick=False)
    invitation, old_link = invite(owner_membership, email=invitee.email)
    time_machine.shift(timedelta(days=2))
    login_as(client, owner_membership)

    response = client.post(reverse("invitation_resend", args=[invitation.pk]), follow=True)
    send_queued_emails()

    assert "Invitation sent again." in page(response)
    assert len(mailoutbox) == 2
    new_link = invitation_path(mailoutbox[1])
    assert new_link != old_link
    invitation.refresh_from_db()
    assert invitation.expires_at == START + timedelta(days=2) + TTL
    login_as(client, Membership.objects.get(user=invitee))
    assert client.get(old_link).status_code == 404
    assert client.post(old_link, {"decision": "accept"}).status_code == 404
    assert not Membership.objects.filter(team=owner_membership.team, user=invitee).exists()
    client.post(new_link, {"decision": "accept"})
    assert Membership.objects.get(team=owner_membership.team, user=invitee).role == Role.EDITOR
    assert audit_actions(owner_membership.team) == ["invitation.created", "invitation.resent", "invitation.accepted"]


def test_it_refuses_a_link_used_after_it_expired(client, owner_membership, invitee, time_machine):
    time_machine.move_to(START, tick=False)
    invitation, link = invite(owner_membership, email=invitee.email)
    login_as(client, Membership.objects.get(user=invitee))
    time_machine.shift(TTL + timedelta(seconds=1))

    response = client.post(link, {"decision": "accept"})

    assert "This invitation has expired. Ask the team to send a new one." in page(response)
    assert not Membership.objects.filter(team=owner_membership.team, user=invitee).exists()
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.PENDING


def test_it_still_accepts_a_link_just_before_it_expires(client, owner_membership, invitee, time_machine):
    time_machine.move_to(START, tick=False)
    _, link = invite(owner_membership, email=invitee.email)
    login_as(client, Membership.objects.get(user=invitee))
    time_machine.shift(TTL - timedelta(seconds=1))

    client.post(link, {"decision": "accept"})

    assert Membership.objects.filter(team=owner_membership.team, user=invitee).exists()


def test_it_marks_overdue_invitations_expired_once(client, owner_membership, invitee, time_machine):
    time_machine.move_to(START, tick=False)
    overdue, link = invite(owner_membership, email=invitee.email)
    time_machine.shift(timedelta(days=1))
    fresh, _ = invite(owner_membership, email="later@example.com")
    time_machine.shift(TTL - timedelta(days=1) + timedelta(minutes=1))

    assert teams.expire_invitations() == 1
    assert teams.expire_invitations() == 0

    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert (overdue.status, overdue.responded_at) == (Invitation.Status.EXPIRED, timezone.now())
    assert fresh.status == Invitation.Status.PENDING
    login_as(client, Membership.objects.get(user=invitee))
    assert "This invitation is <strong>expired</strong>." in page(client.get(link))
    assert "can no longer be used" in page(client.post(link, {"decision": "accept"}))
    assert not Membership.objects.filter(team=owner_membership.team, user=invitee).exists()


# Roles ------------------------------------------------------------------------------------------


def test_it_lets_an_admin_invite_up_to_admin_but_not_owner(client, make_member, mailoutbox, send_queued_emails):
    admin = make_member(Role.ADMIN)

    invitation, _ = teams.invite_member(actor=admin, email="peer@example.com", role=Role.ADMIN)
    assert invitation.role == Role.ADMIN
    with pytest.raises(PermissionDenied):
        teams.invite_member(actor=admin, email="boss@example.com", role=Role.OWNER)

    login_as(client, admin)
    response = client.post(reverse("team_invite"), {"email": "boss@example.com", "role": Role.OWNER})
    assert response.status_code == 400
    assert not Invitation.objects.filter(email="boss@example.com").exists()
    send_queued_emails()
    assert [m.to for m in mailoutbox] == [["peer@example.com"]]


def test_it_stops_an_admin_from_revoking_or_resending_an_owner_invitation(client, owner_membership, make_member):
    invitation, _ = invite(owner_membership, role=Role.OWNER)
    token_hash = invitation.token_hash
    login_as(client, make_member(Role.ADMIN))

    assert client.post(reverse("invitation_revoke", args=[invitation.pk])).status_code == 403
    assert client.post(reverse("invitation_resend", args=[invitation.pk])).status_code == 403
    invitation.refresh_from_db()
    assert (invitation.status, invitation.token_hash) == (Invitation.Status.PENDING, token_hash)
    assert audit_actions(owner_membership.team) == ["invitation.created"]


def test_it_stops_an_admin_from_changing_an_owner_or_making_one(client, owner_membership, make_member):
    admin = make_member(Role.ADMIN)
    viewer = make_member(Role.VIEWER)
    login_as(client, admin)

    demote = client.post(reverse("member_role", args=[owner_membership.pk]), {"role": Role.VIEWER})
    promote = client.post(reverse("member_role", args=[viewer.pk]), {"role": Role.OWNER})
    promote_self = client.post(reverse("member_role", args=[admin.pk]), {"role": Role.OWNER})

    assert (demote.status_code, promote.status_code, promote_self.status_code) == (403, 403, 403)
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.OWNER
    assert Membership.objects.get(pk=viewer.pk).role == Role.VIEWER
    assert Membership.objects.get(pk=admin.pk).role == Role.ADMIN
    assert audit_actions(owner_membership.team) == []


def test_it_stops_an_admin_from_removing_an_owner(client, owner_membership, make_member):
    login_as(client, make_member(Role.ADMIN))

    response = client.post(reverse("member_remove", args=[owner_membership.pk]))

    assert response.status_code == 403
    assert Membership.objects.filter(pk=owner_membership.pk, role=Role.OWNER).exists()
    assert audit_actions(owner_membership.team) == []


def test_it_lets_an_admin_change_a_members_role(client, make_member):
    admin = make_member(Role.ADMIN)
    viewer = make_member(Role.VIEWER)
    login_as(client, admin)

    response = client.post(reverse("member_role", args=[viewer.pk]), {"role": Role.EDITOR}, follow=True)

    assert "Role changed." in page(response)
    assert Membership.objects.get(pk=viewer.pk).role == Role.EDITOR
    event = AuditEvent.objects.get(team=admin.team)
    assert (event.action, event.actor, event.target) == ("member.role_changed", admin.user, viewer.user.email)
    assert event.data == {"before": Role.VIEWER, "after": Role.EDITOR}


def test_it_lets_an_owner_promote_a_member_to_owner(client, owner_membership, make_member):
    admin = make_member(Role.ADMIN)
    login_as(client, owner_membership)

    client.post(reverse("member_role", args=[admin.pk]), {"role": Role.OWNER})

    assert Membership.objects.get(pk=admin.pk).role == Role.OWNER
    assert audit_actions(owner_membership.team) == ["member.role_changed"]
    # With a second Owner in place, the first may now step down.
    client.post(reverse("member_role", args=[owner_membership.pk]), {"role": Role.ADMIN})
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.ADMIN


def test_it_keeps_the_last_owner_from_stepping_down(client, owner_membership, make_member):
    make_member(Role.ADMIN)
    login_as(client, owner_membership)

    response = client.post(reverse("member_role", args=[owner_membership.pk]), {"role": Role.ADMIN}, follow=True)

    assert LAST_OWNER in page(response)
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.OWNER
    with pytest.raises(TeamRuleError, match="at least one Owner"):
        teams.change_role(actor=owner_membership, membership_id=owner_membership.pk, role=Role.VIEWER)
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.OWNER
    assert audit_actions(owner_membership.team) == []


def test_it_keeps_the_last_owner_from_leaving_or_being_removed(client, owner_membership, make_member):
    make_member(Role.ADMIN)
    login_as(client, owner_membership)

    response = client.post(reverse("member_remove", args=[owner_membership.pk]), follow=True)

    assert response.redirect_chain == [(reverse("team"), 302)]
    assert LAST_OWNER in page(response)
    with pytest.raises(TeamRuleError, match="at least one Owner"):
        teams.remove_member(actor=owner_membership, membership_id=owner_membership.pk)
    assert Membership.objects.filter(pk=owner_membership.pk, role=Role.OWNER).exists()
    assert client.session["current_team_id"] == owner_membership.team_id
    assert audit_actions(owner_membership.team) == []


def test_it_lets_an_owner_leave_when_another_owner_remains(client, owner_membership, make_member):
    make_member(Role.OWNER)
    login_as(client, owner_membership)

    response = client.post(reverse("member_remove", args=[owner_membership.pk]))

    assert response["Location"] == reverse("overview")
    assert not Membership.objects.filter(pk=owner_membership.pk).exists()
    assert audit_actions(owner_membership.team) == ["member.left"]


def test_it_lets_a_member_leave_the_team(client, team, make_member):
    viewer = make_member(Role.VIEWER)
    login_as(client, viewer)

    response = client.post(reverse("member_remove", args=[viewer.pk]), follow=True)

    assert "You left Acme Mobility." in page(response)
    assert not Membership.objects.filter(pk=viewer.pk).exists()
    assert "current_team_id" not in client.session
    assert response.redirect_chain[-1][0] == reverse("team_create")
    event = AuditEvent.objects.get(team=team)
    assert (event.action, event.actor, event.data) == ("member.left", viewer.user, {"role": Role.VIEWER})


def test_it_lets_an_admin_remove_a_member_and_their_application_assignments(
    client, team, owner_membership, make_member
):
    editor = make_member(Role.EDITOR)
    application = ApplicationFactory(team=team)
    set_application_editors(actor=owner_membership, application=application, user_ids=[editor.user_id])
    login_as(client, make_member(Role.ADMIN))

    response = client.post(reverse("member_remove", args=[editor.pk]), follow=True)

    assert "Member removed." in page(response)
    assert not Membership.objects.filter(pk=editor.pk).exists()
    assert not application.editors.exists()
    assert audit_actions(team)[-1] == "member.removed"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
@pytest.mark.parametrize("action", ["rename", "invite", "resend", "revoke", "change_role", "remove_member"])
def test_it_forbids_viewers_and_editors_to_manage_the_team(client, team, owner_membership, make_member, role, action):
    invitation, _ = invite(owner_membership, email="pending@example.com")
    target = make_member(Role.VIEWER)
    requests = {
        "rename": (reverse("team_rename"), {"name": "Taken over"}),
        "invite": (reverse("team_invite"), {"email": "friend@example.com", "role": Role.VIEWER}),
        "resend": (reverse("invitation_resend", args=[invitation.pk]), {}),
        "revoke": (reverse("invitation_revoke", args=[invitation.pk]), {}),
        "change_role": (reverse("member_role", args=[target.pk]), {"role": Role.ADMIN}),
        "remove_member": (reverse("member_remove", args=[target.pk]), {}),
    }
    url, data = requests[action]
    login_as(client, make_member(role))

    assert client.post(url, data).status_code == 403

    team.refresh_from_db()
    assert team.name == "Acme Mobility"
    assert list(Invitation.objects.values_list("email", "status", "token_hash")) == [
        ("pending@example.com", Invitation.Status.PENDING, invitation.token_hash)
    ]
    assert Membership.objects.get(pk=target.pk).role == Role.VIEWER
    assert audit_actions(team) == ["invitation.created"]


def test_it_renames_the_team(client, team, owner_membership):
    login_as(client, owner_membership)

    blank = client.post(reverse("team_rename"), {"name": "   "})
    assert blank.status_code == 400
    assert 'id="id_name_error">Enter a team name.<' in page(blank)

    response = client.post(reverse("team_rename"), {"name": "  Acme Fleet "}, follow=True)

    assert "Team renamed." in page(response)
    team.refresh_from_db()
    assert team.name == "Acme Fleet"
    event = AuditEvent.objects.get(team=team)
    assert (event.action, event.target, event.data) == ("team.renamed", "Acme Fleet", {"before": "Acme Mobility"})


# Switching and creating teams -------------------------------------------------------------------


def test_it_switches_to_another_team_the_user_belongs_to(client, owner_membership):
    second = MembershipFactory(user=owner_membership.user, team__name="Side Project", role=Role.VIEWER)
    login_as(client, owner_membership)

    response = client.post(reverse("team_switch"), {"team_id": second.team_id}, follow=True)

    assert response.redirect_chain == [(reverse("overview"), 302)]
    assert "Switched to Side Project." in page(response)
    assert client.session["current_team_id"] == second.team_id
    # The team page now answers for Side Project, where this user is only a Viewer.
    assert client.post(reverse("team_rename"), {"name": "Mine now"}).status_code == 403


def test_it_answers_404_when_switching_to_a_team_the_user_is_not_in(client, owner_membership, other_team):
    login_as(client, owner_membership)

    response = client.post(reverse("team_switch"), {"team_id": other_team.pk})

    assert response.status_code == 404
    assert client.session["current_team_id"] == owner_membership.team_id


def test_it_answers_404_when_switching_to_a_team_id_that_is_not_a_number(client, owner_membership):
    login_as(client, owner_membership)

    response = client.post(reverse("team_switch"), {"team_id": "acme"})

    assert response.status_code == 404
    assert client.session["current_team_id"] == owner_membership.team_id


def test_it_makes_the_creator_the_owner_of_a_new_team(client, owner_membership):
    login_as(client, owner_membership)

    response = client.post(reverse("team_create"), {"name": "  Night Shift "}, follow=True)

    assert "Created Night Shift. You are its Owner." in page(response)
    new_team = Team.objects.get(name="Night Shift")
    assert Membership.objects.get(team=new_team).user == owner_membership.user
    assert Membership.objects.get(team=new_team).role == Role.OWNER
    assert new_team.created_by == owner_membership.user
    assert client.session["current_team_id"] == new_team.pk
    assert audit_actions(new_team) == ["team.created"]
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.OWNER
