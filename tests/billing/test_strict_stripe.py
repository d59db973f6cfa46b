"""tests/strict_stripe.py, the strict layer in front of localstripe, through the real `stripe` SDK: each behaviour of
Stripe it enforces, and (where cheap) that localstripe alone does not."""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import stripe


@pytest.fixture(autouse=True)
def _a_fresh_second(localstripe):
    localstripe.reset_stats()  # and the rate limit's window: the tests before this one made their requests


@pytest.fixture
def client(localstripe) -> stripe.StripeClient:
    """An SDK client on the proxy; no retries, so every answer is seen as given."""
    return stripe.StripeClient("sk_test_strict", base_addresses={"api": localstripe.api_base}, max_network_retries=0)


@pytest.fixture
def bare(localstripe) -> stripe.StripeClient:
    """An SDK client on localstripe itself, without the proxy."""
    return stripe.StripeClient("sk_test_strict", base_addresses={"api": localstripe.upstream}, max_network_retries=0)


def customer_with(client, payment_method: str):
    customer = client.v1.customers.create(params={"name": "Strict"})
    method = client.v1.payment_methods.attach(payment_method, params={"customer": customer.id})
    return customer, method


def off_session_charge(client, customer, method, *, key: str | None = None, metadata: dict | None = None):
    params = {"amount": 1000, "currency": "usd", "customer": customer.id, "payment_method": method.id}
    params |= {"confirm": True, "off_session": True, "metadata": metadata or {}}
    return client.v1.payment_intents.create(params=params, options={"idempotency_key": key} if key else {})


