"""The card flow's hygiene at Stripe (localstripe here): a replaced card is detached from the Customer, and a Stripe
that cannot be reached, refuses our key or fails otherwise is a form error for the Owner, never a 500, and never
loses the card already stored.
"""

import logging

import pytest
import stripe
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from accounts.roles import Role
from billing import cards, tasks
from billing.models import BillingEvent
from billing.stripe_gateway import stripe_client
from tests.billing.test_card_page import (
    CARD_URL,
    SETUP_INTENT_URL,
    card_form,
    confirm_in_the_browser,
    csrf_checking_client,
    reauthenticate,
    setup_intent_count,
    store,
    subscription,
)
from tests.billing.test_card_removal import attached_to, dead_stripe, followed
from tests.billing.test_payments import store_card
from tests.conftest import login_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

VISA, MASTERCARD = "pm_card_visa", "pm_card_mastercard"


@pytest.fixture
def owner_membership(team, owner) -> Membership:
    return Membership.objects.get(team=team, user=owner)


@pytest.fixture
def reauthenticated(client, owner) -> Client:
    client.force_login(owner)
    reauthenticate(client)
    return client


def confirmed_card(client, number: str) -> str:
    """What the Owner's browser does: submit the form (a SetupIntent is made) and confirm the card with Stripe."""
    form = card_form(client)
    confirm_in_the_browser(form["intent_id"], number)
    return form["intent_id"]


# A replaced card is detached


def test_a_replaced_card_is_detached_from_the_customer(reauthenticated, owner_membership, team):
    old = store_card(owner_membership, VISA)
    assert attached_to(old.payment_method_id) == old.stripe_customer_id

    response = store(reauthenticated, confirmed_card(reauthenticated, MASTERCARD))

    assert "•••• 4444 is now your card." in followed(response)
    now = subscription(team)
    assert (now.card_last4, now.cards_to_detach) == ("4444", [])
    assert attached_to(now.payment_method_id) == now.stripe_customer_id
    assert attached_to(old.payment_method_id) is None  # no longer on the Customer, in Stripe's dashboard or API


def test_if_stripe_fails_the_detach_the_new_card_is_kept_and_beat_detaches_the_old_one_later(
    owner_membership, team, settings, monkeypatch, caplog
):
    old = store_card(owner_membership, VISA)
    real_detach = cards.detach_replaced_cards

    def stripe_down_after_storing(team_id):
        api_base = settings.STRIPE_API_BASE
        dead_stripe(settings)
        try:
            return real_detach(team_id)
        finally:
            settings.STRIPE_API_BASE = api_base

    monkeypatch.setattr(cards, "detach_replaced_cards", stripe_down_after_storing)
    new = store_card(owner_membership, MASTERCARD)
    monkeypatch.undo()

    now = subscription(team)
    assert (now.payment_method_id, now.card_last4) == (new.payment_method_id, "4444")  # the new card is stored
    assert now.cards_to_detach == [old.payment_method_id]
    assert attached_to(old.payment_method_id) == old.stripe_customer_id
    assert f"Could not detach the replaced PaymentMethod {old.payment_method_id}" in caplog.text

    assert tasks.detach_replaced_cards() == 1  # beat's sweep, with Stripe back

    assert attached_to(old.payment_method_id) is None
    assert subscription(team).cards_to_detach == []
    assert attached_to(new.payment_method_id) == new.stripe_customer_id  # the card in use is never detached
    assert tasks.detach_replaced_cards() == 0


def test_a_replaced_card_already_gone_at_stripe_is_done(owner_membership, team):
    old = store_card(owner_membership, VISA)
    stripe_client().v1.payment_methods.detach(old.payment_method_id)  # e.g. in Stripe's dashboard
    store_card(owner_membership, MASTERCARD)
    assert subscription(team).cards_to_detach == []


# Stripe failing: a form error, nothing lost


def test_stripe_out_of_reach_when_the_form_is_submitted_is_a_form_error(reauthenticated, team, settings, caplog):
    card_form(reauthenticated)  # the page works and the team has its Customer
    dead_stripe(settings)

    answer = reauthenticated.post(SETUP_INTENT_URL)

    assert answer.status_code == 503
    assert answer.json() == {"error": "We couldn't reach our payment provider. Try again in a minute."}
    assert "Could not create a SetupIntent for team" in caplog.text  # for staff, with the traceback
    assert reauthenticated.get(CARD_URL).status_code == 200  # the page itself needs no Stripe


def test_an_invalid_key_is_a_form_error_that_says_it_is_our_problem(reauthenticated, team, settings, caplog):
    settings.STRIPE_SECRET_KEY = "not_a_stripe_key"  # localstripe refuses it: 401, AuthenticationError

    answer = reauthenticated.post(SETUP_INTENT_URL)

    assert answer.status_code == 503
    assert answer.json() == {"error": cards.STRIPE_MISCONFIGURED}
    assert any(record.levelno == logging.ERROR and record.exc_info for record in caplog.records)
    assert not subscription(team).stripe_customer_id


