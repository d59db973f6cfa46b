"""Steps the browser tests share (helpers only: no tests here)."""

import os

from playwright.sync_api import Page

from tests.factories import PASSWORD


def sign_in(page: Page, email: str) -> None:
    """Sign in through the login form, as a person would, and wait to leave it."""
    page.goto("/accounts/login/")
    page.locator('input[name="login"]').fill(email)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form:has(input[name="password"]) [type="submit"]').click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def screenshot(page: Page, name: str) -> None:
    """With SCREENSHOT_DIR set, keep the whole page as `<name>.png` there (to look at a page a test reached)."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)
