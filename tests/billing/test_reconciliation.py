"""The nightly reconciliation: attempts whose outcome we never recorded are settled from Stripe (localstripe)."""

from datetime import timedelta

import pytest

from accounts.roles import Role
from billing import payments
from billing.models import Invoice, Payment
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice, store_card
from tests.billing.test_webhooks import charged_but_unrecorded

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="drift@example.com")


def test_a_charge_whose_run_died_is_recorded_from_stripe(owner_membership, monkeypatch):
    payment, intent_id = charged_but_unrecorded(owner_membership, monkeypatch)

    assert payments.reconcile(stuck_after=timedelta(0)) == 1

    payment.refresh_from_db()
    assert (payment.status, payment.stripe_payment_intent_id) == ("succeeded", intent_id)
    assert [intent.id for intent in intents_for(payment.invoice)] == [intent_id]  # found, not charged again
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    assert payments.reconcile(stuck_after=timedelta(0)) == 0  # nothing left to look at


def test_an_attempt_that_never_reached_stripe_is_run_again_once(owner_membership, monkeypatch):
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 4)

    def unreachable(*args, **kwargs):
        raise ConnectionError("Stripe unreachable")

    monkeypatch.setattr(payments, "_create_intent", unreachable)  # the run dies before Stripe hears of it
    with pytest.raises(ConnectionError):
        payments.charge_invoice(invoice.pk)
    monkeypatch.undo()

    payments.reconcile(stuck_after=timedelta(0))

    assert Payment.objects.get(invoice=invoice).status == "succeeded"
    assert len(intents_for(invoice)) == 1


def test_fresh_attempts_are_left_to_their_task(owner_membership, monkeypatch):
    charged_but_unrecorded(owner_membership, monkeypatch)
    assert payments.reconcile() == 0  # younger than an hour: its task may still be running
