"""An Enterprise contract in a real browser (Chromium): a staff member signs in to the admin with two-factor
authentication and adds a graduated, invoice-paid contract with the issue's example tiers (first 10,000 requests
at 12¢, the next 90,000 at 9¢, beyond at 6¢) through the real add form and its tiers inline, after the form has
refused an impossible tier set. The team's Owner then sees the contract card on the Billing tab and, once the
period is closed, an invoice priced by the tiers, due by bank transfer and never paid by card."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.roles import Role
from billing import closing, lifecycle
from billing.models import BillingEvent, Contract, Invoice
from tests.billing.usage import count_billable_requests
from tests.e2e.conftest import DEFAULT_TIMEOUT_MS
from tests.e2e.test_card_in_a_browser import EMAIL, sign_in
from tests.e2e.test_garage_in_a_browser import STAFF_EMAIL, staff_secret  # noqa: F401 (fixture)
from tests.factories import PASSWORD, MembershipFactory, TeamFactory, UserFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEAM_NAME = "Fleetwise Logistics"
REFERENCE = "FLEET-2026-07"
ADD = "/admin/billing/contract/add/"


@pytest.fixture
def owner(live_server):
    return MembershipFactory(role=Role.OWNER, team=TeamFactory(name=TEAM_NAME), user=UserFactory(email=EMAIL))


def sign_in_staff(browser: Browser, base_url: str, secret: str) -> Page:
    """The staff member's own page (own cookies), signed in with password and a TOTP code."""
    staff = browser.new_page(base_url=base_url)
    staff.set_default_timeout(DEFAULT_TIMEOUT_MS)
    staff.goto("/accounts/login/")
    staff.locator('input[name="login"]').fill(STAFF_EMAIL)
    staff.locator('input[name="password"]').fill(PASSWORD)
    staff.locator('form:has(input[name="password"]) [type="submit"]').click()
    staff.wait_for_url(re.compile(r"/accounts/2fa/authenticate/"))
    for _ in range(2):  # a second code only if the 30-second window turned before the server checked the first
        code = totp_code(secret)
        staff.locator('input[name="code"]').fill(code)
        with staff.expect_navigation():
            staff.get_by_role("button", name="Sign In").click()
        if "/accounts/2fa/authenticate/" not in staff.url:
            break
    expect(staff).not_to_have_url(re.compile(r"/accounts/"))
    return staff


def fill_tier(staff: Page, index: int, up_to: str, unit_price_cents: str) -> None:
    staff.locator(f'[name="tiers-{index}-up_to"]').fill(up_to)
    staff.locator(f'[name="tiers-{index}-unit_price_cents"]').fill(unit_price_cents)


def fill_contract(staff: Page) -> None:
    """The contract's terms, typed into the add form: starting now, for a year, unlimited requests."""
    staff.goto(ADD)
    # The team is an autocomplete (select2): search for it and pick it.
    staff.locator(".field-team .select2-selection").click()
    staff.locator(".select2-search__field").fill("Fleetwise")
    staff.get_by_role("option", name=TEAM_NAME).click()
    expect(staff.locator(".field-team .select2-selection__rendered")).to_contain_text(TEAM_NAME)

    starts_at = timezone.localtime(timezone.now()).replace(microsecond=0)  # "now": in the past once posted
    ends_at = starts_at + timedelta(days=365)
    staff.locator('[name="reference"]').fill(REFERENCE)
    staff.locator('[name="starts_at_0"]').fill(f"{starts_at:%Y-%m-%d}")
    staff.locator('[name="starts_at_1"]').fill(f"{starts_at:%H:%M:%S}")
    staff.locator('[name="ends_at_0"]').fill(f"{ends_at:%Y-%m-%d}")
    staff.locator('[name="ends_at_1"]').fill(f"{ends_at:%H:%M:%S}")
    staff.locator('[name="request_allowance"]').fill("")  # empty: unlimited
    staff.locator('[name="vehicle_allowance"]').fill("500")
    staff.locator('[name="pricing"]').select_option("graduated")
    staff.locator('[name="minimum_cents"]').fill("0")
    staff.locator('[name="paid_by"]').select_option("invoice")
    staff.locator('[name="net_days"]').fill("30")


