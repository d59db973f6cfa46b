"""An Owner adds a card and upgrades to Pay-as-you-go in a real browser (Chromium), with localstripe's Stripe.js.

localstripe's fake Stripe.js mounts plain text inputs (placeholders number, exp_month, exp_year,
cvc, postal_code) in the card element and confirms the SetupIntent against localstripe itself (card-setup.js puts
one "MM / YY" expiry field in place of its month and year);
the page then posts only the SetupIntent's id and the server stores the card.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from billing import lifecycle
from tests.billing.test_card_page import setup_intent_count
from tests.e2e import browser
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stripe_settings")]

EMAIL = "payer@example.com"


@pytest.fixture
def owner(live_server):
    return MembershipFactory(role=Role.OWNER, user=UserFactory(email=EMAIL))


def sign_in(page: Page) -> None:
    browser.sign_in(page, EMAIL)


def reauthenticate(page: Page) -> None:
    """allauth asks for the password again before a card change."""
    expect(page).to_have_url(re.compile(r"/accounts/reauthenticate/"))
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    page.wait_for_url(lambda url: "/accounts/reauthenticate/" not in url)


def type_card(page: Page, number: str, expiry: str = "12/30") -> None:
    card = page.locator("#card-element")
    card.get_by_placeholder("number").press_sequentially(number)
    card.get_by_label("Expiry (MM / YY)").press_sequentially(expiry)
    card.get_by_placeholder("cvc").press_sequentially("123")
    card.get_by_placeholder("postal_code").press_sequentially("10001")


def test_an_owner_adds_a_card_and_upgrades_to_pay_as_you_go(page: Page, owner):
    sign_in(page)
    page.goto("/billing/")
    expect(page.locator("#plan-heading").locator("..")).to_contain_text("No card on file")

    intents_before = setup_intent_count()
    page.get_by_role("link", name="Add a card to upgrade").click()
    reauthenticate(page)
    expect(page).to_have_url(re.compile(r"/billing/card/\?next=upgrade$"))
    expect(page.locator("#card-element input:visible")).to_have_count(4)  # number, expiry, CVC, postal code
    assert setup_intent_count() == intents_before  # made when the form is submitted, not for viewing the page

    # A declined card: Stripe's message in the page, and nothing stored.
    type_card(page, "4000 0000 0000 0002".replace(" ", ""))
    page.get_by_role("button", name="Save card and continue").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"declined", re.I))
    expect(page).to_have_url(re.compile(r"/billing/card/\?next=upgrade$"))
    assert lifecycle.subscription_for(owner.team_id).card_on_file is False
    assert setup_intent_count() == intents_before + 1

    # A good card: stored, then the upgrade confirmation.
    page.reload()
    type_card(page, "4242424242424242")
    page.get_by_role("button", name="Save card and continue").click()
    expect(page).to_have_url(re.compile(r"/billing/switch/\?plan=payg$"))
    expect(page.locator("main")).to_contain_text("Visa •••• 4242 is now your card.")

    page.get_by_role("button", name="Upgrade now").click()
    expect(page).to_have_url(re.compile(r"/billing/$"))
    plan_card = page.locator("#plan-heading").locator("..")
    expect(plan_card).to_contain_text("Pay-as-you-go")
    expect(plan_card).to_contain_text("Visa •••• 4242, expires 12/2030")
    expect(plan_card.get_by_role("link", name="Replace card")).to_be_visible()
    subscription = lifecycle.subscription_for(owner.team_id)
    assert (subscription.plan.code, subscription.card_last4) == ("payg", "4242")


def test_a_declined_card_then_a_good_one_in_the_same_form_uses_one_setup_intent(page: Page, owner):
    sign_in(page)
    page.goto("/billing/card/")
    reauthenticate(page)
    expect(page.locator("#card-element input:visible")).to_have_count(4)
    before = setup_intent_count()

    type_card(page, "4000000000000002")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"declined", re.I))
    page.locator("#card-element").get_by_placeholder("number").fill("4242424242424242")  # no reload
    page.get_by_role("button", name="Save card").click()

    expect(page).to_have_url(re.compile(r"/billing/$"))
    expect(page.locator("main")).to_contain_text("Visa •••• 4242 is now your card.")
    assert setup_intent_count() == before + 1


@pytest.mark.parametrize(("typed", "stored"), [("12/2031", (12, 2031)), ("7 / 32", (7, 2032)), ("0933", (9, 2033))])
def test_the_expiry_is_taken_as_people_type_it(page: Page, owner, typed, stored):
    """localstripe's stand-in took "2030" as the year 202030 (a Bad request); the form reads "MM / YY" as typed."""
    sign_in(page)
    page.goto("/billing/card/")
    reauthenticate(page)
    type_card(page, "4242424242424242", expiry=typed)
    page.get_by_role("button", name="Save card").click()
    expect(page).to_have_url(re.compile(r"/billing/$"))
    subscription = lifecycle.subscription_for(owner.team_id)
    subscription.refresh_from_db()
    assert (subscription.card_exp_month, subscription.card_exp_year) == stored


def test_an_expiry_that_is_not_a_date_is_refused_in_the_form(page: Page, owner):
    sign_in(page)
    page.goto("/billing/card/")
    reauthenticate(page)
    before = setup_intent_count()
    type_card(page, "4242424242424242", expiry="13/30")
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the card's expiry as MM / YY")
    assert setup_intent_count() == before  # nothing asked of Stripe
