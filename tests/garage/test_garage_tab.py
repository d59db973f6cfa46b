"""The Garage tab: Owners apply (draft, submit, withdraw); every member follows the application."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.roles import Role
from billing import grants
from billing.lifecycle import current_period
from billing.models import BillingPeriod, Grant
from garage import services
from garage.forms import GarageApplicationForm
from garage.models import GarageApplication, GarageReviewEvent, ProgramDetails
from tests.conftest import login_as
from tests.factories import GARAGE_APPLICATION, UserFactory

pytestmark = pytest.mark.django_db

URL = "/garage/"
SUPPORT = "garage-desk@ignition.example"


@pytest.fixture
def membership(team, owner):
    return owner.memberships.get(team=team)


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, email="reviewer@ignition.example")


@pytest.fixture
def program(db):
    return ProgramDetails.objects.create(
        support_contact=SUPPORT, booking_url="https://cal.ignition.example/garage", test_fleet="Fleet token: FLEET-42"
    )


def submitted(membership, **changes) -> GarageApplication:
    data = {**services_data(GARAGE_APPLICATION), **changes}
    return services.submit(membership, data)


def services_data(post: dict) -> dict:
    """The cleaned values the form would hand the services."""
    form = GarageApplicationForm(post, complete=True)
    assert form.is_valid(), form.errors
    return form.cleaned_data


def post(client, action, **data):
    return client.post(URL, {"action": action, **data})


def html(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


# --- applying --------------------------------------------------------------------------------------------------


def test_an_owner_sees_the_program_and_an_empty_form(owner_client):
    page = html(owner_client.get(URL))
    assert "Free calls for early-stage startups" in page
    assert "20 vehicles for 3 months" in page
    assert 'name="action" value="save"' in page and 'name="action" value="submit"' in page
    assert "csrfmiddlewaretoken" in page


def test_a_partial_draft_is_saved_and_shown_again(owner_client, team):
    response = post(owner_client, "save", company_name="Acme Mobility Inc.", team_size="6")
    assert response.status_code == 302 and response["Location"] == URL
    draft = GarageApplication.objects.get(team=team)
    assert (draft.status, draft.company_name, draft.team_size, draft.website) == ("draft", "Acme Mobility Inc.", 6, "")
    page = owner_client.get(URL)
    assert any("Draft saved" in text for text in messages_of(page))
    assert 'value="Acme Mobility Inc."' in html(page) and 'value="6"' in html(page)
    # Saving again edits the same draft.
    post(owner_client, "save", company_name="Acme Mobility", team_size="")
    draft.refresh_from_db()
    assert (draft.company_name, draft.team_size) == ("Acme Mobility", None)
    assert GarageApplication.objects.filter(team=team).count() == 1


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("website", "not a url", "Enter a valid URL."),
        ("founded_on", "2999-01-01", "cannot be in the future"),
        ("founded_on", "1899-12-31", "from 1900 on"),
        ("founded_on", "31/02/2024", "Enter a valid date."),
        ("funding_raised_usd", "-1", "greater than or equal to 0"),
        ("funding_raised_usd", "lots", "Enter a whole number."),
        ("team_size", "0", "greater than or equal to 1"),
        ("team_size", "100001", "less than or equal to 100000"),
        ("expected_vehicles", "-5", "greater than or equal to 0"),
        ("expected_vehicles", "10000001", "less than or equal to 10000000"),
        ("contact_email", "ada-at-acme", "Enter a valid email address."),
        ("stage", "unicorn", "Select a valid choice."),
    ],
)
@pytest.mark.parametrize("action", ["save", "submit"])
def test_malformed_values_give_field_errors_and_save_nothing(owner_client, team, action, field, value, error):
    data = {**GARAGE_APPLICATION, field: value} if action == "submit" else {field: value}
    response = post(owner_client, action, **data)
    assert response.status_code == 200
    assert error in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in html(response)
    assert not GarageApplication.objects.filter(team=team).exists()


def test_an_incomplete_submit_shows_field_errors_and_submits_nothing(owner_client, team):
    post(owner_client, "save", company_name="Acme Mobility Inc.")
    response = post(owner_client, "submit", company_name="Acme Mobility Inc.", website="https://acme.example")
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == set(GARAGE_APPLICATION) - {"company_name", "website"}
    assert errors["contact_email"] == ["Enter the contact's email address."]
    assert "Choose your company&#x27;s stage." in html(response)
    assert any("not submitted yet" in text for text in messages_of(response))
    application = GarageApplication.objects.get(team=team)
    assert (application.status, application.submitted_at) == ("draft", None)
    assert not GarageReviewEvent.objects.exists()
    assert mail.outbox == []


def test_a_complete_application_is_submitted_recorded_and_acknowledged(
    owner_client, team, owner, make_member, django_capture_on_commit_callbacks, send_queued_emails
):
    co_owner = make_member(Role.OWNER, email="cofounder@acme.example").user
    make_member(Role.VIEWER, email="viewer@acme.example")
    post(owner_client, "save", company_name="Draft name")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(owner_client, "submit", **GARAGE_APPLICATION)
    send_queued_emails()
    assert response.status_code == 302
    application = GarageApplication.objects.get(team=team)
    assert application.status == "submitted" and application.submitted_at is not None
    assert application.company_name == "Acme Mobility Inc." and application.funding_raised_usd == 750_000
    event = GarageReviewEvent.objects.get(application=application)
    assert (event.action, event.before, event.after, event.actor) == ("submitted", "draft", "submitted", owner)
    audit = AuditEvent.objects.get(team=team, action="garage.submitted")
    assert (audit.actor, audit.target) == (owner, "Acme Mobility Inc.")
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == sorted([owner.email, co_owner.email])
    page = owner_client.get(URL)
    text = html(page)
    assert any("Application submitted" in message for message in messages_of(page))
    assert "Your application is submitted" in text and "A charging planner for delivery fleets." in text
    assert f"{application.submitted_at:%-d %B %Y}" in text
    assert 'name="action"' not in text  # no form while it is open
    assert reverse("garage_withdraw") in text


def test_a_team_has_one_open_application_and_a_second_submit_is_refused(owner_client, team, membership):
    submitted(membership)
    response = post(owner_client, "submit", **{**GARAGE_APPLICATION, "company_name": "Second try"})
    assert response.status_code == 302
    assert any("being reviewed" in text for text in messages_of(owner_client.get(URL)))
    assert list(GarageApplication.objects.filter(team=team).values_list("company_name", "status")) == [
        ("Acme Mobility Inc.", "submitted")
    ]
    # A draft save is refused the same way.
    post(owner_client, "save", company_name="Sneaky draft")
    assert GarageApplication.objects.filter(team=team).count() == 1


def test_a_submit_without_an_action_or_with_an_unknown_one_changes_nothing(owner_client, team):
    for data in [GARAGE_APPLICATION, {**GARAGE_APPLICATION, "action": "accept"}]:
        response = owner_client.post(URL, data)
        assert response.status_code == 302
    assert not GarageApplication.objects.filter(team=team).exists()


# --- withdrawing -----------------------------------------------------------------------------------------------


def test_an_owner_withdraws_an_open_application_after_confirming(owner_client, team, membership, staff):
    application = submitted(membership)
    services.assign(application.pk, reviewer=staff, actor=staff)
    confirm = owner_client.get(reverse("garage_withdraw"))
    assert confirm.status_code == 200 and "Withdraw your application?" in html(confirm)
    application.refresh_from_db()
    assert application.status == "under_review"  # the confirm page changes nothing
    response = owner_client.post(reverse("garage_withdraw"))
    assert response.status_code == 302 and response["Location"] == URL
    application.refresh_from_db()
    assert application.status == "withdrawn"
    assert AuditEvent.objects.filter(team=team, action="garage.withdrawn").count() == 1
    page = owner_client.get(URL)
    assert any("Application withdrawn" in text for text in messages_of(page))
    assert "You withdrew your previous application" in html(page) and 'value="submit"' in html(page)
    # Withdrawing again is a message, not an error.
    again = owner_client.post(reverse("garage_withdraw"))
    assert again.status_code == 302
    assert any("no open application" in text for text in messages_of(owner_client.get(URL)))


def test_the_team_can_apply_again_after_withdrawing(owner_client, team, membership):
    first = submitted(membership)
    services.withdraw(membership)
    response = post(owner_client, "submit", **GARAGE_APPLICATION)
    assert response.status_code == 302
    statuses = dict(GarageApplication.objects.filter(team=team).values_list("pk", "status"))
    assert statuses[first.pk] == "withdrawn" and sorted(statuses.values()) == ["submitted", "withdrawn"]


# --- decisions ---------------------------------------------------------------------------------------------------


def test_a_rejected_team_sees_the_reason_and_when_it_may_apply_again(owner_client, membership, staff, team):
    application = submitted(membership)
    services.add_note(application.pk, note="Secret: their metrics look inflated.", actor=staff)
    application = services.reject(application.pk, reviewer=staff, reason="You have raised past Series A.")
    again = application.decided_at + timedelta(days=settings.GARAGE_REAPPLY_AFTER_DAYS)
    page = html(owner_client.get(URL))
    assert "You have raised past Series A." in page
    assert f"you can apply again from {again:%-d %B %Y}" in page
    assert "metrics look inflated" not in page and staff.email not in page
    assert 'name="action"' not in page
    # Posting anyway is refused with the same reason.
    post(owner_client, "submit", **GARAGE_APPLICATION)
    assert not GarageApplication.objects.filter(team=team, status="submitted").exists()


def test_an_accepted_team_sees_its_grant_what_remains_and_the_program(owner_client, membership, staff, team, program):
    application = submitted(membership)
    application = services.accept(application.pk, reviewer=staff)
    period = current_period(team.pk)
    BillingPeriod.objects.filter(pk=period.pk).update(requests_used=1_234)
    grant = application.grant
    page = html(owner_client.get(URL))
    assert f'<dd id="grant-requests">{grant.request_allowance:,}</dd>' in page
    assert f'<dd id="grant-vehicles">{grant.vehicle_allowance}</dd>' in page
    assert f"{grant.ends_at:%-d %B %Y}" in page
    left = f"{grant.request_allowance - 1_234:,} of {grant.request_allowance:,} free billable requests left this period"
    assert f'<p id="grant-state" class="period-state">{left} under your Garage grant.</p>' in page
    assert SUPPORT in page and "https://cal.ignition.example/garage" in page and "FLEET-42" in page
    assert staff.email not in page


def test_members_of_an_accepted_team_see_the_program_too(client, membership, staff, make_member, program):
    services.accept(submitted(membership).pk, reviewer=staff)
    login_as(client, make_member(Role.VIEWER))
    page = html(client.get(URL))
    assert SUPPORT in page and "FLEET-42" in page


@pytest.mark.parametrize("state", ["none", "draft", "submitted", "rejected", "withdrawn", "grant_ended"])
def test_a_team_that_is_not_accepted_never_sees_the_program_details(
    owner_client, membership, staff, team, program, state
):
    if state == "draft":
        services.save_draft(membership, {"company_name": "Acme"})
    elif state in ("submitted", "rejected", "withdrawn"):
        application = submitted(membership)
        if state == "rejected":
            services.reject(application.pk, reviewer=staff, reason="Not a fit.")
        elif state == "withdrawn":
            services.withdraw(membership)
    elif state == "grant_ended":
        application = services.accept(submitted(membership).pk, reviewer=staff)
        grants.end_grant(application.grant_id)
        services.end_due_grants_and_expire()
    page = html(owner_client.get(URL))
    assert SUPPORT not in page and "FLEET-42" not in page and "cal.ignition.example" not in page


def test_a_team_that_had_a_grant_cannot_apply_and_is_told_why(owner_client, team, staff):
    grant = grants.start_grant(team_id=team.pk, actor=staff)
    assert grants.end_grant(grant.pk)
    page = html(owner_client.get(URL))
    assert "already had a Garage grant" in page and "grants each team once" in page
    assert 'name="action"' not in page
    response = post(owner_client, "submit", **GARAGE_APPLICATION)
    assert response.status_code == 302
    assert any("already had a Garage grant" in text for text in messages_of(owner_client.get(URL)))
    assert not GarageApplication.objects.filter(team=team).exists()
    assert Grant.objects.filter(team=team).count() == 1


def test_an_expired_application_says_so(owner_client, membership, staff):
    application = services.accept(submitted(membership).pk, reviewer=staff)
    grants.end_grant(application.grant_id)
    services.expire_for_ended_grants([application.grant_id])
    page = html(owner_client.get(URL))
    assert "Your Garage grant has ended" in page and "grants each team once" in page


# --- who sees what -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_other_roles_see_the_tab_without_the_form_and_cannot_post(client, team, make_member, role):
    login_as(client, make_member(role))
    response = client.get(URL)
    assert response.status_code == 200
    page = html(response)
    assert "Free calls for early-stage startups" in page and "Ask your Owners" in page
    assert 'name="action"' not in page
    for url, data in [
        (URL, {"action": "save", **GARAGE_APPLICATION}),
        (URL, {"action": "submit", **GARAGE_APPLICATION}),
        (reverse("garage_withdraw"), {}),
    ]:
        assert client.post(url, data).status_code == 403
    assert client.get(reverse("garage_withdraw")).status_code == 403
    assert not GarageApplication.objects.filter(team=team).exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER])
def test_other_roles_see_an_open_application_status_but_cannot_withdraw_it(client, membership, make_member, role):
    application = submitted(membership)
    login_as(client, make_member(role))
    page = html(client.get(URL))
    assert "Your application is submitted" in page and "ask your Owners" in page
    assert reverse("garage_withdraw") not in page
    assert client.post(reverse("garage_withdraw")).status_code == 403
    application.refresh_from_db()
    assert application.status == "submitted"


def test_another_teams_application_is_never_shown(client, membership, other_team, staff, program):
    services.accept(submitted(membership, company_name="Acme Secret Project").pk, reviewer=staff)
    login_as(client, other_team.memberships.get())
    page = html(client.get(URL))
    assert "Acme Secret Project" not in page and SUPPORT not in page
    assert "Free calls for early-stage startups" in page and 'value="submit"' in page
    # Its Owner's actions touch only its own team.
    client.post(reverse("garage_withdraw"))
    assert GarageApplication.objects.get(company_name="Acme Secret Project").status == "accepted"


def test_get_changes_nothing(owner_client, membership, team):
    submitted(membership)
    before = list(GarageApplication.objects.values())
    events, audits = GarageReviewEvent.objects.count(), AuditEvent.objects.count()
    for url in [URL, f"{URL}?action=withdraw", reverse("garage_withdraw"), f"{URL}?action=submit&company_name=X"]:
        assert owner_client.get(url).status_code == 200
    assert list(GarageApplication.objects.values()) == before
    assert (GarageReviewEvent.objects.count(), AuditEvent.objects.count()) == (events, audits)


def test_posting_without_a_csrf_token_is_refused(owner, team):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(owner)
    assert csrf_client.post(URL, {"action": "save", "company_name": "X"}).status_code == 403
    assert not GarageApplication.objects.filter(team=team).exists()


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    for url in [URL, reverse("garage_withdraw")]:
        response = client.post(url, {"action": "save"})
        assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


def test_the_old_billing_route_is_gone():
    assert reverse("garage") == URL
    from billing import urls as billing_urls

    assert all(pattern.name != "garage" for pattern in billing_urls.urlpatterns)
