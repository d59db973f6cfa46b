"""Browser fixtures: Debian's Chromium driven by Playwright's sync API, against pytest-django's live_server.

Playwright cannot download its own browser here, so we launch /usr/bin/chromium. Without it
the browser tests are skipped, unless REQUIRE_BROWSER=1 (CI), which turns that into a failure.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # Without these Chromium phones home to Google at startup and gets refused.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_TIMEOUT_MS = 10_000


def _require_browser() -> bool:
    return os.environ.get("REQUIRE_BROWSER", "") == "1"


@pytest.fixture
def _browser_env(monkeypatch):
    """Playwright's sync API keeps an asyncio loop in the test thread; let Django's ORM run there anyway."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser(_browser_env, live_server):
    """A fresh Chromium per test.

    Function-scoped on purpose: Playwright's sync loop must not outlive the test, or every later
    test's ORM call in this process raises SynchronousOnlyOperation. Depending on live_server means
    the browser closes before the live server stops and the database is flushed.
    """
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        message = f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium`"
        if _require_browser():
            pytest.fail(f"{message} (REQUIRE_BROWSER=1 forbids skipping the browser tests)", pytrace=False)
        pytest.skip(f"{message}, or set REQUIRE_BROWSER=1 to make this a failure")

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:  # pragma: no cover - playwright is in requirements.txt
        if _require_browser():
            pytest.fail(f"playwright is not installed: {error}", pytrace=False)
        pytest.skip(f"playwright is not installed: {error}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, live_server):
    """A page in a fresh context (own cookies), with base_url pointing at the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
