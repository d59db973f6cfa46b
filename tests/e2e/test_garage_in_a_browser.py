"""The Garage program in a real browser (Chromium): an Owner applies in the Garage tab, a staff member signs in
with two-factor authentication and approves the application in the admin, and the Owner's Billing tab then
shows the grant."""

import re

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from playwright.sync_api import Browser, Page, expect

from accounts.roles import Role
from garage.models import GarageApplication
from tests.e2e.browser import screenshot
from tests.e2e.test_card_in_a_browser import EMAIL, sign_in
from tests.factories import PASSWORD, MembershipFactory, UserFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STAFF_EMAIL = "reviewer@ignition.example"


@pytest.fixture
def owner(live_server):
    return MembershipFactory(role=Role.OWNER, user=UserFactory(email=EMAIL))


@pytest.fixture
def staff_secret(live_server) -> str:
    secret = generate_totp_secret()
    TOTP.activate(UserFactory(email=STAFF_EMAIL, is_staff=True, is_superuser=True), secret)
    return secret


def apply(page: Page) -> None:
    page.goto("/garage/")
    for name, value in {
        "company_name": "Torque Labs",
        "website": "https://torque.example",
        "founded_on": "2025-06-01",
        "funding_raised_usd": "750000",
        "team_size": "6",
        "app_description": "A fleet maintenance planner.",
        "use_case": "Odometer and location to schedule services.",
        "expected_vehicles": "400",
        "contact_name": "Ada Torque",
        "contact_email": "ada@torque.example",
    }.items():
        page.locator(f'[name="{name}"]').fill(value)
    page.locator('[name="stage"]').select_option("seed")
    page.get_by_role("button", name="Submit application").click()
    expect(page.locator("main")).to_contain_text("Your application is submitted")


def approve_as_staff(browser: Browser, base_url: str, secret: str) -> None:
    staff = browser.new_page(base_url=base_url)
    staff.goto("/accounts/login/")
    staff.locator('input[name="login"]').fill(STAFF_EMAIL)
    staff.locator('input[name="password"]').fill(PASSWORD)
    staff.locator('form:has(input[name="password"]) [type="submit"]').click()
    staff.wait_for_url(re.compile(r"/accounts/2fa/authenticate/"))
    staff.locator('input[name="code"]').fill(totp_code(secret))
    staff.get_by_role("button", name="Sign In").click()
    staff.wait_for_url(lambda url: "/accounts/" not in url)

    staff.goto("/admin/garage/garageapplication/")
    staff.get_by_role("link", name=re.compile("Torque Labs")).first.wait_for()
    staff.get_by_role("link", name=re.compile("Torque Labs")).first.click()
    note = staff.locator("#id_note")  # the note box is usable at 1280 px: wide, below the application
    assert note.bounding_box()["width"] >= 400, note.bounding_box()
    screenshot(staff, "garage-application-admin")
    staff.goto("/admin/garage/garageapplication/")
    staff.locator('input[name="_selected_action"]').first.check()
    staff.locator('select[name="action"]').select_option("approve")
    staff.locator('button[name="index"], input[name="index"]').first.click()  # the changelist's "Go"
    staff.locator('[name="request_allowance"]').fill("30000")
    staff.get_by_role("button", name=re.compile("Approve")).click()
    expect(staff.locator(".messagelist")).to_contain_text("1 application")
    staff.close()


def test_an_owner_applies_staff_approve_and_the_billing_tab_shows_the_grant(
    page: Page, browser: Browser, live_server, owner, staff_secret
):
    sign_in(page)
    apply(page)

    approve_as_staff(browser, live_server.url, staff_secret)

    assert GarageApplication.objects.get().status == "accepted"
    page.goto("/billing/")
    grant_card = page.locator(".grant-card")
    expect(grant_card).to_contain_text("Garage grant until")
    expect(grant_card).to_contain_text("30,000 billable requests a period across 20 vehicles, free of charge")
    page.goto("/garage/")
    expect(page.locator("main")).to_contain_text("You're in the Garage program")
