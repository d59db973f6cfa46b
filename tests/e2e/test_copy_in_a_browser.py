"""Copy buttons in a real browser (Chromium): the Vehicles tab shows each connected vehicle's id, the one the API's
paths take, and one click puts it, or an application's client id, on the clipboard."""

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from tests.e2e.browser import sign_in
from tests.factories import ApplicationFactory, MembershipFactory, UserFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_vehicle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "copier@example.com"


@pytest.fixture
def fleet(live_server):
    membership = MembershipFactory(role=Role.OWNER, user=UserFactory(email=EMAIL))
    application = ApplicationFactory(team=membership.team, name="Fleet Tracker")
    driver = make_owner()
    vehicle = make_vehicle(driver)
    make_grant(application, driver, [vehicle])
    return application, vehicle


def clipboard(page: Page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def test_copying_a_vehicle_id_and_a_client_id(page: Page, fleet, live_server):
    application, vehicle = fleet
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, EMAIL)
    page.goto("/vehicles/")
    row = page.locator("tr", has_text=str(vehicle.public_id))
    expect(row).to_be_visible()  # the id itself, not only in the CSV
    row.get_by_role("button", name="Copy vehicle id").click()
    expect(row.get_by_role("button", name="Copied vehicle id")).to_be_visible()
    assert clipboard(page) == str(vehicle.public_id)

    page.goto(f"/applications/{application.client_id}/")
    page.get_by_role("button", name="Copy client id").click()
    assert clipboard(page) == str(application.client_id)


def test_without_javascript_no_copy_button_shows(browser, fleet, live_server):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, EMAIL)
    page.goto("/vehicles/")
    expect(page.get_by_text(str(fleet[1].public_id))).to_be_visible()
    expect(page.get_by_role("button", name="Copy vehicle id")).to_have_count(0)  # hidden: it would do nothing
    context.close()
