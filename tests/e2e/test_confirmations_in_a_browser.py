"""Destructive actions ask first, in a real browser (Chromium): Cancel sends nothing, OK goes through."""

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from tests.e2e.browser import sign_in
from tests.factories import ApplicationFactory, MembershipFactory, UserFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_vehicle
from vehicles.models import Connection

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "careful@example.com"


@pytest.fixture
def connection(live_server):
    membership = MembershipFactory(role=Role.OWNER, user=UserFactory(email=EMAIL))
    application = ApplicationFactory(team=membership.team, name="Fleet Tracker")
    driver = make_owner()
    make_grant(application, driver, [make_vehicle(driver)])
    return Connection.objects.get(application=application)


def test_disconnecting_a_vehicle_asks_first(page: Page, connection):
    sign_in(page, EMAIL)
    page.goto("/vehicles/")
    asked = []

    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("button", name="Disconnect")).to_be_visible()
    assert "Fleet Tracker" in asked[0] and "Connect again" in asked[0]
    connection.refresh_from_db()
    assert connection.revoked_at is None  # Cancel: nothing sent

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator("main")).to_contain_text("Disconnected")
    connection.refresh_from_db()
    assert connection.revoked_at is not None
