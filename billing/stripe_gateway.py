"""The one place the Stripe SDK is configured. Callers never know whether it is Stripe or localstripe."""

from datetime import timedelta
from functools import lru_cache

import stripe
from django.conf import settings

from billing import stripe_limits

# One request to Stripe gives up after REQUEST_TIMEOUT_SECONDS (the SDK's default is 80) and is retried at most
# NETWORK_RETRIES times (connection errors, 409s and 5xx, with the same idempotency key and at most 1.5 s of back-off
# in all). Before each attempt it may wait up to stripe_limits.MAX_WAIT_SECONDS for its turn in the shared rate
# limit. So one SDK call is over, answered or failed, within LONGEST_CALL (107 s). billing.payments relies on it: a
# claim on a payment attempt outlasts any call made under it.
REQUEST_TIMEOUT_SECONDS = 30
NETWORK_RETRIES = 2
LONGEST_CALL = timedelta(seconds=(NETWORK_RETRIES + 1) * (stripe_limits.MAX_WAIT_SECONDS + REQUEST_TIMEOUT_SECONDS) + 2)


class RateLimitedRequestsClient(stripe.RequestsClient):
    """The SDK's requests client, taking a turn in the shared Stripe rate limit (billing.stripe_limits) before
    every request it sends. The SDK's retry loop (request_with_retries) calls request() once per attempt, so its
    own retries wait their turn too."""

    def __init__(self, *, account: str, per_second: int, **kwargs):
        super().__init__(**kwargs)
        self.account, self.per_second = account, per_second

    def request(self, method, url, headers, post_data=None):
        stripe_limits.wait_for_turn(self.account, self.per_second)
        return super().request(method, url, headers, post_data)

    def request_stream(self, method, url, headers, post_data=None):
        stripe_limits.wait_for_turn(self.account, self.per_second)
        return super().request_stream(method, url, headers, post_data)


@lru_cache(maxsize=1)
def _client(api_key: str, api_base: str, per_second: int) -> stripe.StripeClient:
    http_client = RateLimitedRequestsClient(
        account=stripe_limits.account_of(api_key), per_second=per_second, timeout=REQUEST_TIMEOUT_SECONDS
    )
    return stripe.StripeClient(
        api_key=api_key, base_addresses={"api": api_base}, max_network_retries=NETWORK_RETRIES, http_client=http_client
    )


def stripe_client() -> stripe.StripeClient:
    """A StripeClient for the configured account and API origin (localstripe by default), within the shared rate
    limit of STRIPE_MAX_REQUESTS_PER_SECOND."""
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_MAX_REQUESTS_PER_SECOND)


def as_dict(stripe_object) -> dict:
    """A StripeObject (or None) as a plain dict: StripeObjects refuse dict methods such as .get()."""
    return stripe_object.to_dict() if stripe_object is not None else {}
