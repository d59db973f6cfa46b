"""An off-session charge the bank wants authenticated, as real Stripe does it.

Real Stripe fails such a charge with a card error `authentication_required` and leaves the PaymentIntent
`requires_payment_method` (not `requires_action`). Stripe's guide for that state: bring the customer back
on-session and confirm the same PaymentIntent with the card (Stripe.js `confirmCardPayment`). Only the Owner can
do that, so dunning must not retry it off-session. Card 4000 0027 6000 3184 needs authentication on every
charge; localstripe alone would leave it `requires_action`, the test setup's strict layer answers as Stripe does.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import Role
from billing import cards, dunning, payments
from billing.models import Invoice, Payment, Subscription
from billing.stripe_gateway import stripe_client
from notifications.models import OutboundEmail
from tests.billing.test_dunning import run_dunning_at
from tests.billing.test_paying_on_session import authenticate_in_the_browser, pay_url
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

ALWAYS_AUTHENTICATE = "pm_card_authenticationRequired"  # 4000 0027 6000 3184
AT_SETUP_ONLY = "pm_card_authenticationRequiredOnSetup"  # 4000 0025 0000 3155


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="three-d-secure@example.com")


def store_card_set_up_with_authentication(owner, payment_method: str):
    """A card whose setup the bank wants authenticated, stored as Stripe.js does it: confirmed, then the bank's
    check answered."""
    intent = cards.start_card_setup(owner)
    stripe_client().v1.setup_intents.confirm(intent.id, params={"payment_method": payment_method})
    stripe_client().v1.setup_intents.confirm(intent.id)  # "Complete authentication" in the dialog
    return cards.finish_card_setup(owner, intent.id)


@pytest.fixture
def waiting_for_the_owner(owner_membership):
    """A Pay-as-you-go invoice whose scheduled (off-session) charge the bank wants authenticated."""
    store_card_set_up_with_authentication(owner_membership, ALWAYS_AUTHENTICATE)
    invoice = pay_as_you_go_invoice(owner_membership, 6)
    payment = payments.charge_invoice(invoice.pk)
    invoice.refresh_from_db()
    return invoice, payment


def test_the_owner_is_asked_to_authenticate_the_same_payment(waiting_for_the_owner, client):
    invoice, payment = waiting_for_the_owner

    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, payments.NEEDS_AUTHENTICATION)
    assert invoice.status == Invoice.Status.PAST_DUE
    [intent] = intents_for(invoice)
    assert intent.status == "requires_payment_method"  # as real Stripe leaves it off-session
    [email] = OutboundEmail.objects.filter(template="invoice-needs-authentication")
    assert f"/billing/invoices/{invoice.public_id}/pay/" in email.text_body
    assert not OutboundEmail.objects.filter(template="invoice-past-due").exists()

    client.force_login(invoice.team.memberships.get(role=Role.OWNER).user)
    page = client.get(pay_url(invoice)).content.decode()
    assert 'id="confirm-payment-form"' in page  # confirm that PaymentIntent, not "Pay $0.90" anew
    assert f'data-client-secret="{intent.client_secret}"' in page
    assert f'value="{intent.id}"' in page
    assert 'name="attempt"' not in page

    authenticate_in_the_browser(intent.id, intent.client_secret)  # Stripe.js confirmCardPayment, then the dialog
    response = client.post(pay_url(invoice), {"payment_intent": intent.id})

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert [each.status for each in intents_for(invoice)] == ["succeeded"]  # the same PaymentIntent, paid once


def test_dunning_does_not_retry_what_only_the_owner_can_authorize(waiting_for_the_owner):
    invoice, _ = waiting_for_the_owner
    last_retry_day = max(dunning.settings.BILLING_DUNNING_RETRY_DAYS)

    for day in range(1, last_retry_day):
        assert run_dunning_at(timezone.now() + timedelta(days=day, minutes=5)) == ([], [])
    assert len(intents_for(invoice)) == 1 and Payment.objects.filter(invoice=invoice).count() == 1

    # Unpaid when the schedule would have run out: suspended, as after a last failed retry.
    assert run_dunning_at(timezone.now() + timedelta(days=last_retry_day, minutes=5)) == ([], [invoice.team_id])
    assert Subscription.objects.get(team_id=invoice.team_id).status == Subscription.Status.SUSPENDED
    assert len(intents_for(invoice)) == 1


def test_a_card_that_needs_authentication_only_at_setup_is_charged_off_session(owner_membership):
    """Card 4000 0025 0000 3155 asks for authentication when it is set up; after that, as on real Stripe, the
    scheduled charges go through without the Owner."""
    store_card_set_up_with_authentication(owner_membership, AT_SETUP_ONLY)
    invoice = pay_as_you_go_invoice(owner_membership, 4)

    payment = payments.charge_invoice(invoice.pk)

    assert payment.status == Payment.Status.SUCCEEDED
