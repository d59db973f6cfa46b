"""Long lists are paged: applications and the audit log."""

from django.urls import reverse

from accounts.audit import record_audit
from accounts.roles import Role
from accounts.views.applications import APPLICATION_PAGE_SIZE
from accounts.views.team import AUDIT_PAGE_SIZE
from tests.conftest import login_as
from tests.factories import ApplicationFactory


def test_the_application_list_is_paged(owner_client, team):
    for n in range(APPLICATION_PAGE_SIZE + 3):
        ApplicationFactory(team=team, name=f"App {n:03d}")
    first = owner_client.get(reverse("application_list")).content.decode()
    assert "App 000" in first and f"App {APPLICATION_PAGE_SIZE - 1:03d}" in first
    assert f"App {APPLICATION_PAGE_SIZE:03d}" not in first
    assert "Page 1 of 2" in first
    second = owner_client.get(reverse("application_list") + "?page=2").content.decode()
    assert f"App {APPLICATION_PAGE_SIZE + 2:03d}" in second and "App 000" not in second


def test_a_page_number_out_of_range_shows_the_last_page_not_an_error(owner_client, team):
    ApplicationFactory(team=team, name="Only app")
    for bad in ["99", "abc", "-1"]:
        response = owner_client.get(reverse("application_list") + f"?page={bad}")
        assert response.status_code == 200
        assert "Only app" in response.content.decode()


def test_the_full_audit_log_is_paged_newest_first(owner_client, team, owner):
    for n in range(AUDIT_PAGE_SIZE + 5):
        record_audit(team=team, actor=owner, action="test.event", target=f"event-{n:03d}")
    first = owner_client.get(reverse("audit_log")).content.decode()
    assert f"event-{AUDIT_PAGE_SIZE + 4:03d}" in first
    assert "event-000" not in first
    second = owner_client.get(reverse("audit_log") + "?page=2").content.decode()
    assert "event-000" in second


def test_the_audit_log_is_for_owners_and_admins(client, make_member, other_team):
    for role, status in [(Role.ADMIN, 200), (Role.EDITOR, 403), (Role.VIEWER, 403)]:
        login_as(client, make_member(role))
        assert client.get(reverse("audit_log")).status_code == status


def test_the_audit_log_never_shows_another_teams_events(owner_client, other_team):
    record_audit(team=other_team, actor=None, action="secret.event", target="rival-thing")
    assert "rival-thing" not in owner_client.get(reverse("audit_log")).content.decode()
