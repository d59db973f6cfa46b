"""The one place the Stripe SDK is configured. Callers never know whether it is Stripe or localstripe."""

from datetime import timedelta
from functools import lru_cache

import stripe
from django.conf import settings

# One request to Stripe gives up after REQUEST_TIMEOUT_SECONDS (the SDK's default is 80) and is retried at most
# NETWORK_RETRIES times (connection errors, 409s and 5xx, with the same idempotency key and at most 1.5 s of back-off
# in all), so one SDK call is over, answered or failed, within LONGEST_CALL. billing.payments relies on it: a claim
# on a payment attempt outlasts any call made under it.
REQUEST_TIMEOUT_SECONDS = 30
NETWORK_RETRIES = 2
LONGEST_CALL = timedelta(seconds=(NETWORK_RETRIES + 1) * REQUEST_TIMEOUT_SECONDS + 2)


@lru_cache(maxsize=1)
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key=api_key,
        base_addresses={"api": api_base},
        max_network_retries=NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT_SECONDS),
    )


def stripe_client() -> stripe.StripeClient:
    """A StripeClient for the configured account and API origin (localstripe by default)."""
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def as_dict(stripe_object) -> dict:
    """A StripeObject (or None) as a plain dict: StripeObjects refuse dict methods such as .get()."""
    return stripe_object.to_dict() if stripe_object is not None else {}
