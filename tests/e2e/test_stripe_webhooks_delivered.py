"""localstripe delivers real, signed webhooks to a live server: the endpoint stores and reconciles them.

The same registration `make run` does (manage.py register_localstripe_webhook), pointed at this test's
live server; afterwards the webhook is pointed away again, so later tests receive nothing.
"""

import time

import pytest
from django.core.management import call_command

from accounts.roles import Role
from billing import payments
from billing.management.commands.register_localstripe_webhook import register
from billing.models import StripeEvent
from tests.billing.test_payments import pay_as_you_go_invoice, store_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stripe_settings")]


@pytest.fixture
def webhooks_to_live_server(live_server):
    call_command("register_localstripe_webhook", "--url", f"{live_server.url}/billing/stripe/webhook")
    yield
    register("http://127.0.0.1:9/", events=["nothing.we.send"])  # deliver nothing more, anywhere


def test_a_charge_sends_a_signed_payment_intent_succeeded_that_the_endpoint_stores(
    webhooks_to_live_server, make_member
):
    owner = make_member(Role.OWNER, email="webhooks@example.com")
    store_card(owner, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner, 4)

    payment = payments.charge_invoice(invoice.pk)

    deadline = time.monotonic() + 15  # localstripe waits a second before it delivers
    # Only this charge's event: localstripe also delivers, a second late, events of other tests' charges.
    ours = StripeEvent.objects.filter(
        type="payment_intent.succeeded", payload__data__object__id=payment.stripe_payment_intent_id
    )
    while time.monotonic() < deadline and not ours.filter(processed_at__isnull=False).exists():
        time.sleep(0.2)
    event = ours.get()
    assert event.processed_at is not None and event.error == ""