@pytest.mark.parametrize("outage", ["closed port", "invalid key"])
def test_storing_a_card_while_stripe_fails_keeps_the_card_on_file(
    reauthenticated, owner_membership, team, settings, outage
):
    old = store_card(owner_membership, VISA)
    intent_id = confirmed_card(reauthenticated, MASTERCARD)
    if outage == "closed port":
        dead_stripe(settings)
    else:
        settings.STRIPE_SECRET_KEY = "not_a_stripe_key"

    response = store(reauthenticated, intent_id)

    assert response["Location"] == CARD_URL
    html = followed(response)
    message = cards.STRIPE_UNREACHABLE if outage == "closed port" else cards.STRIPE_MISCONFIGURED
    assert message.replace("'", "&#x27;") in html and 'class="alert alert-error"' in html
    now = subscription(team)
    assert (now.payment_method_id, now.card_last4) == (old.payment_method_id, "4242")
    assert BillingEvent.objects.filter(team=team, kind=BillingEvent.Kind.CARD_CHANGED).count() == 1


ERRORS = {
    "connection": (stripe.APIConnectionError("refused"), cards.STRIPE_UNREACHABLE),
    "rate limit": (stripe.RateLimitError("slow down"), cards.STRIPE_BUSY),
    "authentication": (stripe.AuthenticationError("bad key"), cards.STRIPE_MISCONFIGURED),
    "permission": (stripe.PermissionError("restricted key"), cards.STRIPE_MISCONFIGURED),
    "idempotency": (stripe.IdempotencyError("other params"), cards.STRIPE_CONFLICT),
    "invalid request": (stripe.InvalidRequestError("no such customer", "customer"), cards.STRIPE_REFUSED),
    "api": (stripe.APIError("500"), cards.STRIPE_FAILED),
}


@pytest.mark.parametrize("error, message", ERRORS.values(), ids=ERRORS.keys())
def test_every_kind_of_stripe_error_is_a_clear_form_error(
    reauthenticated, owner_membership, monkeypatch, error, message
):
    """Whichever call fails (Customer or SetupIntent creation, retrieving, attaching or detaching a card, updating
    the Customer), the Owner reads what to do, not a 500."""
    old = store_card(owner_membership, VISA)

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(cards, "start_card_setup", fails)
    answer = reauthenticated.post(SETUP_INTENT_URL)
    assert (answer.status_code, answer.json()) == (503, {"error": message})

    monkeypatch.setattr(cards, "finish_card_setup", fails)
    if isinstance(error, stripe.InvalidRequestError):  # retrieving a SetupIntent Stripe does not know
        message_after_store = "That card setup is not one of this team&#x27;s."
    else:
        message_after_store = message.replace("'", "&#x27;")
    assert message_after_store in followed(store(reauthenticated, "seti_whatever"))

    monkeypatch.setattr(cards, "_detach", fails)
    assert message.replace("'", "&#x27;") in followed(reauthenticated.post(reverse("billing_card_remove")))
    assert subscription(owner_membership.team).payment_method_id == old.payment_method_id


def test_a_declined_attach_shows_the_banks_message():
    assert cards.stripe_trouble(stripe.CardError("Your card was declined.", "number", "card_declined")) == (
        "Your card was declined."
    )


# The SetupIntent endpoint


def test_the_setup_intent_endpoint_only_answers_a_post(reauthenticated):
    before = setup_intent_count()
    assert reauthenticated.get(SETUP_INTENT_URL).status_code == 405
    assert setup_intent_count() == before


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_only_owners_get_a_setup_intent(client, team, make_member, role):
    login_as(client, make_member(role))
    reauthenticate(client)
    before = setup_intent_count()

    assert client.post(SETUP_INTENT_URL).status_code == 403
    assert setup_intent_count() == before


def test_the_setup_intent_endpoint_needs_the_csrf_token(owner, team):
    client = csrf_checking_client(owner)
    before = setup_intent_count()

    assert client.post(SETUP_INTENT_URL).status_code == 403
    assert setup_intent_count() == before
    assert card_form(client)["intent_id"].startswith("seti_")  # with the page's token, as card-setup.js sends it


def test_an_expired_password_asks_the_page_to_reload_and_makes_nothing(client, owner, team):
    client.force_login(owner)  # signed in, but no recent password: the card page would ask for it
    before = setup_intent_count()

    answer = client.post(SETUP_INTENT_URL)

    assert answer.status_code == 401
    assert answer.json() == {"error": "Enter your password again to change the card.", "reload": True}
    assert setup_intent_count() == before and not subscription(team).stripe_customer_id
    assert client.get(CARD_URL)["Location"].startswith(reverse("account_reauthenticate"))
