"""A policy admin finds the broken classifier from the dashboard and decides on its held signals, in a browser."""

import pytest
from playwright.sync_api import expect

from casework.management.commands.simulate import scenario_run
from casework.models import Signal
from policies.models import SignalSource

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_dashboard_to_source_page_quarantine_then_confirm(page, live_server, sign_in, screenshot, policy_admin):
    page.set_viewport_size({"width": 1280, "height": 720})  # the screenshots' size
    scenario_run("broken-classifier", count=60, seed=1)
    sign_in(page, "padmin", "pw-padmin")

    page.goto(f"{live_server.url}/dashboard/")
    row = page.locator("#source-status tr", has_text="Spam classifier")
    expect(row).to_contain_text("Suspect")
    expect(row).to_contain_text("holding 40")
    screenshot(page, "dashboard-suspect-source")
    row.get_by_role("link", name="Spam classifier").click()

    page.wait_for_url(f"{live_server.url}/sources/spam-classifier/")
    expect(page.locator("#source-status")).to_have_text("Suspect")
    expect(page.locator("#source-state")).to_contain_text("This source holds 40 signals")
    screenshot(page, "source-suspect")

    page.get_by_role("button", name="Quarantine the source").click()
    expect(page.locator("#source-status")).to_have_text("Quarantined")
    expect(page.locator("#source-held")).to_have_text("40")
    assert SignalSource.objects.get(slug="spam-classifier").status == "quarantined"

    page.get_by_role("button", name="Confirm the spike is real (release 40 held)").click()
    expect(page.locator("#source-status")).to_have_text("Healthy")
    expect(page.locator("#source-held")).to_have_text("0")
    expect(page.locator(".message")).to_contain_text("40 held signals entered the queue")
    assert not Signal.objects.filter(disposition="held").exists()
