"""A new developer, in a real browser: sign up, verify the email, create an application, add a redirect URI.

Selectors are field names, labels and roles+names (never CSS classes): the allauth pages are restyled
independently of this test.
"""

import re
import time
from urllib.parse import urlparse

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

EMAIL = "first.dev@example.com"
PASSWORD = "torque-wrench-Falcon-73"
APP_NAME = "Fleet Tracker E2E"
REDIRECT_URI = "http://localhost:3000/callback"
TABS = ["Overview", "Applications", "Vehicles", "Billing", "Team", "Garage"]


def _wait_for_email(to: str, send_queued_emails, timeout: float = 5.0):
    """The live server runs in a thread of this process: the emails it queued are sent here, to the locmem outbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        send_queued_emails()
        messages = [m for m in mail.outbox if to in m.to]
        if messages:
            return messages[-1]
        time.sleep(0.05)
    raise AssertionError(
        f"no email to {to} in django.core.mail.outbox after {timeout}s "
        f"(backend: {mail.get_connection().__class__.__module__}; outbox holds {len(mail.outbox)} message(s))"
    )


def _verification_link(message, live_server_url: str) -> str:
    body = message.body + "".join(str(content) for content, _mimetype in getattr(message, "alternatives", []))
    links = [url for url in re.findall(r"https?://[^\s\"'<>]+", body) if "/accounts/confirm-email/" in url]
    assert links, f"no /accounts/confirm-email/ link in the verification email:\n{message.body}"
    link = links[0]
    # The link is on SITE_ROOT, the site's public address (the test sets it to the live server's).
    assert link.startswith(live_server_url), f"verification link {link} does not point at {live_server_url}"
    return link


def _path(page: Page) -> str:
    return urlparse(page.url).path


def test_a_new_developer_signs_up_verifies_and_registers_an_application(
    page: Page, live_server, tmp_path, send_queued_emails, settings
):
    settings.SITE_ROOT = live_server.url  # emails link to the site's public address
    started = time.monotonic()

    # Sign up.
    page.goto("/accounts/signup/")
    page.locator('input[name="email"]').fill(EMAIL)
    page.locator('input[name="password1"]').fill(PASSWORD)
    page.locator('input[name="password2"]').fill(PASSWORD)
    page.locator('form:has(input[name="password2"]) [type="submit"]').click()

    # "Check your email": allauth's verification-sent page.
    expect(page).to_have_url(re.compile(r"/accounts/confirm-email/$"))
    expect(page.locator("body")).to_contain_text(re.compile(r"(verify|check|sent).{0,40}email", re.I))

    # Read the verification email, follow the link, confirm.
    message = _wait_for_email(EMAIL, send_queued_emails)
    page.goto(_verification_link(message, live_server.url))
    page.get_by_role("button", name=re.compile(r"^\s*confirm\s*$", re.I)).click()
    page.wait_for_url(lambda url: "/accounts/confirm-email/" not in url)

    # ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION logs us straight in; log in by hand if that ever changes.
    if _path(page).startswith("/accounts/login/"):
        page.locator('input[name="login"]').fill(EMAIL)
        page.locator('input[name="password"]').fill(PASSWORD)
        page.locator('form:has(input[name="password"]) [type="submit"]').click()

    # The dashboard Overview, with every tab (a new account owns its personal team).
    expect(page).to_have_url(re.compile(r"/overview/$"))
    tabs = page.get_by_role("navigation", name="Dashboard")
    for tab in TABS:
        expect(tabs.get_by_role("link", name=tab, exact=True)).to_be_visible()
    expect(tabs.get_by_role("link", name="Overview", exact=True)).to_have_attribute("aria-current", "page")

    # Applications: register one.
    tabs.get_by_role("link", name="Applications", exact=True).click()
    expect(page).to_have_url(re.compile(r"/applications/$"))
    page.get_by_label("Application name").fill(APP_NAME)
    page.get_by_role("button", name="Create application").click()

    # The credentials page shows the client id and the secret, once.
    client_id = page.locator("#client-id")
    client_secret = page.locator("#client-secret")
    expect(client_id).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
    expect(client_secret).to_have_text(re.compile(r"\S{20,}"))
    client_id_text = client_id.inner_text().strip()
    secret_text = client_secret.inner_text().strip()
    page.screenshot(path=str(tmp_path / "credentials.png"), full_page=True)

    page.get_by_role("link", name=re.compile(r"continue", re.I)).click()

    # The detail page: the name and client id, never the secret again.
    expect(page).to_have_url(re.compile(rf"/applications/{client_id_text}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(APP_NAME)
    expect(page.locator("main")).to_contain_text(client_id_text)
    assert secret_text not in page.content(), "the client secret is shown again on the application's detail page"
    expect(page.locator("#client-secret")).to_have_count(0)

    # Add a redirect URI: the first one becomes the default.
    page.get_by_label("Redirect URI").fill(REDIRECT_URI)
    page.get_by_role("button", name="Add redirect URI").click()
    row = page.get_by_role("row").filter(has_text=REDIRECT_URI)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("default")
    expect(row.get_by_role("button", name="Make default")).to_have_count(0)
    assert secret_text not in page.content()

    page.screenshot(path=str(tmp_path / "application-detail.png"), full_page=True)
    assert (tmp_path / "application-detail.png").stat().st_size > 0
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"the journey took {elapsed:.1f}s; keep the browser test under 30s"
