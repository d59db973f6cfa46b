"""The Connect tester in a real browser (Chromium): a developer builds a Connect URL on the application's page,
walks Connect in test mode, lands on Ignition's callback page, and the code it shows exchanges for tokens."""

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from accounts import applications
from accounts.models import Membership
from accounts.roles import Role
from tests.e2e.browser import screenshot, sign_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "tester@example.com"


@pytest.fixture
def application(live_server, settings):
    settings.SITE_ROOT = live_server.url  # the callback page is on the site's own origin
    owner = MembershipFactory(role=Role.OWNER, user=UserFactory(email=EMAIL))
    application, credentials = applications.create_application(
        actor=Membership.objects.get(pk=owner.pk), name="Charge Buddy"
    )
    return application, credentials.client_secret


def test_from_the_tester_through_connect_to_a_code_that_exchanges(page: Page, application, live_server):
    app, secret = application
    sign_in(page, EMAIL)
    page.goto(f"/applications/{app.client_id}/")
    page.get_by_role("link", name="Connect tester").click()
    page.get_by_role("button", name="Register Ignition's callback").click()  # not registered yet: one click
    expect(page.get_by_role("heading", name="Connect tester")).to_be_visible()

    page.get_by_label("read_odometer: Read the odometer").check()
    page.get_by_label("Brand").select_option("TESLA")
    page.get_by_role("button", name="Build the Connect URL").click()
    expect(page.locator("#connect-url")).to_contain_text("mode=test")
    screenshot(page, "connect-tester")
    page.get_by_role("link", name="Open Connect").click()

    page.locator('input[name="email"]').fill("2-vehicles@example.com")
    page.locator('input[name="password"]').fill("anything")
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    expect(page.locator("main")).to_contain_text("Read the odometer")
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(re.compile(r"/connect/callback"))
    expect(page.locator("#code-status")).to_contain_text("Ready to exchange")
    expect(page.locator("#exchange")).to_contain_text(f"-u {app.client_id}:YOUR_CLIENT_SECRET")
    screenshot(page, "connect-callback")
    code = page.locator("#code").inner_text()
    exchanged = requests.post(
        f"{live_server.url}/oauth/token",
        auth=(str(app.client_id), secret),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": f"{live_server.url}/connect/callback"},
        timeout=30,
    )
    assert exchanged.status_code == 200, exchanged.text
    assert set(exchanged.json()) >= {"access_token", "refresh_token"}
    page.reload()
    expect(page.locator("#code-status")).to_contain_text("Already exchanged")
