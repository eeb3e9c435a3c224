"""Playwright against pytest-django's live server, driving Debian's Chromium."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# to seed and check data are still synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

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
    def go(page, username, password):
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/")

    return go


DEFAULTS = [
    ("policies.migrations.0002_default_policies", "forwards"),
    ("casework.migrations.0003_caseevent_append_only_and_sources", "default_sources"),
    ("reviews.migrations.0002_default_queues", "forwards"),
    ("appeals.migrations.0003_default_message_templates", "forwards"),
]


@pytest.fixture(autouse=True)
def shipped_defaults(transactional_db):
    """The shipped classes, policies, sources, queues and groups, present for every live-server test.

    A transactional test flushes the tables when it ends; when serialized rollback
    cannot restore them (a non-transactional test ran first in the session), seed
    them again from the data migrations themselves.
    """
    from importlib import import_module

    from django.apps import apps

    from docket import roles
    from policies.models import ThreatClass

    if not ThreatClass.objects.exists():
        for module, function in DEFAULTS:
            getattr(import_module(module), function)(apps, None)
    roles.ensure_groups()
