"""Removing the card on file, with the real stripe SDK against localstripe: the service, then the page.

A card is removed only when no paid plan needs it (the plan, a scheduled switch, an unpaid invoice);
then its PaymentMethod is detached at Stripe and forgotten here, audited.
"""

import re
import socket

import pytest
import stripe
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership
from accounts.roles import Role
from billing import cards, lifecycle, services
from billing.models import BillingEvent, BillingPeriod, Invoice, Plan, Subscription
from billing.stripe_gateway import stripe_client
from tests.billing.test_card_page import reauthenticate
from tests.billing.test_payments import store_card
from tests.conftest import login_as
from tests.factories import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

CARD_URL = "/billing/card/"
REMOVE_URL = "/billing/card/remove/"
VISA = "pm_card_visa"


@pytest.fixture
def owner_membership(team, owner) -> Membership:
    return Membership.objects.get(team=team, user=owner)


@pytest.fixture
def with_card(owner_membership) -> Subscription:
    """The team (on Free) with a Visa stored through the real card flow."""
    return store_card(owner_membership, VISA)


@pytest.fixture
def reauthenticated(client, owner) -> Client:
    client.force_login(owner)
    reauthenticate(client)
    return client


def subscription(team) -> Subscription:
    return lifecycle.subscription_for(team.pk)


def attached_to(payment_method_id: str) -> str | None:
    """The Customer the PaymentMethod is attached to at Stripe (None once detached)."""
    return stripe_client().v1.payment_methods.retrieve(payment_method_id).customer


def unpaid_invoice(team, *, status=Invoice.Status.PAST_DUE, total_cents=1234) -> Invoice:
    period = lifecycle.current_period(team.pk)
    return Invoice.objects.create(
        team=team,
        period=period,
        number="INV-2026-900001",
        status=status,
        subtotal_cents=total_cents,
        total_cents=total_cents,
        issued_at=timezone.now(),
    )


def assert_card_kept(team, stored: Subscription) -> None:
    now = subscription(team)
    assert (now.card_on_file, now.payment_method_id, now.card_last4) == (True, stored.payment_method_id, "4242")
    assert attached_to(stored.payment_method_id) == stored.stripe_customer_id
    assert not AuditEvent.objects.filter(team=team, action="billing.card_removed").exists()
    assert not BillingEvent.objects.filter(team=team, kind=BillingEvent.Kind.CARD_CHANGED, after={"card": None})


def followed(response) -> str:
    assert response.status_code == 302
    return response.client.get(response["Location"]).content.decode()


