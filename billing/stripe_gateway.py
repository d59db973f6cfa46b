"""The one place the Stripe SDK is configured. Callers never know whether it is Stripe or localstripe."""

from functools import lru_cache

import stripe
from django.conf import settings


@lru_cache(maxsize=1)
def _client(api_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(api_key=api_key, base_addresses={"api": api_base}, max_network_retries=2)


def stripe_client() -> stripe.StripeClient:
    """A StripeClient for the configured account and API origin (localstripe by default)."""
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)


def as_dict(stripe_object) -> dict:
    """A StripeObject (or None) as a plain dict: StripeObjects refuse dict methods such as .get()."""
    return stripe_object.to_dict() if stripe_object is not None else {}
