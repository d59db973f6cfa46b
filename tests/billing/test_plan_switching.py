"""Plan switching and period upkeep services: who may switch, when it takes effect, what it costs, who is told."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied

from accounts.models import AuditEvent
from accounts.roles import Role
from billing import alerts, lifecycle, services
from billing.models import BillingEvent, BillingPeriod, Subscription, UsageAlert
from tests.billing.usage import count_billable_requests
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="boss@example.com")


@pytest.fixture
def with_card(owner_membership):
    Subscription.objects.filter(pk=lifecycle.subscription_for(owner_membership.team_id).pk).update(card_on_file=True)
    return owner_membership


def test_upgrading_needs_a_card_and_changes_nothing_without_one(owner_membership):
    with pytest.raises(services.PlanChangeError, match="credit card"):
        services.switch_plan(actor=owner_membership, plan_code="payg")
    assert lifecycle.subscription_for(owner_membership.team_id).plan.code == "free"
    assert not BillingEvent.objects.filter(kind="plan_changed").exists()


def test_upgrading_takes_effect_at_once_and_only_later_requests_are_charged(with_card, team):
    vehicle = count_billable_requests(team, 60)

    services.switch_plan(actor=with_card, plan_code="payg")
    count_billable_requests(team, 50, vehicle=vehicle)

    period = lifecycle.current_period(team.pk)
    assert (period.plan.code, period.request_allowance, period.vehicle_allowance) == ("payg", 2000, 20)
    assert (period.requests_used, period.accrued_cents) == (110, 50 * 15)
    change = BillingEvent.objects.get(kind="plan_changed")
    assert (change.before["plan"], change.after["plan"], change.actor) == ("free", "payg", with_card.user)
    assert change.before["request_allowance"] == 100 and change.after["request_allowance"] == 2000
    assert AuditEvent.objects.filter(team=team, action="billing.plan_changed").exists()


def test_an_upgrade_is_confirmed_by_email_to_the_owners(
    with_card, make_member, django_capture_on_commit_callbacks, send_queued_emails
):
    make_member(Role.ADMIN, email="admin@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        services.switch_plan(actor=with_card, plan_code="payg")
    send_queued_emails()
    assert [message.to for message in mail.outbox] == [["boss@example.com"]]
    assert "Pay-as-you-go" in mail.outbox[0].subject


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_only_owners_switch(make_member, role):
    with pytest.raises(PermissionDenied):
        services.switch_plan(actor=make_member(role), plan_code="payg")


def test_enterprise_and_the_current_plan_are_refused(with_card):
    with pytest.raises(services.PlanChangeError, match="Contact sales"):
        services.switch_plan(actor=with_card, plan_code="enterprise")
    with pytest.raises(services.PlanChangeError, match="already"):
        services.switch_plan(actor=with_card, plan_code="free")
    with pytest.raises(services.PlanChangeError):
        services.switch_plan(actor=with_card, plan_code="no-such-plan")


def test_downgrading_waits_for_the_period_end_then_the_free_allowance_applies(with_card, team):
    services.switch_plan(actor=with_card, plan_code="payg")
    count_billable_requests(team, 120)

    subscription = services.switch_plan(actor=with_card, plan_code="free")

    period = lifecycle.current_period(team.pk)
    assert (subscription.plan.code, subscription.pending_plan.code, subscription.pending_at) == (
        "payg",
        "free",
        period.end,
    )
    assert period.request_allowance == 2000  # the rest of this period stays Pay-as-you-go
    with time_machine.travel(period.end + timedelta(minutes=5), tick=False):
        following = lifecycle.current_period(team.pk)
    assert (following.plan.code, following.request_allowance, following.unit_price_cents) == ("free", 100, 0)
    period.refresh_from_db()
    assert period.accrued_cents == 120 * 15  # billed as usual
    assert lifecycle.subscription_for(team.pk).pending_plan is None


def test_a_scheduled_downgrade_can_be_canceled_until_the_period_ends(with_card, team):
    services.switch_plan(actor=with_card, plan_code="payg")
    services.switch_plan(actor=with_card, plan_code="free")

    services.cancel_plan_change(actor=with_card)

    period = lifecycle.current_period(team.pk)
    with time_machine.travel(period.end + timedelta(minutes=5), tick=False):
        assert lifecycle.current_period(team.pk).plan.code == "payg"
    kinds = list(BillingEvent.objects.filter(team=team).values_list("kind", flat=True))
    assert {"plan_changed", "plan_change_scheduled", "plan_change_canceled"} <= set(kinds)
    with pytest.raises(services.PlanChangeError, match="no scheduled"):
        services.cancel_plan_change(actor=with_card)


def test_scheduling_the_same_downgrade_twice_is_refused(with_card):
    services.switch_plan(actor=with_card, plan_code="payg")
    services.switch_plan(actor=with_card, plan_code="free")
    with pytest.raises(services.PlanChangeError, match="already scheduled"):
        services.switch_plan(actor=with_card, plan_code="free")


def test_upgrading_again_drops_a_scheduled_downgrade(with_card, team):
    services.switch_plan(actor=with_card, plan_code="payg")
    services.switch_plan(actor=with_card, plan_code="free")
    with pytest.raises(services.PlanChangeError, match="cancel the scheduled switch"):
        services.switch_plan(actor=with_card, plan_code="payg")


def test_the_beat_task_opens_missing_periods_once(team):
    other = TeamFactory()
    assert services.open_due_periods() >= 2
    assert services.open_due_periods() == 0
    assert BillingPeriod.objects.filter(team__in=[team, other]).count() == 2


def test_a_usage_alert_is_emailed_to_the_owners_once(owner_membership, team, send_queued_emails):
    count_billable_requests(team, 80)
    alert = UsageAlert.objects.get(kind="requests_80")

    assert alerts.send_usage_alert(alert.pk) is True
    assert alerts.send_usage_alert(alert.pk) is False  # a rerun of the task sends nothing
    send_queued_emails()

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["boss@example.com"]
    assert "80%" in mail.outbox[0].subject
    assert "80 of the 100" in mail.outbox[0].body


def test_the_sweep_sends_alerts_whose_task_was_lost(owner_membership, team, send_queued_emails):
    count_billable_requests(team, 100)
    UsageAlert.objects.update(created_at=UsageAlert.objects.first().created_at - timedelta(minutes=5))
    from billing.tasks import send_pending_usage_alerts

    assert send_pending_usage_alerts() == 2
    assert send_pending_usage_alerts() == 0
    send_queued_emails()
    assert sorted(len(m.to) for m in mail.outbox) == [1, 1]


def test_after_an_upgrade_the_new_allowances_thresholds_alert_again(with_card, team):
    count_billable_requests(team, 80)
    services.switch_plan(actor=with_card, plan_code="payg")
    # Jump close to the new 80% mark without 1,500 more requests (this test is about the alerts only).
    BillingPeriod.objects.filter(team=team).update(requests_used=1599)

    count_billable_requests(team, 1)

    alerts_raised = set(UsageAlert.objects.filter(period__team=team).values_list("kind", "allowance"))
    assert alerts_raised == {("requests_80", 100), ("requests_80", 2000)}


def test_an_upgrade_racing_the_rollover_also_upgrades_the_period_just_opened(with_card, team):
    """Review finding: the next period, opened a moment before the switch commits, kept the old terms."""
    period = lifecycle.current_period(team.pk)
    following = lifecycle.current_period(team.pk, period.end + timedelta(milliseconds=1))

    services.switch_plan(actor=with_card, plan_code="payg")

    following.refresh_from_db()
    assert (following.plan.code, following.request_allowance, following.unit_price_cents) == ("payg", 2000, 15)
