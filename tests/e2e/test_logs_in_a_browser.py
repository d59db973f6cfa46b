"""The Logs tab in a real browser (Chromium): an Owner whose application called the API over HTTP finds the
requests, narrows them to the failures, opens one, and follows it back to the vehicle's other requests."""

import pytest
import requests
from playwright.sync_api import Page, expect

from accounts.roles import Role
from tests.e2e.browser import screenshot, sign_in
from tests.factories import ApplicationFactory, MembershipFactory, UserFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "logs-owner@example.com"


@pytest.fixture
def calls(live_server):
    """The Owner's team made a billable read, a free call and a refused one, over HTTP."""
    membership = MembershipFactory(role=Role.OWNER, user=UserFactory(email=EMAIL))
    application = ApplicationFactory(team=membership.team, name="Fleet Tracker")
    owner = make_owner()
    vehicle, stranger = make_vehicle(owner), make_vehicle(make_owner())
    headers = {"Authorization": f"Bearer {make_token(make_grant(application, owner, [vehicle]))}"}
    answers = {
        name: requests.get(live_server.url + path, headers=headers, timeout=30)
        for name, path in [
            ("odometer", f"/v2.0/vehicles/{vehicle.public_id}/odometer"),
            ("list", "/v2.0/vehicles"),
            ("refused", f"/v2.0/vehicles/{stranger.public_id}/location"),
        ]
    }
    assert [a.status_code for a in answers.values()] == [200, 200, 403]
    return {name: answer.headers["SC-Request-Id"] for name, answer in answers.items()} | {"vehicle": vehicle}


def test_an_owner_finds_filters_and_opens_a_request(page: Page, calls):
    sign_in(page, EMAIL)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Logs").click()
    expect(page.get_by_role("heading", name="Logs", level=1)).to_be_visible()
    table = page.locator("#request-log tbody")
    expect(table.locator("tr")).to_have_count(3)
    expect(table.locator("tr").first.get_by_role("link", name=f"Request {calls['refused']}")).to_be_visible()
    expect(page.get_by_role("link", name="Logs")).to_have_attribute("aria-current", "page")
    screenshot(page, "logs-list")

    page.get_by_label("Status").select_option("4")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tr")).to_have_count(1)
    expect(table).to_contain_text("PERMISSION")
    export = page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert export.startswith("/logs/export.csv?") and "status=4" in export  # the filters travel with the export

    page.get_by_role("link", name=f"Request {calls['refused']}").click()
    expect(page.locator("#request-id")).to_have_text(calls["refused"])
    expect(page.locator("main")).to_contain_text("failed requests are never billed")
    expect(page.locator("#error-description")).to_contain_text("REAUTHENTICATE")  # what to do about it
    screenshot(page, "logs-detail")

    page.goto("/logs/")
    page.get_by_label("SC-Request-Id").fill(calls["odometer"])
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tr")).to_have_count(1)
    expect(table).to_contain_text("$0.00")  # billable, at Free's price
    table.get_by_role("link", name=f"Requests of vehicle {calls['vehicle'].public_id}").click()
    expect(table.locator("tr")).to_have_count(1)
    expect(page.get_by_label("Vehicle ID")).to_have_value(str(calls["vehicle"].public_id))
