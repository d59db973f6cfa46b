"""The real stripe SDK, configured from settings, reaches the Stripe API we point it at (localstripe here)."""

import urllib.request

from billing.stripe_gateway import stripe_client


def test_the_sdk_creates_and_reads_back_a_customer(stripe_settings, db):  # db: the cache of the Stripe rate limit
    client = stripe_client()
    customer = client.v1.customers.create(params={"email": "owner@example.com", "metadata": {"team_id": "42"}})
    fetched = client.v1.customers.retrieve(customer.id)
    assert fetched.email == "owner@example.com"
    assert fetched.metadata["team_id"] == "42"


def test_the_fake_stripe_js_is_served_where_settings_say(stripe_settings):
    with urllib.request.urlopen(stripe_settings.STRIPE_JS_URL, timeout=10) as response:  # noqa: S310 (loopback)
        body = response.read().decode()
    assert response.status == 200
    assert "Stripe" in body
