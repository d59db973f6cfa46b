"""Stripe webhooks, handled as a reconciler (DESIGN §5).

The signature is checked on the raw body; each event is stored once by its id (a duplicate delivery
is acknowledged and ignored); a payment event is never trusted as is: the PaymentIntent is fetched
from Stripe again and its current state recorded through the same code the charging task uses, which
only moves a payment forward (processing → succeeded or failed). So duplicates, reordering and stale
events are harmless. localstripe signs its webhooks like Stripe (`/_config/webhooks/...`).

A refund or a dispute made in Stripe (`charge.refunded`, `charge.dispute.*`) is recorded on the invoice the
charge paid (billing.refunds): the charge is fetched again for its refunded total; a dispute is taken from the
signed event, its status moving forward only.
"""

import json
import logging

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import payments, refunds
from billing.models import Payment, StripeEvent
from billing.stripe_gateway import as_dict, stripe_client

logger = logging.getLogger("billing.webhooks")

PAYMENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed")
REFUND_EVENTS = ("charge.refunded",)
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
HANDLED_EVENTS = PAYMENT_EVENTS + REFUND_EVENTS + DISPUTE_EVENTS


class ForgedEvent(Exception):
    """The body or its signature is not Stripe's."""


class MalformedEvent(Exception):
    """Signed with our secret, but the body is not a Stripe event object."""


def receive(payload: bytes, signature_header: str | None) -> StripeEvent | None:
    """Verify, store once and handle an event; None for a duplicate.

    ForgedEvent for a bad signature, MalformedEvent for a signed body that is no event; neither stores anything.
    """
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature_header, settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except (ValueError, stripe.SignatureVerificationError) as exc:  # ValueError: a body that is not UTF-8
        raise ForgedEvent(str(exc)) from exc
    event = parse_event(payload)
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(event_id=event["id"], type=event["type"], payload=event)
    except IntegrityError:
        return None  # delivered before: already handled
    handle(stored)
    return stored


def parse_event(payload: bytes) -> dict:
    """The event object of a verified body, checked for what storing and handling it read; else MalformedEvent."""
    try:
        event = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvent("the body is not JSON") from exc
    if not isinstance(event, dict):
        raise MalformedEvent("the body is not a JSON object")
    for key, column in (("id", "event_id"), ("type", "type")):
        max_length = StripeEvent._meta.get_field(column).max_length
        if not isinstance(event.get(key), str) or not 0 < len(event[key]) <= max_length:
            raise MalformedEvent(f"'{key}' is not a string of 1 to {max_length} characters")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("'data.object' is not an object")
    if event["type"] in HANDLED_EVENTS and not isinstance(data["object"].get("id"), str):
        raise MalformedEvent(f"'data.object.id' of a {event['type']} event is not a string")
    return event


def handle(stored: StripeEvent) -> None:
    """Apply one stored event (also what staff's "replay" will call); errors are kept on the row."""
    try:
        stripe_object = stored.payload["data"]["object"]
        if stored.type in PAYMENT_EVENTS:
            reconcile_payment_intent(stripe_object["id"])
        elif stored.type in REFUND_EVENTS:
            refunds.record_charge_refunds(stripe_object["id"])
        elif stored.type in DISPUTE_EVENTS:
            refunds.record_dispute(stripe_object)
        stored.error = ""
    except Exception as exc:  # keep the event; a replay can apply it later
        logger.exception("Stripe event %s could not be applied", stored.event_id)
        stored.error = repr(exc)[:2000]
    stored.processed_at = timezone.now()
    stored.save(update_fields=["processed_at", "error"])


def reconcile_payment_intent(intent_id: str) -> Payment | None:
    """Record what Stripe says of this PaymentIntent now on the attempt it belongs to (forward only)."""
    intent = stripe_client().v1.payment_intents.retrieve(intent_id)
    metadata = as_dict(intent.metadata)
    payment = (
        Payment.objects.filter(stripe_payment_intent_id=intent.id).first()
        or Payment.objects.filter(idempotency_key=metadata.get("payment_key", "")).first()
    )
    if payment is None:
        logger.warning("PaymentIntent %s belongs to no payment of ours", intent.id)
        return None
    return payments.record_intent(payment, intent)
