"""3-D Secure in a real browser (Chromium) with localstripe's Stripe.js: an Owner stores a card that needs
the bank's check on every payment (4000 0027 6000 3184), its scheduled charge then needs the check too, and the Owner
pays the past-due invoice on its pay page by answering the check; the suspension is lifted at once.

localstripe's Stripe.js shows its 3-D Secure step as a dialog with "Complete authentication" and
"Fail authentication" buttons.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from billing import dunning, lifecycle, payments
from billing.models import Invoice
from tests.billing.test_payments import pay_as_you_go_invoice
from tests.e2e.test_card_in_a_browser import EMAIL, reauthenticate, sign_in, type_card
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stripe_settings")]

NEEDS_3DS = "4000002760003184"  # typed into Stripe.js: 4000 0025 0000 3155 would pay off-session


@pytest.fixture
def owner(live_server):
    return MembershipFactory(role=Role.OWNER, user=UserFactory(email=EMAIL))


def test_an_owner_answers_3d_secure_for_the_card_and_then_for_a_past_due_payment(page: Page, owner):
    sign_in(page)
    page.goto("/billing/card/")
    reauthenticate(page)
    type_card(page, NEEDS_3DS)
    page.get_by_role("button", name="Save card").click()
    page.get_by_role("button", name="Complete authentication").click()  # the bank's check, on-session
    expect(page).to_have_url(re.compile(r"/billing/$"))
    expect(page.locator("main")).to_contain_text("Visa •••• 3184 is now your card.")

    # The period closes and the scheduled (off-session) charge needs the check too: past due, suspended.
    invoice = pay_as_you_go_invoice(owner, 12)
    payments.charge_invoice(invoice.pk)
    dunning.suspend(owner.team_id)
    assert Invoice.objects.get(pk=invoice.pk).status == "past_due"

    page.goto("/billing/")
    page.get_by_role("link", name=f"Pay invoice {invoice.number}").click()  # from the suspension banner
    expect(page).to_have_url(re.compile(rf"/billing/invoices/{invoice.public_id}/pay/$"))
    page.get_by_role("button", name="Confirm payment of $1.80").click()
    page.get_by_role("button", name="Complete authentication").click()

    expect(page).to_have_url(re.compile(rf"/billing/invoices/{invoice.public_id}/$"))
    expect(page.locator("main")).to_contain_text(f"Thank you: invoice {invoice.number} ($1.80) is paid.")
    expect(page.locator("h1")).to_contain_text("Paid")
    assert lifecycle.subscription_for(owner.team_id).status == "active"
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