def post(url: str, fields: list, headers: dict) -> tuple[int, dict, dict]:
    """A raw form POST: status, headers, JSON body (for what the SDK would not send, e.g. parameters reordered)."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the test's proxy, http)
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def intent_count(localstripe) -> int:
    raw = stripe.StripeClient("sk_test_strict", base_addresses={"api": localstripe.upstream})
    return sum(1 for _ in raw.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter())


# 1. Minimum charge amount


def test_a_payment_intent_under_fifty_cents_is_refused_and_never_reaches_localstripe(client, bare, localstripe):
    before = intent_count(localstripe)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.create(params={"amount": 49, "currency": "usd"})

    assert (refused.value.http_status, refused.value.code, refused.value.param) == (400, "amount_too_small", "amount")
    assert refused.value.user_message == "Amount must be at least $0.50 usd"
    assert intent_count(localstripe) == before
    assert client.v1.payment_intents.create(params={"amount": 50, "currency": "usd"}).amount == 50
    assert bare.v1.payment_intents.create(params={"amount": 49, "currency": "usd"}).amount == 49  # localstripe: fine


# 2. Idempotency keys


def test_the_same_key_and_parameters_replay_the_first_answer(client, localstripe):
    key = f"strict-{uuid.uuid4()}"
    params = {"amount": 700, "currency": "usd", "metadata": {"n": "1"}}
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    before = intent_count(localstripe)

    again = client.v1.payment_intents.create(params=params, options={"idempotency_key": key})

    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert first.last_response.headers.get("Idempotent-Replayed") is None
    assert intent_count(localstripe) == before  # nothing created the second time


def test_the_same_key_with_other_parameters_is_an_idempotency_error(client, localstripe):
    key = f"strict-{uuid.uuid4()}"
    client.v1.payment_intents.create(params={"amount": 700, "currency": "usd"}, options={"idempotency_key": key})

    with pytest.raises(stripe.IdempotencyError, match=f"Try using a key other than '{key}'"):
        client.v1.payment_intents.create(params={"amount": 800, "currency": "usd"}, options={"idempotency_key": key})
    with pytest.raises(stripe.IdempotencyError):  # another endpoint with the key is another request too
        client.v1.customers.create(params={"name": "x"}, options={"idempotency_key": key})
    assert localstripe.stats()["idempotency_errors"] >= 2


def test_parameters_are_compared_decoded_in_any_order(localstripe):
    key, url = f"strict-{uuid.uuid4()}", f"{localstripe.api_base}/v1/customers"
    headers = {"Authorization": "Bearer sk_test_strict", "Idempotency-Key": key}
    status, _, first = post(url, [("name", "A"), ("email", "a@example.com")], headers)
    status_again, replayed, again = post(url, [("email", "a@example.com"), ("name", "A")], headers)

    assert (status, status_again, again["id"], replayed.get("Idempotent-Replayed")) == (200, 200, first["id"], "true")


def test_a_card_error_is_replayed_and_a_validation_error_is_not_saved(client, localstripe):
    customer, method = customer_with(client, "pm_card_chargeCustomerFail")
    key, metadata = f"strict-{uuid.uuid4()}", {"test": "replay"}
    with pytest.raises(stripe.CardError) as declined:
        off_session_charge(client, customer, method, key=key, metadata=metadata)
    before = intent_count(localstripe)
    with pytest.raises(stripe.CardError) as replayed:  # the 402 is replayed, not charged again
        off_session_charge(client, customer, method, key=key, metadata=metadata)
    assert replayed.value.headers.get("Idempotent-Replayed") == "true"
    assert replayed.value.json_body == declined.value.json_body
    assert intent_count(localstripe) == before

    small = f"strict-{uuid.uuid4()}"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"}, options={"idempotency_key": small})
    fixed = client.v1.payment_intents.create(
        params={"amount": 90, "currency": "usd"}, options={"idempotency_key": small}
    )
    assert fixed.amount == 90  # the refused request's key was not kept: its corrected request runs


def test_a_key_still_in_flight_gets_409_and_the_sdks_retry_gets_the_first_answer(client, localstripe):
    key, params = f"strict-{uuid.uuid4()}", {"amount": 900, "currency": "usd"}
    localstripe.slow_next("/v1/payment_intents", 1.5)
    first = {}
    thread = threading.Thread(
        target=lambda: first.update(intent=client.v1.payment_intents.create(params, {"idempotency_key": key}))
    )
    thread.start()
    time.sleep(0.5)
    with pytest.raises(stripe.APIError) as in_use:  # no retries: the 409 itself (the SDK has no class for 409)
        client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    retrying = stripe.StripeClient(
        "sk_test_strict", base_addresses={"api": localstripe.api_base}, max_network_retries=3
    )
    again = retrying.v1.payment_intents.create(params=params, options={"idempotency_key": key})  # 409s, then replayed
    thread.join(timeout=10)

    assert (in_use.value.http_status, in_use.value.error.code) == (409, "idempotency_key_in_use")
    assert again.id == first["intent"].id


# 3. Rate limit


def test_more_requests_in_a_second_than_the_limit_are_refused_with_429(client, localstripe):
    localstripe.configure(rate_limit=3)
    try:
        with pytest.raises(stripe.RateLimitError) as limited:
            for _ in range(6):
                client.v1.customers.list(params={"limit": 1})
    finally:
        localstripe.configure(rate_limit=25)
    assert (limited.value.http_status, limited.value.error.code) == (429, "rate_limit")
    stats = localstripe.stats()
    assert (stats["rate_limited"], stats["max_requests_in_a_second"], stats["rate_limit"]) == (1, 3, 25)


def test_the_default_limit_is_stripes_test_mode_limit(localstripe):
    assert localstripe.stats()["rate_limit"] == 25


# 4. Off-session authentication


def test_an_off_session_payment_on_the_always_authenticate_card_fails_with_402_as_on_stripe(client, localstripe):
    customer, method = customer_with(client, "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError) as declined:
        off_session_charge(client, customer, method)

    error = declined.value.json_body["error"]
    assert (declined.value.http_status, error["code"], error["decline_code"]) == (402, *["authentication_required"] * 2)
    assert error["message"] == "Your card was declined. This transaction requires authentication."
    assert error["payment_method"]["id"] == method.id
    intent = client.v1.payment_intents.retrieve(error["payment_intent"]["id"])
    assert (intent.status, intent.next_action, intent.last_payment_error.code) == (
        "requires_payment_method",
        None,
        "authentication_required",
    )
    listed = {each.id: each.status for each in client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()}
    assert listed[intent.id] == "requires_payment_method"
    bare = stripe.StripeClient("sk_test_strict", base_addresses={"api": localstripe.upstream})
    assert bare.v1.payment_intents.retrieve(intent.id).status == "requires_action"  # what localstripe says


def test_the_customer_then_confirms_it_on_session_through_the_proxy(client, localstripe):
    customer, method = customer_with(client, "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError) as declined:
        off_session_charge(client, customer, method)
    intent = declined.value.json_body["error"]["payment_intent"]

    url = f"{localstripe.api_base}/v1/payment_intents/{intent['id']}/_authenticate?success=true"
    body = json.dumps({"key": "pk_test_strict", "client_secret": intent["client_secret"]}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as response:  # noqa: S310
        assert json.loads(response.read())["status"] == "succeeded"  # as Stripe.js's confirmCardPayment does it
    assert client.v1.payment_intents.retrieve(intent["id"]).status == "succeeded"


def test_confirming_it_again_on_session_asks_for_the_check_and_off_session_declines_again(client):
    customer, method = customer_with(client, "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError) as declined:
        off_session_charge(client, customer, method)
    intent_id = declined.value.json_body["error"]["payment_intent"]["id"]

    with pytest.raises(stripe.CardError, match="requires authentication"):
        client.v1.payment_intents.confirm(intent_id, params={"payment_method": method.id, "off_session": True})
    confirmed = client.v1.payment_intents.confirm(intent_id, params={"payment_method": method.id})
    assert (confirmed.status, confirmed.next_action.type) == ("requires_action", "use_stripe_sdk")
    assert client.v1.payment_intents.retrieve(intent_id).status == "requires_action"


def test_a_payment_waiting_for_authentication_can_be_canceled(client):
    customer, method = customer_with(client, "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError) as declined:
        off_session_charge(client, customer, method)
    canceled = client.v1.payment_intents.cancel(declined.value.json_body["error"]["payment_intent"]["id"])
    assert canceled.status == "canceled"


def test_the_card_authenticated_on_setup_pays_off_session(client, bare):
    customer, method = customer_with(client, "pm_card_authenticationRequiredOnSetup")
    assert method.card.last4 == "3155"
    assert off_session_charge(client, customer, method).status == "succeeded"

    bare_customer, bare_method = customer_with(bare, method.id)  # the same card, straight to localstripe
    assert off_session_charge(bare, bare_customer, bare_method).status == "requires_action"


# 5. Test payment methods


def test_more_canonical_test_payment_methods(client, bare):
    _, mastercard = customer_with(client, "pm_card_mastercard")
    assert (mastercard.id.startswith("pm_"), mastercard.card.last4) == (True, "4444")
    with pytest.raises(stripe.CardError):  # Stripe declines attaching 4000 0000 0000 0002
        customer_with(client, "pm_card_chargeDeclined")
    customer = client.v1.customers.create(params={"name": "setup"})
    setup = client.v1.setup_intents.create(params={"customer": customer.id})
    confirmed = client.v1.setup_intents.confirm(setup.id, params={"payment_method": "pm_card_authenticationRequired"})
    assert confirmed.status == "requires_action"
    with pytest.raises(stripe.InvalidRequestError):  # localstripe alone does not know it
        customer_with(bare, "pm_card_mastercard")


# 6. Controls


def test_a_failure_on_purpose_is_saved_under_its_key_and_a_new_key_goes_through(client, localstripe):
    before, key = intent_count(localstripe), f"strict-{uuid.uuid4()}"
    localstripe.fail_next("/v1/payment_intents", status=500)
    params = {"amount": 600, "currency": "usd"}
    with pytest.raises(stripe.APIError) as failed:
        client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    assert failed.value.http_status == 500
    with pytest.raises(stripe.APIError) as again:  # Stripe saved the 500: the same key gets it again
        client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    assert again.value.headers.get("Idempotent-Replayed") == "true"
    assert intent_count(localstripe) == before  # neither reached localstripe

    created = client.v1.payment_intents.create(params=params, options={"idempotency_key": f"{key}-new"})
    assert created.status == "requires_payment_method"
    assert intent_count(localstripe) == before + 1


def test_stats_count_requests_per_path_and_everything_else_is_forwarded(client, localstripe):
    client.v1.customers.list()
    client.v1.customers.list()
    with urllib.request.urlopen(localstripe.js_url, timeout=10) as response:  # noqa: S310 (the fake Stripe.js)
        assert b"Stripe" in response.read()

    stats = localstripe.stats()
    assert stats["requests"] == {"GET /v1/customers": 2}
    assert (stats["rate_limited"], stats["replayed"]) == (0, 0)
    assert 1 <= stats["max_requests_in_a_second"] <= 2
