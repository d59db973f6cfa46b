"""Stripe errors other than a card decline, where a charge is made: recorded with their reason, or retried.

A request Stripe refuses (InvalidRequestError, AuthenticationError, PermissionError, IdempotencyError) is ours to
fix, not the customer's: the attempt is recorded as failed with Stripe's reason, the invoice stays open, nobody is
emailed, and the charge sweep tries again later with a new attempt. An error after which the same request may
succeed (RateLimitError, APIConnectionError, a 5xx) propagates to the charge task, which retries it with backoff:
the attempt keeps its key and parameters, its claim is released, and it is never left processing for good.

The refusals come from the test setup's strict layer in front of localstripe (`localstripe.fail_next`), which
answers as real Stripe does without sending the request on; the connection error from a closed port.
"""

from datetime import timedelta

import pytest
import stripe
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from billing import payments
from billing.models import Invoice, Payment, Subscription
from notifications.models import OutboundEmail
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice, store_card
from tests.processes import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

VISA = "pm_card_visa"


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="refusals@example.com")


def status_of(invoice: Invoice) -> str:
    invoice.refresh_from_db()
    return invoice.status


def test_a_request_stripe_refuses_is_recorded_and_retried_later_without_blaming_the_card(owner_membership):
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    card = Subscription.objects.get(team=owner_membership.team).payment_method_id
    Subscription.objects.filter(team=owner_membership.team).update(payment_method_id="pm_unknownToStripe")

    payment = payments.charge_invoice(invoice.pk)  # Stripe: 400, no such PaymentMethod

    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, payments.PROVIDER_ERROR)
    assert payment.failure_message.startswith("InvalidRequestError")
    assert status_of(invoice) == Invoice.Status.OPEN  # not past due: the card did nothing wrong
    assert Subscription.objects.get(team=owner_membership.team).status == Subscription.Status.ACTIVE
    assert not OutboundEmail.objects.filter(template__startswith="invoice-").exists()
    assert payments.invoices_to_charge() == []  # the first-charge sweep is done with it…
    now = timezone.now()
    assert payments.provider_retries_due(now) == []  # …and the retry waits an hour
    assert payments.provider_retries_due(now + timedelta(minutes=61)) == [(invoice.pk, 2)]

    payments.charge_invoice(invoice.pk, attempt=2)  # refused again: the next wait is twice as long
    assert payments.provider_retries_due(timezone.now() + timedelta(minutes=61)) == []
    assert payments.provider_retries_due(timezone.now() + timedelta(minutes=121)) == [(invoice.pk, 3)]

    Subscription.objects.filter(team=owner_membership.team).update(payment_method_id=card)  # fixed by staff
    payments.charge_invoice(invoice.pk, attempt=3)
    payments.charge_invoice(invoice.pk, attempt=3)  # a duplicate of the retry does nothing
    assert status_of(invoice) == Invoice.Status.PAID
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]
    assert payments.provider_retries_due(timezone.now() + timedelta(days=2)) == []


@pytest.mark.parametrize(
    ("status", "error_type", "raised"),
    [
        (401, "invalid_request_error", "AuthenticationError"),  # a revoked or mistyped secret key
        (403, "invalid_request_error", "PermissionError"),  # a restricted key without PaymentIntents
        (400, "idempotency_error", "IdempotencyError"),
    ],
)
def test_stripe_refusing_the_request_is_recorded_with_its_reason(
    owner_membership, localstripe, status, error_type, raised
):
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    localstripe.fail_next(path="/v1/payment_intents", method="POST", status=status, error_type=error_type)

    payment = payments.charge_invoice(invoice.pk)

    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, payments.PROVIDER_ERROR)
    assert payment.failure_message.startswith(raised)
    assert status_of(invoice) == Invoice.Status.OPEN
    assert payments.provider_retries_due(timezone.now() + timedelta(hours=2)) == [(invoice.pk, 2)]


@pytest.mark.parametrize(("status", "raised"), [(429, stripe.RateLimitError), (500, stripe.APIError)])
def test_errors_worth_retrying_release_the_attempt_to_its_retry(owner_membership, localstripe, status, raised):
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    localstripe.fail_next(path="/v1/payment_intents", method="POST", status=status, count=10)

    with pytest.raises(raised):
        payments.charge_invoice(invoice.pk)

    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.claimed_by, payment.claimed_until) == (Payment.Status.PROCESSING, "", None)
    assert status_of(invoice) == Invoice.Status.OPEN

    localstripe.fail_next(path="/v1/payment_intents", method="POST", status=status, count=0)  # Stripe is back
    payments.charge_invoice(invoice.pk)  # the task's retry: the same attempt
    assert status_of(invoice) == Invoice.Status.PAID
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_a_replayed_server_error_makes_the_retry_send_a_new_key(owner_membership, localstripe):
    """Stripe saves a 5xx under its idempotency key and replays it for 24 hours: a retry under the same key could
    never succeed. With no PaymentIntent made, the retry sends the attempt again under a new key."""
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    localstripe.fail_next(path="/v1/payment_intents", method="POST", status=500, count=1)

    with pytest.raises(stripe.APIError):
        payments.charge_invoice(invoice.pk)
    payment = Payment.objects.get(invoice=invoice)
    first_key = payment.idempotency_key  # the key the 500 is saved under

    payments.charge_invoice(invoice.pk)  # the task's retry

    payment.refresh_from_db()
    assert payment.key_generation == 1 and payment.stripe_idempotency_key == f"{first_key}-retry-1"
    assert status_of(invoice) == Invoice.Status.PAID
    [intent] = intents_for(invoice)
    assert intent.status == "succeeded" and intent.metadata["payment_key"] == payment.idempotency_key


def test_stripe_out_of_reach_leaves_the_attempt_to_be_resumed(owner_membership, settings, localstripe):
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    reachable = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused

    with pytest.raises(stripe.APIConnectionError):
        payments.charge_invoice(invoice.pk)

    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.claimed_by) == (Payment.Status.PROCESSING, "")
    settings.STRIPE_API_BASE = reachable
    assert payments.reconcile(stuck_after=timedelta(0)) == 1  # the nightly run resumes it, if the task did not
    assert status_of(invoice) == Invoice.Status.PAID
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]


def test_a_resent_attempt_sends_its_own_parameters_under_its_key(owner_membership):
    """An attempt's parameters are stored with it, and a key is only ever sent with one set of them (Stripe refuses
    a key reused with other parameters). Resent unchanged, the attempt keeps its key; resent after the team changed
    its card (no PaymentIntent was made), it charges the new card under a new key."""
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    with transaction.atomic():  # the attempt is begun, then its run dies before it reaches Stripe
        payment, _ = payments._begin_attempt(invoice.pk, attempt=None, on_session=False)
    first_key = payment.stripe_idempotency_key
    new_card = store_card(owner_membership, "pm_card_mastercard").payment_method_id

    payments.reconcile(stuck_after=timedelta(0))

    payment.refresh_from_db()
    assert (payment.status, payment.payment_method_id) == (Payment.Status.SUCCEEDED, new_card)
    assert payment.stripe_idempotency_key != first_key
    [intent] = intents_for(invoice)
    assert intent.payment_method == new_card and intent.metadata["payment_key"] == payment.idempotency_key


def test_a_resent_attempt_with_the_same_card_keeps_its_key(owner_membership):
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    with transaction.atomic():
        payment, _ = payments._begin_attempt(invoice.pk, attempt=None, on_session=False)

    payments.reconcile(stuck_after=timedelta(0))

    payment.refresh_from_db()
    assert (payment.status, payment.key_generation) == (Payment.Status.SUCCEEDED, 0)