def add_contract_as_staff(browser: Browser, base_url: str, secret: str) -> None:
    staff = sign_in_staff(browser, base_url, secret)
    fill_contract(staff)

    # The example tiers in the inline's rows, and one more row ("Add another …") with no bound either: refused.
    expect(staff.locator('[name^="tiers-"][name$="-up_to"]:not([name*="__prefix__"])')).to_have_count(3)
    for index, (up_to, price) in enumerate([("10000", "12"), ("100000", "9"), ("", "6")]):
        fill_tier(staff, index, up_to, price)
    staff.get_by_role("button", name="Add another Contract tier").click()
    expect(staff.locator('[name="tiers-3-unit_price_cents"]')).to_be_visible()
    fill_tier(staff, 3, "", "3")
    staff.locator('input[name="_save"]').click()

    expect(staff.locator(".errornote")).to_contain_text("Please correct the error")
    expect(staff.locator(".inline-group")).to_contain_text("Give exactly one last tier with no upper bound")
    assert not Contract.objects.exists()
    assert not BillingEvent.objects.filter(kind="contract").exists()

    # The form comes back as typed; the extra row is emptied (a blank row is ignored) and the form sent again.
    expect(staff.locator('[name="tiers-1-up_to"]')).to_have_value("100000")
    expect(staff.locator('[name="tiers-3-unit_price_cents"]')).to_have_value("3")
    fill_tier(staff, 3, "", "")
    staff.locator('input[name="_save"]').click()

    staff.wait_for_url(re.compile(r"/admin/billing/contract/$"))
    expect(staff.locator(".messagelist")).to_contain_text("was added successfully")
    expect(staff.locator("#result_list")).to_contain_text(REFERENCE)
    staff.close()


def test_staff_add_a_graduated_contract_and_the_owner_sees_its_card_and_a_tiered_invoice_due_by_transfer(
    page: Page,
    browser: Browser,
    live_server,
    owner,
    staff_secret,  # noqa: F811
):
    lifecycle.current_period(owner.team_id)  # the team's open period, as on sign-up
    add_contract_as_staff(browser, live_server.url, staff_secret)

    contract = Contract.objects.get(team=owner.team)
    assert (contract.status, contract.pricing, contract.paid_by, contract.request_allowance) == (
        "active",
        "graduated",
        "invoice",
        None,
    )
    assert [(tier.up_to, int(tier.unit_price_cents)) for tier in contract.tiers.all()] == [
        (10_000, 12),
        (100_000, 9),
        (None, 6),
    ]
    period = lifecycle.current_period(owner.team_id)
    assert period.contract_id == contract.pk

    # The Owner's Billing tab: the contract card with its terms and three tiers.
    sign_in(page)
    page.goto("/billing/")
    card = page.locator(".contract-card")
    expect(card).to_contain_text("Your Enterprise contract")
    expect(card.locator("dt:has-text('Billable requests') + dd")).to_have_text("Unlimited a period")
    rows = card.locator(".contract-tiers tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("1 – 10,000")
    expect(rows.nth(0)).to_contain_text("12¢")
    expect(rows.nth(1)).to_contain_text("10,001 – 100,000")
    expect(rows.nth(1)).to_contain_text("9¢")
    expect(rows.nth(2)).to_contain_text("Beyond 100,000")
    expect(rows.nth(2)).to_contain_text("6¢")

    # Usage comes in: the first tier is the current one and the estimate prices it.
    count_billable_requests(owner.team, 25)
    page.reload()
    expect(card.locator("#contract-requests")).to_have_text("25")
    expect(card.locator("#contract-estimate")).to_have_text("$3.00")
    expect(card.locator("tr.current-tier")).to_have_count(1)
    expect(card.locator("tr.current-tier")).to_contain_text("1 – 10,000")

    # The period closes: its invoice is priced by the tiers and awaits a bank transfer.
    invoice = closing.close_period(period.pk, now=period.end + timedelta(hours=2))
    assert invoice is not None
    assert (invoice.total_cents, invoice.collection, invoice.status) == (300, "invoice", "open")
    page.reload()
    page.get_by_role("link", name=invoice.number).click()
    expect(page).to_have_url(re.compile(rf"/billing/invoices/{invoice.public_id}/$"))

    expect(page.locator("h1")).to_contain_text(f"Invoice {invoice.number}")
    line = page.locator(".invoice-lines tbody tr", has_text="Requests 1–10,000")
    expect(line).to_have_count(1)
    expect(line.locator('[data-label="Quantity"]')).to_have_text("25")
    expect(line.locator('[data-label="Unit price"]')).to_have_text("12¢")
    expect(line.locator('[data-label="Amount"]')).to_have_text("$3.00")
    expect(page.locator("#invoice-total")).to_have_text("$3.00")
    expect(page.locator("#invoice-due")).to_have_text(f"Due {timezone.localtime(invoice.due_at):%-d %B %Y}")
    expect(page.locator(".transfer-instructions")).to_contain_text("To pay by bank transfer")
    expect(page.locator(".payment-instructions")).to_have_text(settings.INVOICE_PAYMENT_INSTRUCTIONS)
    # Never paid by card: no "Pay now", no card form.
    expect(page.get_by_role("link", name="Pay now")).to_have_count(0)
    expect(page.locator("#card-element")).to_have_count(0)
    expect(page.locator('[name="attempt"]')).to_have_count(0)
    assert Invoice.objects.get(pk=invoice.pk).status == "open"
