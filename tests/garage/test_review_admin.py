"""Staff review Garage applications in the admin: the queue, approve / reject / assign, notes, and who may."""

from datetime import date

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.roles import Role
from billing import lifecycle
from billing.models import Grant
from garage import services
from garage.models import GarageApplication, GarageReviewEvent, ProgramDetails
from tests.factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:garage_garageapplication_changelist")
Status = GarageApplication.Status


def _staff(**kwargs):
    """Staff with an authenticator app, as the back office requires (tests/billing/test_billing_admin.py)."""
    user = UserFactory(is_staff=True, **kwargs)
    TOTP.activate(user, generate_totp_secret())
    return user


@pytest.fixture
def staff(db):
    return _staff(email="ops@example.com", is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _apply(membership, company, **overrides):
    data = {
        "company_name": company,
        "website": f"https://{company.lower().replace(' ', '')}.example",
        "founded_on": date(2024, 3, 1),
        "stage": "seed",
        "funding_raised_usd": 500_000,
        "team_size": 4,
        "app_description": f"{company} builds a fleet charging app.",
        "use_case": "Read battery level and start charging.",
        "expected_vehicles": 40,
        "contact_name": "Ada Founder",
        "contact_email": membership.user.email,
        **overrides,
    }
    return services.submit(membership, data)


@pytest.fixture
def application(make_member):
    return _apply(make_member(Role.OWNER, email="founder@acme.example"), "Acme Charging")


def _another(company, team_name):
    return _apply(MembershipFactory(team=TeamFactory(name=team_name), role=Role.OWNER), company)


def _action(client, action, applications, **form):
    data = {"action": action, "_selected_action": [a.pk for a in applications], **form}
    return client.post(CHANGELIST, data, follow=True)


def _messages(response):
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


# --- the queue ------------------------------------------------------------------------------------------------------


def test_the_queue_shows_oldest_first_with_the_teams_plan_and_usage(staff_client, application, team):
    _another("Zeta Fleet", "Zeta Team")
    period = lifecycle.current_period(team.pk)
    period.requests_used = 37
    period.save(update_fields=["requests_used"])

    page = staff_client.get(CHANGELIST).content.decode()

    assert page.index("Acme Charging") < page.index("Zeta Fleet")
    acme_row, zeta_row = page[page.index("Acme Charging") : page.index("Zeta Fleet")], page[page.index("Zeta Fleet") :]
    assert '<td class="field-plan_name">Free</td>' in acme_row
    assert '<td class="field-usage_this_period">37 / 100</td>' in acme_row
    assert '<td class="field-usage_this_period">no period yet</td>' in zeta_row  # Zeta has not used the API yet


def test_the_queue_filters_and_searches(staff_client, application, staff):
    other = _another("Zeta Fleet", "Zeta Team")
    services.assign(other.pk, reviewer=staff, actor=staff)

    def listed(query):
        return {a.pk for a in staff_client.get(CHANGELIST + query).context["cl"].result_list}

    assert listed("") == {application.pk, other.pk}
    assert listed("?status__exact=under_review") == {other.pk}
    assert listed(f"?reviewer__id__exact={staff.pk}") == {other.pk}
    assert listed("?q=acmecharging.example") == {application.pk}
    assert listed("?q=Zeta+Team") == {other.pk}
    assert listed("?q=founder@acme") == {application.pk}


def test_the_queue_does_not_query_per_application(staff_client, application):
    staff_client.get(CHANGELIST)  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as one:
        staff_client.get(CHANGELIST)
    for n in range(3):
        lifecycle.current_period(_another(f"Company {n}", f"Team {n}").team_id)
    with CaptureQueriesContext(connection) as four:
        page = staff_client.get(CHANGELIST)

    assert len(page.context["cl"].result_list) == 4
    assert len(four) == len(one)


def test_the_change_page_shows_the_application_read_only_with_history(staff_client, application, team):
    lifecycle.current_period(team.pk)
    url = reverse("admin:garage_garageapplication_change", args=[application.pk])

    page = staff_client.get(url).content.decode()

    assert "Read battery level and start charging." in page and "Ada Founder" in page
    assert 'name="company_name"' not in page and 'name="status"' not in page and 'name="_save"' not in page
    assert "0 / 100" in page  # this period's usage
    assert "submitted" in page  # the history inline
    assert "$500,000" in page and "500000" not in page  # the funding, in dollars
    assert "GarageReviewEvent object" not in page and f"by {application.created_by.email}" in page  # readable rows
    assert reverse("admin:garage_garageapplication_approve", args=[application.pk]) in page
    assert reverse("admin:garage_garageapplication_note", args=[application.pk]) in page


def test_saving_the_change_form_writes_nothing(staff_client, application):
    url = reverse("admin:garage_garageapplication_change", args=[application.pk])
    before = GarageApplication.objects.get(pk=application.pk)

    event = application.events.get()
    inline = {"events-TOTAL_FORMS": "1", "events-INITIAL_FORMS": "1", "events-0-id": event.pk,
              "events-0-application": application.pk}  # fmt: skip

    response = staff_client.post(url, {"status": "accepted", "company_name": "Forged", "_continue": "1", **inline})

    assert response.status_code == 302
    after = GarageApplication.objects.get(pk=application.pk)
    assert (after.status, after.company_name, after.updated_at) == (
        Status.SUBMITTED,
        "Acme Charging",
        before.updated_at,
    )


def test_staff_cannot_add_or_delete_applications(staff_client, application):
    assert staff_client.get(reverse("admin:garage_garageapplication_add")).status_code == 403
    delete = reverse("admin:garage_garageapplication_delete", args=[application.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert GarageApplication.objects.filter(pk=application.pk).exists()


# --- approving ------------------------------------------------------------------------------------------------------


def test_approving_first_asks_for_the_allowance(staff_client, application, settings):
    settings.GARAGE_GRANT_REQUESTS = 12_345

    response = _action(staff_client, "approve", [application])

    assert response.templates[0].name == "admin/confirm_action.html"
    assert 'value="12345"' in response.content.decode()
    application.refresh_from_db()
    assert application.status == Status.SUBMITTED and not Grant.objects.exists()


def test_bulk_approve_starts_grants_at_the_chosen_allowance(
    staff_client, staff, application, team, django_capture_on_commit_callbacks, send_queued_emails
):
    other = _another("Zeta Fleet", "Zeta Team")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = _action(
            staff_client, "approve", [application, other], confirm="yes", request_allowance="30000", note="Great fit"
        )
    send_queued_emails()

    assert ("success", "Approved 2 applications.") in _messages(response)
    for app in [application, other]:
        app.refresh_from_db()
        assert app.status == Status.ACCEPTED and app.decided_by == staff
        assert app.grant.request_allowance == 30_000
        period = lifecycle.current_period(app.team_id)
        assert (period.request_allowance, period.unit_price_cents) == (30_000, 0)
        event = GarageReviewEvent.objects.filter(application=app).last()
        assert (event.action, event.before, event.after, event.actor) == ("accepted", "submitted", "accepted", staff)
    assert event.note == "Great fit"
    accepted = [m for m in mail.outbox if m.subject == "Welcome to the Garage program"]
    assert sorted(m.to[0] for m in accepted) == sorted(
        ["founder@acme.example", other.team.memberships.get().user.email]
    )
    assert "30,000" in accepted[0].body


def test_approving_a_decided_application_warns_and_goes_on_with_the_rest(staff_client, staff, application):
    services.reject(application.pk, reviewer=staff, reason="Not a fit")
    other = _another("Zeta Fleet", "Zeta Team")

    response = _action(staff_client, "approve", [application, other], confirm="yes", request_allowance="")

    warnings = [text for level, text in _messages(response) if level == "warning"]
    assert len(warnings) == 1 and "Acme Charging" in warnings[0] and "rejected" in warnings[0]
    application.refresh_from_db()
    assert application.status == Status.REJECTED and application.grant is None
    other.refresh_from_db()
    assert other.status == Status.ACCEPTED and other.grant.request_allowance == 25_000


def test_approving_from_the_change_page(staff_client, staff, application):
    url = reverse("admin:garage_garageapplication_approve", args=[application.pk])
    assert staff_client.get(url).status_code == 200

    response = staff_client.post(url, {"confirm": "yes", "request_allowance": "5000"})

    assert response["Location"] == reverse("admin:garage_garageapplication_change", args=[application.pk])
    application.refresh_from_db()
    assert application.status == Status.ACCEPTED and application.grant.request_allowance == 5000
    page = staff_client.get(response["Location"]).content.decode()
    assert f"#{application.grant.pk}: 5,000 requests per period" in page
    assert url not in page  # decided: no more Approve button


# --- rejecting ------------------------------------------------------------------------------------------------------


def test_rejecting_needs_a_reason(staff_client, application):
    response = _action(staff_client, "reject", [application], confirm="yes", reason="   ")

    assert response.templates[0].name == "admin/confirm_action.html"
    assert "This field is required." in response.content.decode()
    application.refresh_from_db()
    assert application.status == Status.SUBMITTED and application.decision_reason == ""
    assert not GarageReviewEvent.objects.filter(application=application, action="rejected").exists()


def test_rejecting_with_a_reason_emails_it_to_the_owners(
    staff_client, staff, application, django_capture_on_commit_callbacks, send_queued_emails
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _action(staff_client, "reject", [application], confirm="yes", reason="We need a working prototype.")
    send_queued_emails()

    assert ("success", "Rejected 1 application.") in _messages(response)
    application.refresh_from_db()
    assert application.status == Status.REJECTED and application.decided_by == staff
    assert application.decision_reason == "We need a working prototype."
    [email] = [m for m in mail.outbox if m.subject == "Your Garage program application"]
    assert email.to == ["founder@acme.example"] and "We need a working prototype." in email.body
    assert GarageReviewEvent.objects.filter(application=application, action="rejected", actor=staff).exists()


# --- assigning and notes --------------------------------------------------------------------------------------------


def test_assign_to_me(staff_client, staff, application):
    response = _action(staff_client, "assign_to_me", [application])

    assert ("success", "Assigned 1 application.") in _messages(response)
    application.refresh_from_db()
    assert application.reviewer == staff and application.status == Status.UNDER_REVIEW
    assert GarageReviewEvent.objects.filter(application=application, action="assigned", actor=staff).exists()


def test_adding_an_internal_note(staff_client, staff, application):
    url = reverse("admin:garage_garageapplication_note", args=[application.pk])

    response = staff_client.post(url, {"note": "Called the founder; demo next week."}, follow=True)

    application.refresh_from_db()
    assert "Called the founder; demo next week." in application.internal_notes
    assert "Called the founder; demo next week." in response.content.decode()  # shown back on the change page
    assert GarageReviewEvent.objects.filter(application=application, action="note", actor=staff).exists()
    assert application.status == Status.SUBMITTED


def test_an_empty_note_is_refused(staff_client, application):
    url = reverse("admin:garage_garageapplication_note", args=[application.pk])

    response = staff_client.post(url, {"note": "  "}, follow=True)

    assert ("error", "Write the note first.") in _messages(response)
    application.refresh_from_db()
    assert application.internal_notes == ""


def test_a_note_needs_the_csrf_token(client, staff, application):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)

    response = csrf_client.post(reverse("admin:garage_garageapplication_note", args=[application.pk]), {"note": "x"})

    assert response.status_code == 403
    application.refresh_from_db()
    assert application.internal_notes == ""


# --- who may --------------------------------------------------------------------------------------------------------


def test_non_staff_are_sent_to_the_login_and_change_nothing(client, owner, application):
    client.force_login(owner)
    urls = [
        CHANGELIST,
        reverse("admin:garage_garageapplication_approve", args=[application.pk]),
        reverse("admin:garage_garageapplication_note", args=[application.pk]),
    ]
    data = {"confirm": "yes", "action": "approve", "_selected_action": [application.pk], "note": "sneaky"}

    for url in urls:
        response = client.post(url, data)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url

    application.refresh_from_db()
    assert application.status == Status.SUBMITTED and application.internal_notes == "" and not Grant.objects.exists()


def test_staff_who_may_only_view_cannot_approve(client, application):
    viewer = _staff()
    viewer.user_permissions.add(Permission.objects.get(codename="view_garageapplication"))
    client.force_login(viewer)
    assert client.get(CHANGELIST).status_code == 200
    approve = reverse("admin:garage_garageapplication_approve", args=[application.pk])

    _action(client, "approve", [application], confirm="yes", request_allowance="30000")
    assert client.post(approve, {"confirm": "yes"}).status_code == 403
    assert (
        client.post(reverse("admin:garage_garageapplication_note", args=[application.pk]), {"note": "x"}).status_code
        == 403
    )

    application.refresh_from_db()
    assert application.status == Status.SUBMITTED and application.internal_notes == "" and not Grant.objects.exists()


# --- program details ------------------------------------------------------------------------------------------------


def test_program_details_are_one_editable_row(staff_client):
    add = reverse("admin:garage_programdetails_add")
    form = {
        "support_contact": "garage@ignition.example",
        "booking_url": "https://cal.example/garage",
        "test_fleet": "Ask",
    }

    assert staff_client.post(add, form).status_code == 302
    details = ProgramDetails.objects.get()
    assert staff_client.get(add).status_code == 403

    change = reverse("admin:garage_programdetails_change", args=[details.pk])
    assert staff_client.post(change, {**form, "test_fleet": "VINs on the wiki"}).status_code == 302
    assert ProgramDetails.current().test_fleet == "VINs on the wiki"
