"""The card page of the Billing tab, against localstripe: Owners only, after re-entering their password.

Stripe.js's step (confirming the SetupIntent with the typed card) is done here with the SDK, as in
test_cards.py; the browser test (tests/e2e/test_card_in_a_browser.py) drives the real page.
"""

import re

import pytest
import stripe
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from accounts.roles import Role
from billing import lifecycle
from billing.models import BillingEvent, Subscription
from billing.stripe_gateway import stripe_client
from tests.conftest import login_as
from tests.factories import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

CARD_URL = "/billing/card/"
SETUP_INTENT_URL = "/billing/card/setup-intent/"
VISA, DECLINED = "pm_card_visa", "pm_card_chargeDeclined"


def reauthenticate(client) -> None:
    """What allauth asks before a card change: the password again (the session remembers it for a while)."""
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    reauthenticate(client)
    return client


def card_form(client, url=CARD_URL) -> dict:
    """The card page's form, and the SetupIntent its script asks for when the Owner submits it (as card-setup.js
    does: a POST with the form's CSRF token)."""
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    intent_url = re.search(r'data-intent-url="([^"]+)"', html).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    answer = client.post(intent_url, HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 200, answer.content
    secret = answer.json()["client_secret"]
    return {"html": html, "secret": secret, "intent_id": secret.split("_secret_")[0]}


def csrf_checking_client(owner) -> Client:
    """A client that enforces CSRF as a browser meets it, signed in as `owner` and re-authenticated through the
    password form with that form's token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    form_html = client.get(reverse("account_reauthenticate")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form_html).group(1)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD, "csrfmiddlewaretoken": token})
    return client


def setup_intent_count() -> int:
    return sum(1 for _ in stripe_client().v1.setup_intents.list(params={"limit": 100}).auto_paging_iter())


def confirm_in_the_browser(intent_id: str, payment_method: str):
    """What Stripe.js does when the Owner submits the form, with a test PaymentMethod (`pm_card_visa`, …) for the
    typed card: raw card numbers never go through the secret key."""
    return stripe_client().v1.setup_intents.confirm(intent_id, params={"payment_method": payment_method})


def store(client, intent_id: str, **extra):
    return client.post(CARD_URL, {"setup_intent": intent_id, **extra})


def subscription(team) -> Subscription:
    return lifecycle.subscription_for(team.pk)


def followed(response) -> str:
    assert response.status_code == 302
    return response.client.get(response["Location"]).content.decode()


def test_viewing_the_card_page_makes_no_setup_intent(owner_client, team, settings):
    """Stripe keeps every SetupIntent made: one per view of the page piled up (and a Customer per team that
    only looked). The page carries Stripe.js and the publishable key; the SetupIntent waits for the form."""
    before = setup_intent_count()

    for url in (CARD_URL, f"{CARD_URL}?next=upgrade", CARD_URL):
        html = owner_client.get(url).content.decode()

    assert setup_intent_count() == before
    assert not subscription(team).stripe_customer_id
    assert f'<script src="{settings.STRIPE_JS_URL}"></script>' in html
    assert "/static/js/card-setup.js" in html
    assert f'data-publishable-key="{settings.STRIPE_PUBLISHABLE_KEY}"' in html
    assert f'data-intent-url="{SETUP_INTENT_URL}"' in html and "data-client-secret" not in html
    assert '<div id="card-element"' in html
    assert "No card on file." in html


def test_submitting_the_form_makes_one_setup_intent_for_the_teams_customer(owner_client, team):
    before = setup_intent_count()

    form = card_form(owner_client)

    assert setup_intent_count() == before + 1
    assert re.fullmatch(r"seti_\w+_secret_\w+", form["secret"])
    intent = stripe_client().v1.setup_intents.retrieve(form["intent_id"])
    assert intent.customer == subscription(team).stripe_customer_id
    assert intent.usage == "off_session"


def test_a_confirmed_card_is_stored_and_the_billing_tab_shows_it(owner_client, team):
    form = card_form(owner_client)
    confirm_in_the_browser(form["intent_id"], VISA)

    response = store(owner_client, form["intent_id"])

    assert response["Location"] == reverse("billing")
    html = followed(response)
    assert "Visa •••• 4242 is now your card." in html
    assert "Visa •••• 4242, expires 12/2030" in html and "Replace card</a>" in html
    stored = subscription(team)
    assert (stored.card_on_file, stored.card_brand, stored.card_last4) == (True, "visa", "4242")
    assert stored.plan.code == "free"  # a card alone changes no plan
    # The page now shows the card and offers to replace it with a new SetupIntent.
    again = card_form(owner_client)
    assert "Replace your card" in again["html"] and "Visa •••• 4242</strong>, expires 12/2030" in again["html"]
    assert again["intent_id"] != form["intent_id"]


def test_from_the_upgrade_button_a_stored_card_leads_to_the_upgrade_confirmation(owner_client, team):
    billing = owner_client.get(reverse("billing")).content.decode()
    assert f'href="{CARD_URL}?next=upgrade">Add a card to upgrade</a>' in billing
    form = card_form(owner_client, f"{CARD_URL}?next=upgrade")
    assert '<input type="hidden" name="next" value="upgrade">' in form["html"]
    confirm_in_the_browser(form["intent_id"], VISA)

    response = store(owner_client, form["intent_id"], next="upgrade")

    assert response["Location"] == f"{reverse('billing_plan_switch')}?plan=payg"
    confirmation = followed(response)
    assert "Visa •••• 4242 is now your card." in confirmation and "Upgrade now</button>" in confirmation
    assert subscription(team).plan.code == "free"  # until the Owner confirms
    owner_client.post(reverse("billing_plan_switch"), {"plan": "payg"})
    assert subscription(team).plan.code == "payg"


def test_a_declined_card_shows_stripes_message_and_stores_nothing(owner_client, team):
    form = card_form(owner_client, f"{CARD_URL}?next=upgrade")
    with pytest.raises(stripe.CardError) as declined:
        confirm_in_the_browser(form["intent_id"], DECLINED)
    assert declined.value.user_message  # what Stripe.js shows in the page; the form is never posted

    response = store(owner_client, form["intent_id"], next="upgrade")  # posted anyway, by hand

    assert response["Location"] == f"{CARD_URL}?next=upgrade"
    html = followed(response)
    assert 'class="alert alert-error"' in html and "is now your card" not in html
    assert subscription(team).card_on_file is False
    assert not BillingEvent.objects.filter(team=team, kind=BillingEvent.Kind.CARD_CHANGED).exists()


def test_an_unconfirmed_or_unknown_setup_intent_stores_nothing(owner_client, team):
    form = card_form(owner_client)

    html = followed(store(owner_client, form["intent_id"]))
    assert "The card was not confirmed" in html

    for bogus in ("seti_doesnotexist", "pm_123", ""):
        html = followed(store(owner_client, bogus))
        assert "not one of this team&#x27;s" in html
    assert subscription(team).card_on_file is False


def test_another_teams_setup_intent_is_refused(owner_client, team, other_team):
    rival = Client()
    login_as(rival, Membership.objects.get(team=other_team, role=Role.OWNER))
    reauthenticate(rival)
    theirs = card_form(rival)
    confirm_in_the_browser(theirs["intent_id"], VISA)
    card_form(owner_client)  # our team has a Customer too

    html = followed(store(owner_client, theirs["intent_id"]))

    assert "not one of this team&#x27;s" in html
    assert subscription(team).card_on_file is False
    assert subscription(other_team).card_on_file is False


def test_the_card_page_asks_for_the_password_again_first(client, owner, team):
    client.force_login(owner)

    response = client.get(f"{CARD_URL}?next=upgrade")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not subscription(team).stripe_customer_id  # no Stripe call before the password
    assert store(client, "seti_anything").status_code == 302
    assert subscription(team).card_on_file is False
    reauthenticate(client)
    assert client.get(CARD_URL).status_code == 200


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(CARD_URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_only_owners_reach_the_card_page(client, team, make_member, role):
    login_as(client, make_member(role))
    reauthenticate(client)

    assert client.get(CARD_URL).status_code == 403
    assert store(client, "seti_anything").status_code == 403
    assert not subscription(team).stripe_customer_id


def test_storing_the_card_needs_the_csrf_token(team, owner):
    client = csrf_checking_client(owner)
    form = card_form(client)
    confirm_in_the_browser(form["intent_id"], VISA)

    assert store(client, form["intent_id"]).status_code == 403
    assert subscription(team).card_on_file is False

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form["html"]).group(1)
    response = store(client, form["intent_id"], csrfmiddlewaretoken=token)
    assert response.status_code == 302
    assert subscription(team).card_on_file is True


def test_a_card_posted_after_the_password_expired_is_stored_once_the_password_is_entered(client, owner, team):
    client.force_login(owner)
    reauthenticate(client)
    form = card_form(client)
    confirm_in_the_browser(form["intent_id"], VISA)
    session = client.session
    session["account_authentication_methods"] = [
        {**record, "at": record["at"] - 3600} for record in session["account_authentication_methods"]
    ]  # the Owner took an hour over the form
    session.save()

    response = store(client, form["intent_id"])

    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert subscription(team).card_on_file is False
    response = client.post(response["Location"], {"password": PASSWORD})  # allauth replays the suspended POST
    assert response.status_code == 302 and response["Location"] == reverse("billing")
    assert subscription(team).card_last4 == "4242"
