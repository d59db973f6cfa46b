"""The Garage program end to end with time travel: apply → accept → free usage beyond the Free allowance →
expiry (the periodic task, run twice) → back to Free's limits; and the rules about applying again."""

from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail

from accounts.roles import Role
from billing import closing, grants, lifecycle, metering
from garage import services, tasks
from garage.models import GarageApplication
from tests.billing.usage import count_billable_requests
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

COMPLETE = {
    "company_name": "Torque Labs",
    "website": "https://torque.example",
    "founded_on": date(2025, 6, 1),
    "stage": "seed",
    "funding_raised_usd": 750_000,
    "team_size": 6,
    "app_description": "A fleet maintenance planner.",
    "use_case": "Odometer and location to schedule services.",
    "expected_vehicles": 400,
    "contact_name": "Ada Torque",
    "contact_email": "ada@torque.example",
}


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="ada@torque.example")


@pytest.fixture
def reviewer():
    return UserFactory(is_staff=True, email="reviewer@ignition.example")


def test_apply_accept_use_beyond_free_then_expire_back_to_free_limits(
    owner_membership, reviewer, django_capture_on_commit_callbacks, send_queued_emails
):
    team = owner_membership.team
    with django_capture_on_commit_callbacks(execute=True):
        application = services.submit(owner_membership, COMPLETE)
        services.accept(application.pk, reviewer=reviewer)
    send_queued_emails()
    application.refresh_from_db()
    grant = application.grant
    assert (application.status, grant.request_allowance, grant.vehicle_allowance) == ("accepted", 25_000, 20)
    assert [m.subject for m in mail.outbox] == [
        "We received your Garage program application",
        "Welcome to the Garage program",
    ]

    vehicle = count_billable_requests(team, 300)  # three times Free's allowance, at $0
    period = lifecycle.current_period(team.pk)
    assert (period.requests_used, period.accrued_cents, period.unit_price_cents) == (300, 0, 0)
    invoice = closing.close_period(period.pk, now=period.end + timedelta(hours=2))
    assert invoice.total_cents == 0

    with time_machine.travel(grant.ends_at + timedelta(minutes=10), tick=False):
        assert tasks.end_due_grants() == 1
        assert tasks.end_due_grants() == 0  # the task again: nothing more
        application.refresh_from_db()
        assert application.status == "expired"
        now_period = lifecycle.current_period(team.pk)
        assert (now_period.request_allowance, now_period.vehicle_allowance) == (100, 5)  # Free's limits
        count_billable_requests(team, 100 - now_period.requests_used, vehicle=vehicle)
        with pytest.raises(metering.LimitReached, match="VEHICLE_REQUEST_LIMIT"):
            count_billable_requests(team, 1, vehicle=vehicle)

    assert "the program grants each team once" in services.why_team_cannot_apply(team)


def test_a_team_that_had_a_grant_cannot_submit_even_from_an_old_draft(owner_membership):
    services.save_draft(owner_membership, {"company_name": "Torque Labs"})
    grant = grants.start_grant(team_id=owner_membership.team_id)  # granted by staff some other way
    grants.end_grant(grant.pk)

    with pytest.raises(services.GarageError, match="already had a Garage grant"):
        services.submit(owner_membership, COMPLETE)
    assert not GarageApplication.objects.filter(status="submitted").exists()


def test_the_service_refuses_an_incomplete_application(owner_membership):
    with pytest.raises(services.GarageError, match="incomplete: .*website"):
        services.submit(owner_membership, {**COMPLETE, "website": ""})
    assert not GarageApplication.objects.filter(status="submitted").exists()


def test_a_rejected_team_may_apply_again_after_the_waiting_time(owner_membership, reviewer, settings):
    application = services.submit(owner_membership, COMPLETE)
    services.reject(application.pk, reviewer=reviewer, reason="We focus on teams with a working prototype.")
    assert "you can apply again from" in services.why_team_cannot_apply(owner_membership.team)
    with pytest.raises(services.GarageError, match="not accepted"):
        services.save_draft(owner_membership, {"company_name": "Torque Labs"})

    with time_machine.travel(timedelta(days=settings.GARAGE_REAPPLY_AFTER_DAYS, hours=1)):
        assert services.why_team_cannot_apply(owner_membership.team) is None
        assert services.submit(owner_membership, COMPLETE).status == "submitted"


def test_decisions_need_an_open_application_and_a_reason(owner_membership, reviewer):
    application = services.submit(owner_membership, COMPLETE)
    with pytest.raises(services.GarageError, match="reason"):
        services.reject(application.pk, reviewer=reviewer, reason="  ")
    services.accept(application.pk, reviewer=reviewer)
    with pytest.raises(services.GarageError, match="accepted: nothing to decide"):
        services.reject(application.pk, reviewer=reviewer, reason="Changed our mind")
    assert [event.action for event in application.events.all()] == ["submitted", "accepted"]
