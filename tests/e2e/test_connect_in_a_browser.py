"""A driver walks Connect in a real browser (Chromium): brand, sign in, consent, back to the app with a code.

Browsers send Origin/Referer headers that a plain HTTP client does not; this catches what only
they trip over (CSRF origin checks, referrer policies, redirects to the app).
"""

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from accounts import applications
from accounts.models import Membership
from accounts.roles import Role
from tests.factories import MembershipFactory
from vehicles.models import AuthorizationCode

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def app_with_local_callback(live_server):
    owner = MembershipFactory(role=Role.OWNER)
    application, _ = applications.create_application(actor=owner, name="Charge Buddy")
    callback = f"{live_server.url}/callback"  # http on loopback is allowed for development
    applications.add_redirect_uri(actor=Membership.objects.get(pk=owner.pk), application=application, uri=callback)
    return application, callback


def test_a_driver_connects_two_test_vehicles_in_the_browser(page, live_server, app_with_local_callback):
    application, callback = app_with_local_callback
    query = {
        "response_type": "code",
        "client_id": str(application.client_id),
        "scope": "read_vehicle_info required:read_odometer",
        "mode": "test",
        "state": "browser-1",
    }
    page.goto(f"{live_server.url}/oauth/authorize?{urlencode(query)}")
    expect(page.locator("main")).to_contain_text("Charge Buddy")

    page.get_by_role("button", name="Tesla").click()
    page.locator('input[name="email"]').fill("2-vehicles@example.com")
    page.locator('input[name="password"]').fill("anything")
    page.locator('form:has(input[name="password"]) [type="submit"]').click()

    expect(page.locator("main")).to_contain_text("Read the odometer")
    vehicles = page.locator('input[name="vehicle"]')
    expect(vehicles).to_have_count(2)
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(re.compile(re.escape(callback)))
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == ["browser-1"]
    assert AuthorizationCode.objects.get().vehicles.count() == 2


def test_deny_sends_the_driver_back_with_access_denied(page, live_server, app_with_local_callback):
    application, callback = app_with_local_callback
    query = {"response_type": "code", "client_id": str(application.client_id), "mode": "test", "make": "FORD"}
    page.goto(f"{live_server.url}/oauth/authorize?{urlencode(query)}")
    page.locator('input[name="email"]').fill("driver@example.com")
    page.locator('input[name="password"]').fill("anything")
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(re.compile(re.escape(callback)))
    assert parse_qs(urlsplit(page.url).query)["error"] == ["access_denied"]
