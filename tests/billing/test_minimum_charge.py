"""Amounts below Stripe's minimum charge ($0.50) are carried forward to the next invoice, never stuck.

Stripe refuses a PaymentIntent under 50 cents with a 400 (`amount_too_small`); the test setup's strict layer in
front of localstripe does the same. A Pay-as-you-go period with one to three billable requests (15 cents each)
comes to less than that: its invoice is carried forward and the next invoice collects it.
"""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts.roles import Role
from billing import closing, lifecycle, payments, services
from billing.models import BillingEvent, Invoice, Payment
from tests.billing.test_payments import intents_for, store_card
from tests.billing.usage import count_billable_requests

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

VISA = "pm_card_visa"


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="small-amounts@example.com")


def close_current_period(team_id: int) -> Invoice:
    period = lifecycle.current_period(team_id)
    return closing.close_period(period.pk, now=period.end + timedelta(hours=2))


def next_period_with(owner, after: Invoice, requests: int) -> Invoice:
    """Move into the period after `after`'s, make `requests` billable requests there, and close it."""
    with time_machine.travel(after.period.end + timedelta(hours=3), tick=False):
        count_billable_requests(owner.team, requests)
        return close_current_period(owner.team_id)


def test_a_period_with_one_billable_request_is_carried_forward_not_charged(owner_membership, client):
    store_card(owner_membership, VISA)
    services.switch_plan(actor=owner_membership, plan_code="payg")
    count_billable_requests(owner_membership.team, 1)

    invoice = close_current_period(owner_membership.team_id)

    assert (invoice.status, invoice.total_cents) == (Invoice.Status.CARRIED, 15)
    assert payments.invoices_to_charge() == []
    assert payments.charge_invoice(invoice.pk) is None  # even asked to, nothing goes to Stripe
    assert intents_for(invoice) == [] and not Payment.objects.filter(invoice=invoice).exists()
    event = BillingEvent.objects.get(team_id=invoice.team_id, kind=BillingEvent.Kind.CARRIED)
    assert (event.after["amount_cents"], event.after["minimum_cents"]) == (15, 50)

    client.force_login(owner_membership.user)
    tab = client.get(reverse("billing")).content.decode()
    assert "Carried forward" in tab
    assert "$0.15 is below the $0.50 minimum our payment processor charges a card" in tab
    page = client.get(reverse("billing_invoice", args=[invoice.public_id])).content.decode()
    assert "it is added to your next invoice" in page


def test_carried_amounts_are_collected_once_they_reach_the_minimum(owner_membership, client):
    store_card(owner_membership, VISA)
    services.switch_plan(actor=owner_membership, plan_code="payg")
    count_billable_requests(owner_membership.team, 1)
    first = close_current_period(owner_membership.team_id)  # 15 cents: carried
    second = next_period_with(owner_membership, first, 1)  # 15 + 15 = 30 cents: carried again, with the first
    third = next_period_with(owner_membership, second, 2)  # 30 + 30 = 60 cents: charged

    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, first.carried_to) == (Invoice.Status.CARRIED, second)
    assert (second.status, second.total_cents, second.carried_to) == (Invoice.Status.CARRIED, 30, third)
    assert third.total_cents == 60 and third.status == Invoice.Status.OPEN
    carried_line = third.lines.get(kind="carried")
    assert carried_line.amount_cents == 30
    assert carried_line.description.startswith(f"Carried forward from invoice {second.number}")
    assert third.subtotal_cents == sum(line.amount_cents for line in third.lines.all())

    payments.charge_invoice(third.pk)
    payments.charge_invoice(third.pk)  # a duplicate task changes nothing
    third.refresh_from_db()
    assert third.status == Invoice.Status.PAID
    assert [(intent.amount, intent.status) for intent in intents_for(third)] == [(60, "succeeded")]
    assert intents_for(first) == intents_for(second) == []

    client.force_login(owner_membership.user)
    page = client.get(reverse("billing_invoice", args=[first.public_id])).content.decode()
    assert f'it was added to invoice <a href="{reverse("billing_invoice", args=[second.public_id])}">' in page
    tab = client.get(reverse("billing")).content.decode()
    assert "minimum our payment processor charges a card" not in tab  # nothing is waiting any more