def dead_stripe(settings) -> None:
    """Point the SDK at a port nothing listens on: every call fails to connect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"


# The service


def test_a_free_team_removes_its_card(owner_membership, with_card, team, owner):
    cards.remove_card(owner_membership)

    removed = subscription(team)
    assert removed.card_on_file is False
    assert (removed.payment_method_id, removed.card_brand, removed.card_last4) == ("", "", "")
    assert (removed.card_exp_month, removed.card_exp_year) == (None, None)
    assert removed.stripe_customer_id == with_card.stripe_customer_id  # the Customer stays for a later card
    assert attached_to(with_card.payment_method_id) is None
    event = BillingEvent.objects.filter(team=team, kind=BillingEvent.Kind.CARD_CHANGED).first()
    assert event.before == {"card": "visa •••• 4242 (12/2030)"} and event.after == {"card": None}
    assert event.actor == owner
    audit = AuditEvent.objects.get(team=team, action="billing.card_removed")
    assert audit.actor == owner and audit.target == "visa •••• 4242 (12/2030)"


def test_pay_as_you_go_keeps_its_card(owner_membership, with_card, team):
    services.switch_plan(actor=owner_membership, plan_code=Plan.PAY_AS_YOU_GO)

    with pytest.raises(cards.CardError, match="Pay-as-you-go charges this card, so it cannot be removed"):
        cards.remove_card(owner_membership)

    assert_card_kept(team, with_card)


def test_a_scheduled_switch_to_a_paid_plan_keeps_the_card_until_it_is_canceled(owner_membership, with_card, team):
    Subscription.objects.filter(team=team).update(plan=Plan.objects.get(code=Plan.ENTERPRISE))  # set up by staff
    services.switch_plan(actor=owner_membership, plan_code=Plan.PAY_AS_YOU_GO)  # scheduled for the period's end
    assert subscription(team).pending_plan.code == Plan.PAY_AS_YOU_GO

    with pytest.raises(cards.CardError, match="Your switch to Pay-as-you-go on .* needs this card"):
        cards.remove_card(owner_membership)
    assert_card_kept(team, with_card)

    services.cancel_plan_change(actor=owner_membership)
    cards.remove_card(owner_membership)
    assert subscription(team).card_on_file is False


@pytest.mark.parametrize("status", [Invoice.Status.OPEN, Invoice.Status.PAST_DUE])
def test_an_unpaid_invoice_keeps_the_card(owner_membership, with_card, team, status):
    unpaid_invoice(team, status=status, total_cents=1234)

    with pytest.raises(cards.CardError, match=r"Invoice INV-2026-900001 \(\$12.34\) is still to be charged"):
        cards.remove_card(owner_membership)

    assert_card_kept(team, with_card)


@pytest.mark.parametrize(
    ("status", "total_cents"),
    [(Invoice.Status.PAID, 1234), (Invoice.Status.VOID, 1234), (Invoice.Status.PAST_DUE, 0)],
)
def test_paid_void_and_zero_invoices_need_no_card(owner_membership, with_card, team, status, total_cents):
    unpaid_invoice(team, status=status, total_cents=total_cents)

    cards.remove_card(owner_membership)

    assert subscription(team).card_on_file is False


def test_without_a_card_there_is_nothing_to_remove(owner_membership, team):
    with pytest.raises(cards.CardError, match="There is no card to remove."):
        cards.remove_card(owner_membership)
    assert not BillingEvent.objects.filter(team=team, kind=BillingEvent.Kind.CARD_CHANGED).exists()


def test_a_card_already_gone_at_stripe_is_forgotten_here(owner_membership, with_card, team):
    Subscription.objects.filter(team=team).update(payment_method_id="pm_deletedatstripe")
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client().v1.payment_methods.detach("pm_deletedatstripe")  # what Stripe answers for it

    cards.remove_card(owner_membership)

    assert (subscription(team).card_on_file, subscription(team).payment_method_id) == (False, "")
    assert AuditEvent.objects.filter(team=team, action="billing.card_removed").exists()


def test_a_stripe_outage_changes_nothing(owner_membership, with_card, team, settings):
    dead_stripe(settings)

    with pytest.raises(stripe.APIConnectionError):
        cards.remove_card(owner_membership)

    now = subscription(team)
    assert (now.card_on_file, now.payment_method_id) == (True, with_card.payment_method_id)
    assert not AuditEvent.objects.filter(team=team, action="billing.card_removed").exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_only_owners_remove_the_card(make_member, with_card, team, role):
    with pytest.raises(PermissionDenied):
        cards.remove_card(make_member(role))
    assert_card_kept(team, with_card)


# The page


def test_the_owner_removes_the_card_from_the_card_page(reauthenticated, with_card, team):
    page = reauthenticated.get(CARD_URL).content.decode()
    assert f'<form method="post" action="{REMOVE_URL}"' in page and "Remove card</button>" in page

    response = reauthenticated.post(REMOVE_URL)

    assert response["Location"] == reverse("billing")
    html = followed(response)
    assert "Visa •••• 4242 is removed." in html
    assert subscription(team).card_on_file is False
    assert attached_to(with_card.payment_method_id) is None
    again = reauthenticated.get(CARD_URL).content.decode()
    assert "No card on file." in again and "Remove card</button>" not in again


def test_the_page_shows_why_instead_of_the_button_when_a_paid_plan_needs_the_card(
    reauthenticated, owner_membership, with_card, team
):
    services.switch_plan(actor=owner_membership, plan_code=Plan.PAY_AS_YOU_GO)

    page = reauthenticated.get(CARD_URL).content.decode()
    assert "Pay-as-you-go charges this card, so it cannot be removed." in page
    assert "Remove card</button>" not in page and REMOVE_URL not in page

    response = reauthenticated.post(REMOVE_URL)  # posted anyway, by hand
    assert response["Location"] == reverse("billing_card")
    assert 'class="alert alert-error"' in followed(response)
    assert_card_kept(team, with_card)


def test_without_a_card_the_page_offers_no_removal_and_a_post_says_so(reauthenticated, team):
    assert "Remove card</button>" not in reauthenticated.get(CARD_URL).content.decode()

    html = followed(reauthenticated.post(REMOVE_URL))

    assert "There is no card to remove." in html


def test_a_stripe_outage_shows_that_stripe_could_not_be_reached(reauthenticated, with_card, team, settings):
    dead_stripe(settings)

    response = reauthenticated.post(REMOVE_URL)

    assert response["Location"] == reverse("billing_card")
    assert "We couldn&#x27;t reach our payment provider. Try again in a minute." in followed(response)
    assert subscription(team).card_on_file is True


def test_removing_asks_for_the_password_again_first(client, owner, with_card, team):
    client.force_login(owner)

    response = client.post(REMOVE_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert_card_kept(team, with_card)


def test_get_is_not_allowed(reauthenticated, with_card, team):
    assert reauthenticated.get(REMOVE_URL).status_code == 405
    assert_card_kept(team, with_card)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_only_owners_reach_the_removal(client, make_member, with_card, team, role):
    login_as(client, make_member(role))
    reauthenticate(client)

    assert client.post(REMOVE_URL).status_code == 403
    assert_card_kept(team, with_card)


def test_removing_needs_the_csrf_token(owner, with_card, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    form_html = client.get(reverse("account_reauthenticate")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form_html).group(1)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD, "csrfmiddlewaretoken": token})

    assert client.post(REMOVE_URL).status_code == 403
    assert_card_kept(team, with_card)

    page = client.get(CARD_URL).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(REMOVE_URL, {"csrfmiddlewaretoken": token}).status_code == 302
    assert subscription(team).card_on_file is False


def test_another_teams_card_is_untouched(reauthenticated, with_card, team, other_team):
    theirs = store_card(Membership.objects.get(team=other_team, role=Role.OWNER), VISA)

    reauthenticated.post(REMOVE_URL)

    assert subscription(team).card_on_file is False
    kept = subscription(other_team)
    assert (kept.card_on_file, kept.payment_method_id) == (True, theirs.payment_method_id)
    assert attached_to(theirs.payment_method_id) == theirs.stripe_customer_id
    assert not AuditEvent.objects.filter(team=other_team, action="billing.card_removed").exists()


def test_usage_not_invoiced_yet_keeps_the_card(owner_membership, with_card, team):
    """A Pay-as-you-go period that has ended but is not closed yet (the grace hour), after a switch to Free."""
    period = lifecycle.current_period(team.pk)
    BillingPeriod.objects.filter(pk=period.pk).update(accrued_cents=300)

    with pytest.raises(cards.CardError, match=r"has \$3.00 to invoice and charge to this card"):
        cards.remove_card(owner_membership)
    assert_card_kept(team, with_card)

    BillingPeriod.objects.filter(pk=period.pk).update(status=BillingPeriod.Status.CLOSED)  # invoiced: see above
    cards.remove_card(owner_membership)
    assert subscription(team).card_on_file is False
