"""Dunning against localstripe: a card that keeps failing is retried on days 1, 3 and 5, then the team is
suspended (billable requests answer 430 ACCOUNT_SUSPENDED); paying with a good card lifts it at once."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.roles import Role
from billing import dunning, lifecycle, metering, payments
from billing.models import Invoice, Payment, Subscription
from tests.billing.test_payments import pay_as_you_go_invoice, store_card

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="late-payer@example.com")


def run_dunning_at(moment) -> tuple[list[int], list[int]]:
    """What the hourly task does, as of `moment`: charge the due retries, suspend after the last."""
    with time_machine.travel(moment, tick=False):
        to_retry, to_suspend = dunning.due_retries()
        for invoice_id, attempt in to_retry:
            payments.charge_invoice(invoice_id, attempt=attempt)
        for team_id in to_suspend:
            dunning.suspend_if_still_due(team_id)
    return [invoice_id for invoice_id, _ in to_retry], to_suspend


def status_of(team_id) -> str:
    return Subscription.objects.get(team_id=team_id).status


def test_a_failing_card_is_retried_on_schedule_then_the_team_is_suspended_and_paying_lifts_it(owner_membership):
    team_id = owner_membership.team_id
    store_card(owner_membership, "pm_card_chargeCustomerFail")  # attaches, then every charge fails
    invoice = pay_as_you_go_invoice(owner_membership, 10)
    payments.charge_invoice(invoice.pk)
    assert status_of(team_id) == "past_due"
    failed_at = Payment.objects.get(invoice=invoice).updated_at

    assert run_dunning_at(failed_at + timedelta(hours=23)) == ([], [])  # not before day 1
    for day in (1, 3):
        assert run_dunning_at(failed_at + timedelta(days=day, minutes=1)) == ([invoice.pk], [])
        assert run_dunning_at(failed_at + timedelta(days=day, minutes=2)) == ([], [])  # once per scheduled day
    assert run_dunning_at(failed_at + timedelta(days=5, minutes=1)) == ([invoice.pk], [])  # the last retry
    assert Payment.objects.filter(invoice=invoice).count() == 4
    assert status_of(team_id) == "past_due"

    assert run_dunning_at(failed_at + timedelta(days=5, minutes=5)) == ([], [team_id])  # it failed too
    assert status_of(team_id) == "suspended"
    vehicle_kwargs = {"team_id": team_id, "application_id": None, "vehicle_id": None, "endpoint": "/vehicles/{id}"}
    with pytest.raises(metering.LimitReached, match="ACCOUNT_SUSPENDED"):
        metering.reserve(request_id="after-suspension", **vehicle_kwargs)

    store_card(owner_membership, "pm_card_visa")  # the Owner replaces the card…
    payment = payments.charge_invoice(invoice.pk, attempt=5, on_session=True)  # …and pays on the pay page

    invoice.refresh_from_db()
    assert (payment.status, invoice.status, status_of(team_id)) == ("succeeded", "paid", "active")
    assert dunning.suspend(team_id) is True and dunning.lift_if_paid_up(team_id) is True  # and both idempotent
    assert dunning.lift_if_paid_up(team_id) is False


def test_suspending_twice_changes_nothing_more(owner_membership):
    lifecycle.subscription_for(owner_membership.team_id)
    assert dunning.suspend(owner_membership.team_id) is True
    assert dunning.suspend(owner_membership.team_id) is False


def test_a_paid_invoice_is_never_retried(owner_membership):
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    payments.charge_invoice(invoice.pk)
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    assert run_dunning_at(timezone.now() + timedelta(days=30)) == ([], [])


def test_a_team_that_paid_after_the_task_looked_is_not_suspended(owner_membership):
    store_card(owner_membership, "pm_card_chargeCustomerFail")
    invoice = pay_as_you_go_invoice(owner_membership, 10)
    payments.charge_invoice(invoice.pk)
    failed_at = Payment.objects.get(invoice=invoice).updated_at
    for day in (1, 3, 5):
        run_dunning_at(failed_at + timedelta(days=day, minutes=1))
    with time_machine.travel(failed_at + timedelta(days=5, minutes=5), tick=False):
        _, to_suspend = dunning.due_retries()
        assert to_suspend == [owner_membership.team_id]  # the task's snapshot…
        store_card(owner_membership, "pm_card_visa")
        payments.charge_invoice(invoice.pk, attempt=5, on_session=True)  # …then the Owner pays on the pay page
        assert dunning.suspend_if_still_due(owner_membership.team_id) is False

    assert status_of(owner_membership.team_id) == "active"