def test_a_carried_amount_is_taken_by_one_invoice_only(owner_membership):
    store_card(owner_membership, VISA)
    services.switch_plan(actor=owner_membership, plan_code="payg")
    count_billable_requests(owner_membership.team, 3)
    carried = close_current_period(owner_membership.team_id)  # 45 cents
    later = next_period_with(owner_membership, carried, 0)  # no usage: the 45 cents alone, still below: carried again
    last = next_period_with(owner_membership, later, 4)  # 45 + 60

    assert (later.total_cents, later.status) == (45, Invoice.Status.CARRIED)
    assert last.total_cents == 105
    assert [line.amount_cents for line in last.lines.filter(kind="carried")] == [45]  # the 45 once, via `later`
    carried.refresh_from_db()
    assert carried.carried_to == later


def test_an_open_invoice_below_the_minimum_is_carried_when_charged(owner_membership, settings):
    """An invoice issued below the minimum before the rule existed (or with it set lower) is carried by the charge
    itself: the charge sweep, dunning and the reconciliation then leave it alone."""
    store_card(owner_membership, VISA)
    services.switch_plan(actor=owner_membership, plan_code="payg")
    count_billable_requests(owner_membership.team, 2)
    settings.BILLING_MINIMUM_CHARGE_CENTS = 0
    invoice = close_current_period(owner_membership.team_id)
    assert invoice.status == Invoice.Status.OPEN and payments.invoices_to_charge() == [invoice.pk]
    settings.BILLING_MINIMUM_CHARGE_CENTS = 50

    assert payments.charge_invoice(invoice.pk) is None

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.CARRIED
    assert payments.invoices_to_charge() == [] and intents_for(invoice) == []
    assert payments.reconcile(stuck_after=timedelta(0)) == 0


def test_an_attempt_stripe_refuses_as_too_small_carries_the_invoice(owner_membership, settings):
    """An attempt begun for an amount Stripe then refuses (a 400 `amount_too_small`, not a card error): recorded
    as failed with its reason, the invoice carried forward, not left processing with the card locked."""
    store_card(owner_membership, VISA)
    services.switch_plan(actor=owner_membership, plan_code="payg")
    count_billable_requests(owner_membership.team, 3)
    settings.BILLING_MINIMUM_CHARGE_CENTS = 0  # as if the rule did not exist: the attempt reaches Stripe
    invoice = close_current_period(owner_membership.team_id)

    payment = payments.charge_invoice(invoice.pk)

    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, payments.AMOUNT_TOO_SMALL)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.CARRIED
    assert intents_for(invoice) == []
    assert payments.reconcile(stuck_after=timedelta(0)) == 0  # nothing stuck for the nightly run to trip on


def test_an_invoice_paid_by_transfer_has_no_minimum(owner_membership):
    """Only a card charge has a minimum: a carried amount joins an invoice paid by bank transfer as it is."""
    from billing.carrying import is_below_minimum

    invoice = Invoice(collection=Invoice.Collection.INVOICE, total_cents=15)
    assert not is_below_minimum(invoice)
    assert is_below_minimum(Invoice(collection=Invoice.Collection.CARD, total_cents=49))
    assert not is_below_minimum(Invoice(collection=Invoice.Collection.CARD, total_cents=50))
    assert not is_below_minimum(Invoice(collection=Invoice.Collection.CARD, total_cents=0))


def test_staff_can_write_off_a_carried_amount_before_it_is_collected(owner_membership):
    """A team that stays on Free keeps carrying its amount on $0 invoices: staff may void it instead."""
    from billing import backoffice

    store_card(owner_membership, VISA)
    services.switch_plan(actor=owner_membership, plan_code="payg")
    count_billable_requests(owner_membership.team, 2)
    carried = close_current_period(owner_membership.team_id)

    backoffice.void_invoice(carried.pk, staff=None, reason="Small balance written off")

    assert next_period_with(owner_membership, carried, 0).total_cents == 0  # nothing carried any more
    carried.refresh_from_db()
    assert carried.status == Invoice.Status.VOID
    with pytest.raises(backoffice.BackOfficeError, match="void already"):
        backoffice.void_invoice(carried.pk, staff=None, reason="Twice")
