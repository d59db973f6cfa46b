"""Contact sales: Owners ask for an Enterprise contract; sales is emailed the lead, staff follow it up in the admin."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.roles import Role
from notifications.models import OutboundEmail
from sales import services
from sales.models import Lead
from tests.conftest import login_as
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/billing/contact-sales/"
SALES = "deals@ignition.example"
REQUEST = {
    "company": "Acme Mobility Inc.",
    "expected_monthly_requests": "2500000",
    "expected_vehicles": "12000",
    "message": "We run a fleet of delivery vans.",
}
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _sales_email(settings):
    settings.SALES_EMAIL = SALES


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="ada@acme.example")


@pytest.fixture
def owner_client(client, owner_membership):
    return login_as(client, owner_membership)


def _send(client, capture, data=REQUEST, **kwargs):
    with capture(execute=True):
        return client.post(URL, data, **kwargs)


def test_the_form_is_prefilled_with_the_team_name(owner_client):
    response = owner_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="Acme Mobility"' in html and 'name="expected_monthly_requests"' in html
    assert "csrfmiddlewaretoken" in html and SALES in html


def test_an_owner_sends_a_request_and_sales_and_the_requester_are_emailed(
    owner_client, owner_membership, team, django_capture_on_commit_callbacks, send_queued_emails
):
    response = _send(owner_client, django_capture_on_commit_callbacks, follow=True)
    send_queued_emails()

    assert response.redirect_chain == [(reverse("billing"), 302)]
    assert "our sales team will reply by email" in response.content.decode()
    lead = Lead.objects.get()
    assert (lead.team, lead.requested_by, lead.company, lead.status) == (
        team, owner_membership.user, "Acme Mobility Inc.", "new"
    )  # fmt: skip
    assert (lead.expected_monthly_requests, lead.expected_vehicles) == (2_500_000, 12_000)
    to_sales, acknowledgement = mail.outbox
    assert to_sales.to == [SALES] and "Acme Mobility Inc." in to_sales.subject
    assert "2,500,000" in to_sales.body and "12,000" in to_sales.body and "delivery vans" in to_sales.body
    assert f"/admin/sales/lead/{lead.pk}/change/" in to_sales.body
    assert acknowledgement.to == ["ada@acme.example"]
    assert acknowledgement.subject == "We received your request to contact sales"
    event = AuditEvent.objects.get(team=team, action="sales.contact_requested")
    assert (event.actor, event.target, event.data) == (
        owner_membership.user,
        "Acme Mobility Inc.",
        {"lead_id": lead.pk},
    )


def test_the_message_is_optional(owner_client, django_capture_on_commit_callbacks, send_queued_emails):
    response = _send(owner_client, django_capture_on_commit_callbacks, {**REQUEST, "message": ""})
    send_queued_emails()

    assert response.status_code == 302
    assert Lead.objects.get().message == ""
    assert "(none)" in mail.outbox[0].body


def test_the_emails_are_queued_with_the_lead_and_sent_after_the_commit(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    data = {"company": "Acme", "expected_monthly_requests": 10, "expected_vehicles": 2}
    with django_capture_on_commit_callbacks() as callbacks:
        services.request_contact(owner_membership, data)
        assert OutboundEmail.objects.filter(status="queued").count() == 2
        assert mail.outbox == []

    assert len(callbacks) == 2  # each email's task is enqueued on commit
    assert send_queued_emails() == 2
    assert [message.to for message in mail.outbox] == [[SALES], ["ada@acme.example"]]


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("expected_monthly_requests", "0", "greater than or equal to 1"),
        ("expected_monthly_requests", str(10**12 + 1), "less than or equal to 1000000000000"),
        ("expected_monthly_requests", "lots", "Enter a whole number"),
        ("expected_monthly_requests", "", "Enter how many requests a month you expect."),
        ("expected_vehicles", "-5", "greater than or equal to 1"),
        ("expected_vehicles", str(10**9 + 1), "less than or equal to 1000000000"),
        ("expected_vehicles", "", "Enter how many vehicles you expect to connect."),
        ("company", "", "Enter your company&#x27;s name."),
        ("company", "x" * 121, "at most 120 characters"),
        ("message", "x" * 3001, "at most 3000 characters"),
    ],
)
def test_invalid_answers_are_form_errors_and_nothing_is_stored(
    owner_client, django_capture_on_commit_callbacks, send_queued_emails, field, value, error
):
    response = _send(owner_client, django_capture_on_commit_callbacks, {**REQUEST, field: value})
    send_queued_emails()

    assert response.status_code == 200
    assert error in response.content.decode()
    assert response.context["form"].errors.keys() == {field}
    assert not Lead.objects.exists() and mail.outbox == []
    assert not AuditEvent.objects.filter(action="sales.contact_requested").exists()


def test_the_largest_volumes_are_accepted(owner_client, django_capture_on_commit_callbacks):
    data = {**REQUEST, "expected_monthly_requests": str(10**12), "expected_vehicles": str(10**9)}

    assert _send(owner_client, django_capture_on_commit_callbacks, data).status_code == 302
    lead = Lead.objects.get()
    assert (lead.expected_monthly_requests, lead.expected_vehicles) == (10**12, 10**9)


def test_a_second_request_within_a_day_is_refused_and_allowed_after(
    owner_client, django_capture_on_commit_callbacks, send_queued_emails
):
    with time_machine.travel(START, tick=False):
        assert _send(owner_client, django_capture_on_commit_callbacks).status_code == 302
    send_queued_emails()
    mail.outbox.clear()

    with time_machine.travel(START + timedelta(hours=23, minutes=59), tick=False):
        response = _send(owner_client, django_capture_on_commit_callbacks)
    send_queued_emails()

    assert response.status_code == 200
    assert "Your team asked sales to get in touch on 2 March 2026 at 09:00 UTC" in response.content.decode()
    assert "You can send another request from 3 March 2026 at 09:00 UTC." in response.content.decode()
    assert Lead.objects.count() == 1 and mail.outbox == []

    with time_machine.travel(START + timedelta(hours=24, minutes=1), tick=False):
        assert _send(owner_client, django_capture_on_commit_callbacks).status_code == 302
    send_queued_emails()

    assert Lead.objects.count() == 2 and len(mail.outbox) == 2
    assert AuditEvent.objects.filter(action="sales.contact_requested").count() == 2


def test_a_lead_staff_have_taken_up_does_not_hold_back_a_new_request(owner_client, django_capture_on_commit_callbacks):
    _send(owner_client, django_capture_on_commit_callbacks)
    Lead.objects.update(status=Lead.Status.CONTACTED)

    assert _send(owner_client, django_capture_on_commit_callbacks).status_code == 302
    assert Lead.objects.count() == 2


def test_another_teams_request_does_not_hold_back_this_team(
    owner_membership, other_team, django_capture_on_commit_callbacks
):
    rival_owner = other_team.memberships.get()
    data = {"company": "Rival", "expected_monthly_requests": 10, "expected_vehicles": 2}
    services.request_contact(rival_owner, data)

    services.request_contact(owner_membership, {**data, "company": "Acme"})

    assert sorted(Lead.objects.values_list("company", flat=True)) == ["Acme", "Rival"]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_other_roles_cannot_contact_sales(
    client, make_member, django_capture_on_commit_callbacks, send_queued_emails, role
):
    membership = make_member(role)
    login_as(client, membership)

    assert client.get(URL).status_code == 403
    assert _send(client, django_capture_on_commit_callbacks).status_code == 403
    with pytest.raises(PermissionDenied):
        services.request_contact(membership, {"company": "A", "expected_monthly_requests": 1, "expected_vehicles": 1})
    assert not Lead.objects.exists() and send_queued_emails() == 0 and mail.outbox == []


def test_a_post_without_the_csrf_token_is_refused(owner_membership):
    client = login_as(Client(enforce_csrf_checks=True), owner_membership)

    assert client.post(URL, REQUEST).status_code == 403
    assert not Lead.objects.exists()


def test_the_billing_tab_and_the_enterprise_page_link_to_contact_sales(owner_client):
    link = f'href="{URL}">Contact sales</a>'

    billing = owner_client.get(reverse("billing")).content.decode()
    enterprise = owner_client.get(reverse("billing_plan_switch"), {"plan": "enterprise"}).content.decode()

    assert link in billing and SALES in billing
    assert link in enterprise and SALES in enterprise


# --- the admin --------------------------------------------------------------------------------------------------


@pytest.fixture
def lead(owner_membership):
    data = {"company": "Acme Fleet", "expected_monthly_requests": 4_000_000, "expected_vehicles": 900}
    return services.request_contact(owner_membership, data)


@pytest.fixture
def staff_client(client):
    user = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    TOTP.activate(user, generate_totp_secret())
    client.force_login(user)
    return client


def test_staff_see_leads_and_filter_them_by_status(staff_client, lead):
    changelist = reverse("admin:sales_lead_changelist")

    html = staff_client.get(changelist).content.decode()
    assert "By status" in html
    assert "Select lead to change" in html and "Acme Fleet" in html and "4000000" in html.replace(",", "")
    assert "Acme Fleet" in staff_client.get(changelist, {"q": "Acme"}).content.decode()
    assert "Acme Fleet" not in staff_client.get(changelist, {"status__exact": "won"}).content.decode()
    assert staff_client.get(reverse("admin:sales_lead_add")).status_code == 403


def test_staff_change_only_the_status_and_notes(staff_client, lead):
    url = reverse("admin:sales_lead_change", args=[lead.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="status"' in page and 'name="staff_notes"' in page and 'name="company"' not in page

    response = staff_client.post(url, {"status": "contacted", "staff_notes": "Call booked.", "company": "Changed",
                                       "expected_vehicles": "1"})  # fmt: skip

    assert response.status_code == 302
    lead.refresh_from_db()
    assert (lead.status, lead.staff_notes, lead.company, lead.expected_vehicles) == (
        "contacted", "Call booked.", "Acme Fleet", 900
    )  # fmt: skip


def test_non_staff_do_not_see_leads_in_the_admin(client, owner_membership, lead):
    login_as(client, owner_membership)

    response = client.get(reverse("admin:sales_lead_changelist"), follow=True)

    assert response.redirect_chain and response.redirect_chain[-1][0] == "/overview/"
    html = response.content.decode()
    assert "Ignition back office" not in html and "Select lead to change" not in html
