"""The back office: only active staff with an authenticator app get in, and the audit log is read-only."""

import time

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth import get_user
from django.urls import reverse

from accounts.audit import record_audit
from accounts.models import AuditEvent
from accounts.roles import Role
from tests.factories import PASSWORD, ApplicationFactory, MembershipFactory, UserFactory, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_with_totp():
    user = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    user.totp_secret = generate_totp_secret()
    TOTP.activate(user, user.totp_secret)
    return user


@pytest.fixture
def staff_client(client, staff_with_totp):
    client.force_login(staff_with_totp)
    return client


def test_it_sends_anonymous_visitors_to_the_allauth_login(client):
    response = client.get("/admin/", follow=True)

    assert response.status_code == 200
    final_url = response.redirect_chain[-1][0]
    assert final_url == f"{reverse('account_login')}?next=%2Fadmin%2F"
    assert response.templates[0].name.startswith("account/login")


def test_it_keeps_a_logged_in_developer_out_of_the_admin(client, team):
    developer = MembershipFactory(team=team, role=Role.OWNER).user
    client.force_login(developer)

    for url in ["/admin/", "/admin/accounts/team/", f"/admin/accounts/team/{team.pk}/change/"]:
        response = client.get(url, follow=True)
        assert response.redirect_chain, url
        assert response.redirect_chain[-1][0] == reverse("overview"), url
        assert "Ignition back office" not in response.content.decode(), url


def test_it_sends_staff_without_an_authenticator_to_the_mfa_required_page(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin_mfa_required")
    assert response.status_code == 403
    assert reverse("mfa_activate_totp") in response.content.decode()
    assert client.get("/admin/accounts/auditevent/", follow=True).status_code == 403


def test_it_sends_anonymous_visitors_from_the_mfa_required_page_to_login(client):
    response = client.get(reverse("admin_mfa_required"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_it_lets_staff_with_an_authenticator_into_the_admin(staff_client):
    response = staff_client.get("/admin/")

    assert response.status_code == 200
    assert "Ignition back office" in response.content.decode()


def test_it_keeps_inactive_staff_out_even_with_an_authenticator(client, staff_with_totp):
    staff_with_totp.is_active = False
    staff_with_totp.save()
    client.force_login(staff_with_totp)

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("account_login"))
    assert "Ignition back office" not in response.content.decode()


def test_it_logs_staff_into_the_admin_through_the_password_and_code_pages(client, staff_with_totp):
    response = client.post(
        f"{reverse('account_login')}?next=/admin/", {"login": "ops@example.com", "password": PASSWORD}
    )
    assert response["Location"] == reverse("mfa_authenticate")

    if 30 - time.time() % 30 < 1.5:
        time.sleep(1.5)
    code = totp_code(staff_with_totp.totp_secret)
    response = client.post(reverse("mfa_authenticate"), {"code": code})

    assert response["Location"] == "/admin/"
    assert get_user(client) == staff_with_totp
    assert client.get("/admin/").status_code == 200


def test_it_opens_the_team_application_and_audit_changelists_and_change_pages(staff_client, team, owner):
    application = ApplicationFactory(team=team, name="Fleet tracker")
    event = record_audit(team=team, actor=owner, action="team.renamed", target="Acme Mobility")

    pages = {
        reverse("admin:accounts_team_changelist"): "Acme Mobility",
        reverse("admin:accounts_application_changelist"): "Fleet tracker",
        reverse("admin:accounts_auditevent_changelist"): "team.renamed",
        reverse("admin:accounts_team_change", args=[team.pk]): owner.email,
        reverse("admin:accounts_application_change", args=[application.pk]): "Fleet tracker",
        reverse("admin:accounts_auditevent_change", args=[event.pk]): "team.renamed",
    }
    for url, expected in pages.items():
        response = staff_client.get(url)
        assert response.status_code == 200, url
        assert expected in response.content.decode(), url


def test_it_keeps_the_audit_log_read_only_in_the_admin(staff_client, team, owner):
    event = record_audit(team=team, actor=owner, action="team.renamed", target="Acme Mobility")

    assert staff_client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    assert staff_client.post(reverse("admin:accounts_auditevent_add"), {"action": "forged"}).status_code == 403
    assert not AuditEvent.objects.filter(action="forged").exists()

    change_url = reverse("admin:accounts_auditevent_change", args=[event.pk])
    page = staff_client.get(change_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    staff_client.post(change_url, {"team": team.pk, "action": "tampered", "target": "x", "data": "{}"})
    event.refresh_from_db()
    assert (event.action, event.target) == ("team.renamed", "Acme Mobility")

    delete_url = reverse("admin:accounts_auditevent_delete", args=[event.pk])
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def resubmitted(response) -> dict:
    """The POST data a browser would send back from an admin change page, unchanged."""
    data = {}
    forms = [response.context["adminform"].form]
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        forms += [management, *formset.formset.forms]
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is not None:
                data[form.add_prefix(name)] = value
    return data


def admin_errors(response):
    if response.status_code != 200:
        return response
    formsets = response.context["inline_admin_formsets"]
    return response.context["adminform"].form.errors, [f.formset.errors for f in formsets]


def test_it_shows_a_teams_audit_events_on_its_admin_page_without_letting_staff_edit_them(staff_client, team, owner):
    team.created_by = owner
    team.save()
    event = record_audit(team=team, actor=owner, action="team.renamed", target="Acme Mobility")
    change_url = reverse("admin:accounts_team_change", args=[team.pk])
    page = staff_client.get(change_url)
    assert "team.renamed" in page.content.decode()

    data = resubmitted(page)
    data["name"] = "Acme Mobility GmbH"
    data["audit_events-0-action"] = "tampered"
    data["audit_events-0-DELETE"] = "on"
    data["audit_events-TOTAL_FORMS"] = "2"
    data["audit_events-1-action"] = "forged"
    data["audit_events-1-target"] = "forged"
    response = staff_client.post(change_url, data)

    assert response.status_code == 302, admin_errors(response)
    team.refresh_from_db()
    assert team.name == "Acme Mobility GmbH"
    event.refresh_from_db()
    assert event.action == "team.renamed"
    assert list(AuditEvent.objects.filter(team=team).values_list("action", flat=True)) == ["team.renamed"]


def test_it_lets_staff_rename_a_team_whose_creator_has_deleted_their_account(staff_client, team, owner):
    creator = UserFactory()
    team.created_by = creator
    team.save()
    creator.delete()
    change_url = reverse("admin:accounts_team_change", args=[team.pk])
    data = resubmitted(staff_client.get(change_url))
    data["name"] = "Acme Mobility GmbH"

    response = staff_client.post(change_url, data)

    assert response.status_code == 302, admin_errors(response)
    team.refresh_from_db()
    assert team.name == "Acme Mobility GmbH"
    assert team.created_by is None
