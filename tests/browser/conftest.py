"""Playwright against pytest-django's live server, driving Debian's Chromium."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.twofactor import code_for, code_for_secret

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# to seed and check data are still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture
def browser():
    # One Playwright per test, not per session: its sync API runs an asyncio loop in
    # this thread, and while that loop lives Django's connection handler (a
    # context-local) hands out fresh connection objects that lack the serialized
    # test data. Every later transactional test would then start with empty tables.

    # Two shared cores: give assertions room under load instead of failing on time.
    expect.set_options(timeout=15_000)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """``screenshot(page, "case")`` saves artifacts/screenshots/case.png (the CI artifact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def sign_in(live_server):
    """Password sign-in through the pages; a user who must use a second factor enrols or enters a code."""

    def go(page, username, password):
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: not url.endswith("/login/"))
        if page.url.endswith("/login/enrol/"):
            page.get_by_label("Code").fill(code_for_secret(page.get_by_test_id("totp-secret").inner_text()))
            page.get_by_role("button", name="Confirm").click()
            page.get_by_role("link", name="Continue").click()
        elif page.url.endswith("/login/second-factor/"):
            page.get_by_label("Code").fill(code_for(username))
            page.get_by_role("button", name="Verify").click()
        page.wait_for_url(lambda url: "/login/" not in url)

    return go
