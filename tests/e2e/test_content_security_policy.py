"""The Content-Security-Policy in a real browser (Chromium): every main page works under it with nothing blocked.

A staff Owner (in two teams) signs in and goes through the dashboard's tabs, saves a card with localstripe's
Stripe.js (its script, and its calls to localstripe, are allowed by the policy), switches team, opens the API
docs (Swagger UI), sets up two-factor authentication (the QR code is a data: image) and uses the admin;
a driver walks Connect (brand, sign-in, consent). Any `securitypolicyviolation` in any frame, or Chromium's
console report of one, fails the test, and so does a page of ours served without the header.
"""

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from billing.models import Invoice
from tests.billing.test_payments import pay_as_you_go_invoice, store_card
from tests.e2e.test_card_in_a_browser import EMAIL, reauthenticate, sign_in, type_card
from tests.e2e.test_connect_in_a_browser import app_with_local_callback  # noqa: F401 (a fixture)
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory, UserFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stripe_settings")]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"} `
    + `(${event.sourceFile || location.href}:${event.lineNumber}) ${event.sample || ""}`);
});
"""


class PolicyWatch:
    """What the browser reported: CSP violations, and pages of ours that came without the header."""

    def __init__(self, page: Page, origin: str):
        self.violations: list[str] = []
        self.without_header: list[str] = []
        page.context.expose_function("reportCspViolation", lambda text: self.violations.append(text))
        page.context.add_init_script(REPORT_VIOLATIONS)  # every document and frame, before its own scripts
        page.on("console", self._console)
        page.on("response", lambda response: self._response(response, origin))

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(f"console: {message.text}")

    def _response(self, response, origin: str) -> None:
        ours = response.request.resource_type == "document" and response.url.startswith(origin)
        if ours and response.status < 300 and not response.header_value("content-security-policy"):
            self.without_header.append(response.url)

    def assert_clean(self, where: str) -> None:
        assert not self.violations, f"CSP violations on {where}:\n" + "\n".join(self.violations)
        assert not self.without_header, f"no Content-Security-Policy on {self.without_header}"


@pytest.fixture
def watch(page: Page, live_server) -> PolicyWatch:
    return PolicyWatch(page, live_server.url)


@pytest.fixture
def owner(live_server):
    """A staff Owner of two teams (so the team switcher shows), with an application and an open invoice."""
    user = UserFactory(email=EMAIL, is_staff=True, is_superuser=True)
    membership = MembershipFactory(role=Role.OWNER, user=user, team=TeamFactory(name="Acme Mobility"))
    MembershipFactory(role=Role.VIEWER, user=user, team=TeamFactory(name="Rival Motors"))
    ApplicationFactory(team=membership.team, name="Fleet Tracker")
    store_card(membership, "pm_card_visa")
    pay_as_you_go_invoice(membership, 4)
    return membership


def test_the_main_pages_work_under_the_policy_with_nothing_blocked(page: Page, watch, owner):
    invoice = Invoice.objects.get(team=owner.team)

    sign_in(page)  # the allauth login page
    watch.assert_clean("signing in")

    application = owner.team.applications.get(name="Fleet Tracker")
    for path, title in [
        ("/overview/", "Overview"),
        ("/applications/", "Applications"),
        (f"/applications/{application.client_id}/", application.name),
        ("/vehicles/", "Vehicles"),
        ("/billing/", "Billing"),
        (f"/billing/invoices/{invoice.public_id}/", f"Invoice {invoice.number}"),
        ("/garage/", "Garage program"),
        ("/support/", "Support"),
        ("/team/", "Team"),
    ]:
        response = page.goto(path)
        assert response.status == 200, path
        expect(page).to_have_title(re.compile(rf"^{re.escape(title)} · "))
        watch.assert_clean(path)

    # The card form: localstripe's Stripe.js mounts its card element and confirms the SetupIntent with localstripe.
    page.goto("/billing/card/")
    reauthenticate(page)
    expect(page.locator("#card-element input:visible")).to_have_count(4)
    type_card(page, "5555555555554444")
    page.get_by_role("button", name=re.compile("Save card")).click()
    expect(page.locator("main")).to_contain_text("•••• 4444 is now your card.")
    watch.assert_clean("the card form")

    # The team switcher submits on change (its handler is a file now, not an onchange attribute).
    page.locator("#team-switch").select_option(label="Rival Motors (Viewer)")
    expect(page.locator("#team-switch option:checked")).to_have_text("Rival Motors (Viewer)")
    watch.assert_clean("the team switcher")

    # The API docs: Swagger UI renders the schema and expands an operation.
    page.goto("/docs/api/")
    operation = page.locator(".opblock").first
    expect(operation).to_be_visible()
    operation.locator(".opblock-summary").click()
    expect(operation.locator(".opblock-body")).to_be_visible()
    watch.assert_clean("/docs/api/")

    # Two-factor authentication: the QR code (a data: image), activation, then the recovery codes page.
    page.goto("/accounts/2fa/totp/activate/")
    qr_code = page.locator('img[src^="data:"]')
    expect(qr_code).to_be_visible()
    assert qr_code.evaluate("image => image.naturalWidth") > 0  # drawn, not blocked
    secret = page.locator("#authenticator_secret").input_value()
    page.locator('input[name="code"]').fill(totp_code(secret))
    page.locator('form:has(input[name="code"]) [type="submit"]').click()
    page.wait_for_url(lambda url: "/totp/activate/" not in url)
    page.goto("/accounts/2fa/recovery-codes/")
    expect(page.locator("#recovery_codes")).to_be_visible()
    watch.assert_clean("two-factor authentication")

    # The admin (staff with two-factor authentication): index, a changelist with its filters, a change form.
    for path in ["/admin/", "/admin/accounts/team/", f"/admin/accounts/team/{owner.team_id}/change/"]:
        response = page.goto(path)
        assert response.status == 200, path
        expect(page.locator("#content")).to_be_visible()
        watch.assert_clean(path)


def test_connect_works_under_the_policy_with_nothing_blocked(page: Page, watch, app_with_local_callback):  # noqa: F811
    application, callback = app_with_local_callback
    query = {"response_type": "code", "client_id": str(application.client_id), "scope": "read_odometer", "mode": "test"}
    page.goto(f"/oauth/authorize?{urlencode(query)}")
    expect(page.get_by_role("button", name="Tesla")).to_have_css("cursor", "pointer")  # Connect's own stylesheet
    page.get_by_role("button", name="Tesla").click()
    page.locator('input[name="email"]').fill("1-vehicle@example.com")
    page.locator('input[name="password"]').fill("anything")
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(re.escape(callback)))
    watch.assert_clean("Connect")
