"""Closing periods: one invoice per period, rated from the rollups, exactly once however often the close runs."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from billing import closing, lifecycle, metering, services
from billing.models import BillingEvent, BillingPeriod, Invoice, Subscription
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle, request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False


@pytest.fixture
def free_team():
    team = TeamFactory(name="Closing Co")
    owner = MembershipFactory(team=team, role="owner")
    owner_vehicle = make_vehicle(make_owner())
    token = make_token(make_grant(ApplicationFactory(team=team), owner_vehicle.owner, [owner_vehicle]))
    return team, owner, f"/v2.0/vehicles/{owner_vehicle.public_id}/odometer", token


def close(now, *options: str) -> str:
    """The command as of `now`; by default without charging (charging is tested in test_payments.py)."""
    out = StringIO()
    call_command(
        "close_billing_periods", "--now", now.isoformat(), "--allow-future", *(options or ["--no-charge"]), stdout=out
    )
    return out.getvalue()


def test_free_then_pay_as_you_go_is_invoiced_50_times_15_cents_once(client, free_team):
    team, owner, url, token = free_team
    statuses = [request(client, "GET", url, token=token).status_code for _ in range(101)]
    assert statuses.count(200) == 100 and statuses[-1] == 430
    Subscription.objects.filter(team=team).update(card_on_file=True)
    services.switch_plan(actor=owner, plan_code="payg")
    assert {request(client, "GET", url, token=token).status_code for _ in range(50)} == {200}
    period = lifecycle.current_period(team.pk)

    output = close(period.end + timedelta(hours=2))

    invoice = Invoice.objects.get(period=period)
    assert invoice.total_cents == 750 and invoice.status == "open"
    assert [(line.quantity, int(line.unit_price_cents), line.amount_cents) for line in invoice.lines.all()] == [
        (100, 0, 0),
        (50, 15, 750),
    ]
    assert invoice.number in output and "$7.50  Open" in output
    period.refresh_from_db()
    assert period.status == "closed"
    assert BillingEvent.objects.filter(team=team, kind="period_closed").count() == 1

    assert "Closed 0 period(s)." in close(period.end + timedelta(hours=3))  # again: nothing more
    assert Invoice.objects.filter(team=team).count() == 1
    following = BillingPeriod.objects.get(team=team, start=period.end)
    assert (following.plan.code, following.unit_price_cents) == ("payg", 15)


def test_a_free_period_gets_a_zero_invoice_marked_paid_without_stripe(client, free_team):
    team, _, url, token = free_team
    request(client, "GET", url, token=token)
    period = lifecycle.current_period(team.pk)
    close(period.end + timedelta(hours=1, seconds=1))
    invoice = Invoice.objects.get(period=period)
    assert (invoice.total_cents, invoice.status, invoice.paid_at is not None) == (0, "paid", True)


def test_nothing_closes_within_the_grace_hour(free_team):
    team = free_team[0]
    period = lifecycle.current_period(team.pk)
    assert "Closed 0" in close(period.end + timedelta(minutes=59))
    period.refresh_from_db()
    assert period.status == "open"


def test_a_scheduled_downgrade_starts_the_next_period_on_free(free_team):
    team, owner, _, _ = free_team
    Subscription.objects.filter(pk=lifecycle.subscription_for(team.pk).pk).update(card_on_file=True)
    services.switch_plan(actor=owner, plan_code="payg")
    services.switch_plan(actor=owner, plan_code="free")
    period = lifecycle.current_period(team.pk)
    close(period.end + timedelta(hours=2))
    following = BillingPeriod.objects.get(team=team, start=period.end)
    assert (following.plan.code, following.request_allowance) == ("free", 100)


def test_invoice_numbers_are_sequential_per_year():
    periods = [lifecycle.current_period(TeamFactory().pk) for _ in range(3)]
    close(max(p.end for p in periods) + timedelta(hours=2))
    numbers = sorted(Invoice.objects.filter(period__in=periods).values_list("number", flat=True))
    year = max(p.end for p in periods).year
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, 4)]


def test_a_closed_period_takes_no_more_usage(free_team):
    team = free_team[0]
    period = lifecycle.current_period(team.pk)
    vehicle = make_vehicle(make_owner())
    closing.close_period(period.pk, now=period.end + timedelta(hours=2))
    with pytest.raises(metering.LimitReached), time_machine.travel(period.end - timedelta(minutes=1), tick=False):
        metering.reserve(request_id="late", team_id=team.pk, application_id=None, vehicle_id=vehicle.pk,
                         endpoint="/vehicles/{id}/vin")  # fmt: skip


def test_a_malformed_now_is_refused():
    with pytest.raises(CommandError, match="ISO-8601"):
        call_command("close_billing_periods", "--now", "yesterday")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_closers_at_once_issue_one_invoice():
    period = lifecycle.current_period(TeamFactory().pk)
    now, start, results = period.end + timedelta(hours=2), threading.Barrier(2), []

    def closer():
        start.wait()
        try:
            results.append(closing.close_period(period.pk, now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=closer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(invoice is not None for invoice in results) == 1
    assert Invoice.objects.filter(period=period).count() == 1


def test_a_future_now_needs_allow_future(free_team):
    period = lifecycle.current_period(free_team[0].pk)
    with pytest.raises(CommandError, match="allow-future"):
        call_command("close_billing_periods", "--now", (period.end + timedelta(hours=2)).isoformat())
    period.refresh_from_db()
    assert period.status == "open"
