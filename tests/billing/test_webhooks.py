"""POST /billing/stripe/webhook: signed events stored once and reconciled against Stripe (localstripe here).

Events are signed here exactly as Stripe signs them (HMAC-SHA256 of "<timestamp>.<body>" with the
endpoint secret); the PaymentIntents they name are real ones in localstripe, re-fetched by the handler.
"""

import hashlib
import hmac
import json
import time
import uuid

import pytest

from accounts.roles import Role
from billing import payments
from billing.models import Invoice, Payment, StripeEvent
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice, store_card

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]
URL = "/billing/stripe/webhook"


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="hooks@example.com")


def signed(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    timestamp = timestamp or int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def deliver(client, settings, event_type: str, intent_id: str, *, event_id=None, secret=None):
    body = json.dumps({
        "id": event_id or f"evt_{uuid.uuid4().hex[:14]}", "object": "event", "type": event_type,
        "data": {"object": {"id": intent_id, "object": "payment_intent"}},
    }).encode()  # fmt: skip
    return post_signed(client, body, secret or settings.STRIPE_WEBHOOK_SECRET)


def post_signed(client, body: bytes, secret: str):
    signature = signed(body, secret)
    return client.post(URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)


def charged_but_unrecorded(owner_membership, monkeypatch) -> tuple[Payment, str]:
    """An attempt whose PaymentIntent succeeded in Stripe but whose run died before recording anything of it
    (its transaction rolled back, so not even the PaymentIntent's id); and that PaymentIntent's id."""
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    monkeypatch.setattr(payments, "_finish", lambda *args, **kwargs: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        payments.charge_invoice(invoice.pk)
    monkeypatch.undo()
    payment = Payment.objects.get(invoice=invoice)
    (intent,) = intents_for(invoice)
    assert (payment.status, payment.stripe_payment_intent_id, intent.status) == ("processing", "", "succeeded")
    return payment, intent.id


def test_a_succeeded_event_records_the_payment_the_task_did_not(client, settings, owner_membership, monkeypatch):
    payment, intent_id = charged_but_unrecorded(owner_membership, monkeypatch)

    response = deliver(client, settings, "payment_intent.succeeded", intent_id)

    assert response.status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.stripe_payment_intent_id) == ("succeeded", intent_id)
    assert Invoice.objects.get(pk=payment.invoice_id).status == "paid"
    assert StripeEvent.objects.get().processed_at is not None


def test_a_duplicate_delivery_is_acknowledged_and_stored_once(client, settings, owner_membership, monkeypatch):
    _, intent_id = charged_but_unrecorded(owner_membership, monkeypatch)
    for _ in range(2):
        response = deliver(client, settings, "payment_intent.succeeded", intent_id,
                           event_id="evt_same")  # fmt: skip
        assert response.status_code == 200
    assert StripeEvent.objects.filter(event_id="evt_same").count() == 1


def test_a_stale_failure_after_success_changes_nothing(client, settings, owner_membership):
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    payment = payments.charge_invoice(invoice.pk)

    deliver(client, settings, "payment_intent.payment_failed", payment.stripe_payment_intent_id)

    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


@pytest.mark.parametrize("secret", ["whsec_someone_else", ""])
def test_a_forged_event_is_rejected_and_not_stored(client, settings, secret, caplog):
    response = deliver(client, settings, "payment_intent.succeeded", "pi_forged", secret=secret or "x")
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    assert "Rejected a Stripe webhook" in caplog.text


def test_without_a_signing_secret_no_event_is_accepted(client, settings):
    """Real Stripe with no STRIPE_WEBHOOK_SECRET (ignition.E001) leaves it empty: a body "signed" with it is refused."""
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert post_signed(client, an_event(), "").status_code == 400
    assert not StripeEvent.objects.exists()


def test_an_unsigned_body_is_rejected(client):
    assert client.post(URL, data=b"{}", content_type="application/json").status_code == 400
    assert client.get(URL).status_code == 405


def test_an_event_for_an_intent_that_is_not_ours_is_kept_without_harm(client, settings):
    assert deliver(client, settings, "customer.created", "cus_nothing").status_code == 200
    assert StripeEvent.objects.get().error == ""


def an_event(**changes) -> bytes:
    event = {"id": "evt_shape", "object": "event", "type": "payment_intent.succeeded",
             "data": {"object": {"id": "pi_shape", "object": "payment_intent"}}}  # fmt: skip
    return json.dumps({**event, **changes}).encode()


NOT_EVENTS = {
    "a list": b"[1]",
    "an empty object": b"{}",
    "a string": b'"x"',
    "not JSON": b"{not json",
    "an event without data.object": an_event(data={}),
    "an event whose data.object is a string": an_event(data={"object": "pi_123"}),
    "an event whose data is a list": an_event(data=[1]),
    "an event whose id is a number": an_event(id=42),
    "an event whose id is too long": an_event(id="evt_" + "x" * 300),
    "an event without a type": an_event(type=None),
    "a payment event whose object has no id": an_event(data={"object": {"object": "payment_intent"}}),
}


@pytest.mark.parametrize("body", NOT_EVENTS.values(), ids=NOT_EVENTS.keys())
def test_a_signed_body_that_is_not_an_event_answers_400_in_plain_text_and_stores_nothing(client, settings, body):
    client.raise_request_exception = False  # a 500 shows as a 500 here, as Stripe would see it

    response = post_signed(client, body, settings.STRIPE_WEBHOOK_SECRET)

    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode().startswith("Not a Stripe event: ")
    assert not StripeEvent.objects.exists()
