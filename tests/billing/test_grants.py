"""Grants of free usage (the Garage program) with time travel: the grant's terms replace the plan's while it
lasts, usage under it is invoiced at $0, and when it ends the team is back on its plan's limits."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.roles import Role
from billing import closing, grants, lifecycle, metering, services
from billing.models import BillingEvent, Grant, Subscription
from tests.billing.usage import count_billable_requests

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="founder@example.com")


def terms(team_id, moment=None) -> tuple:
    period = lifecycle.current_period(team_id, moment)
    return period.request_allowance, period.vehicle_allowance, period.unit_price_cents


def test_a_free_team_at_its_limit_gets_the_grants_allowance_at_no_charge(owner_membership):
    team = owner_membership.team
    vehicle = count_billable_requests(team, 100)
    with pytest.raises(metering.LimitReached, match="VEHICLE_REQUEST_LIMIT"):
        count_billable_requests(team, 1, vehicle=vehicle)

    grant = grants.start_grant(team_id=team.pk, request_allowance=25_000)

    assert terms(team.pk) == (25_000, 20, 0)
    count_billable_requests(team, 400, vehicle=vehicle)  # beyond the Free allowance, free of charge
    period = lifecycle.current_period(team.pk)
    assert (period.requests_used, period.accrued_cents) == (500, 0)
    assert (grant.ends_at - grant.starts_at).days in (89, 90, 91, 92)  # three months
    event = BillingEvent.objects.get(team=team, kind="grant")
    assert event.after["request_allowance"] == 25_000

    invoice = closing.close_period(period.pk, now=period.end + timedelta(hours=2))
    assert (invoice.total_cents, invoice.status) == (0, "paid")
    assert sum(line.quantity for line in invoice.lines.all()) == 500


def test_periods_opened_during_the_grant_take_its_terms_and_end_it_returns_to_the_plan(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    team_id = owner_membership.team_id
    start = timezone.now()
    grant = grants.start_grant(team_id=team_id, request_allowance=1_000, now=start)
    next_month = lifecycle.current_period(team_id).end + timedelta(days=1)
    assert terms(team_id, next_month) == (1_000, 20, 0)

    with time_machine.travel(grant.ends_at + timedelta(minutes=5), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            ended = grants.end_due_grants()
        send_queued_emails()
        assert ended == [grant.pk]
        assert grants.end_due_grants() == []  # again: nothing more
        assert terms(team_id) == (100, 5, 0)  # Free's terms for the rest of the period
        later = lifecycle.current_period(team_id).end + timedelta(days=1)
        assert terms(team_id, later) == (100, 5, 0)

    grant.refresh_from_db()
    assert grant.status == "ended"
    assert [m.subject for m in mail.outbox] == ["Your Garage grant has ended"]
    assert "back on the Free plan" in mail.outbox[0].body


def test_a_team_past_the_plans_allowance_when_the_grant_ends_is_refused_until_it_upgrades(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    team = owner_membership.team
    first = lifecycle.current_period(team.pk)
    grant = grants.start_grant(team_id=team.pk, months=1, now=first.start + timedelta(days=1))  # ends a day into
    with time_machine.travel(grant.ends_at - timedelta(hours=12), tick=False):  # …the next period
        vehicle = count_billable_requests(team, 150)
    with time_machine.travel(grant.ends_at + timedelta(minutes=1), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert grants.end_due_grants() == [grant.pk]
        send_queued_emails()
        assert terms(team.pk) == (100, 5, 0)
        with pytest.raises(metering.LimitReached, match="VEHICLE_REQUEST_LIMIT"):
            count_billable_requests(team, 1, vehicle=vehicle)
    assert "This period's allowance is already used" in mail.outbox[-1].body


def test_upgrading_during_a_grant_keeps_the_grant_terms(owner_membership):
    team_id = owner_membership.team_id
    grants.start_grant(team_id=team_id)
    Subscription.objects.filter(team_id=team_id).update(card_on_file=True)  # the card flow is tested elsewhere

    services.switch_plan(actor=owner_membership, plan_code="payg")

    assert terms(team_id) == (25_000, 20, 0)
    assert lifecycle.subscription_for(team_id).plan.code == "payg"  # and when the grant ends, Pay-as-you-go's


def test_one_active_grant_per_team(owner_membership):
    grants.start_grant(team_id=owner_membership.team_id)
    with pytest.raises(grants.GrantError, match="already has an active grant"):
        grants.start_grant(team_id=owner_membership.team_id)
    assert Grant.objects.filter(team=owner_membership.team).count() == 1


def test_owners_are_reminded_14_days_and_1_day_before_the_end_once_each(owner_membership, send_queued_emails):
    grant = grants.start_grant(team_id=owner_membership.team_id)
    assert grants.send_due_reminders(grant.ends_at - timedelta(days=15)) == 0
    assert grants.send_due_reminders(grant.ends_at - timedelta(days=13)) == 1
    assert grants.send_due_reminders(grant.ends_at - timedelta(days=12)) == 0
    assert grants.send_due_reminders(grant.ends_at - timedelta(hours=20)) == 1
    assert grants.send_due_reminders(grant.ends_at - timedelta(hours=19)) == 0
    send_queued_emails()
    assert [m.subject for m in mail.outbox] == [
        "Your Garage grant ends in 14 days",
        "Your Garage grant ends tomorrow",
    ]


def test_the_billing_tab_shows_the_grant_and_what_remains(owner_membership, client):
    team = owner_membership.team
    grant = grants.start_grant(team_id=team.pk, request_allowance=2_000)
    count_billable_requests(team, 30)
    client.force_login(owner_membership.user)

    page = client.get("/billing/").content.decode()

    assert f"Garage grant until {grant.ends_at:%-d %B %Y}:" in page
    assert "2,000 billable requests a period across 20 vehicles, free of charge" in page
    assert "1,970 of 2,000 free billable requests left this period under your Garage grant." in page
    grants.end_grant(grant.pk)
    assert "Garage grant until" not in client.get("/billing/").content.decode()


def test_a_grant_never_lowers_a_paying_teams_allowance(owner_membership):
    team_id = owner_membership.team_id
    lifecycle.subscription_for(team_id)
    Subscription.objects.filter(team_id=team_id).update(card_on_file=True)  # the card flow is tested elsewhere
    services.switch_plan(actor=owner_membership, plan_code="payg")  # 2,000 requests across 20 vehicles

    grants.start_grant(team_id=team_id, request_allowance=1_000, vehicle_allowance=10)

    assert terms(team_id) == (2_000, 20, 0)  # the larger allowances, and free
