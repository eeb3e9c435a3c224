"""In Chromium at 1280x720: a senior filters a queue, sorts it and pages through it; the filters hold (screenshot)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reviews.selectors import QUEUE_PAGE_SIZE
from tests.factories import CaseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SMALL = {"width": 1280, "height": 720}


def test_senior_filters_sorts_and_pages_a_queue(page, live_server, sign_in, screenshot, make_user):
    page.set_viewport_size(SMALL)
    make_user("lead", "senior,moderator", password="pw-lead", queues=["spam"])
    late = timezone.now() - timedelta(days=4)  # spam's SLA is 3 days: these are a day past it
    for i in range(QUEUE_PAGE_SIZE + 5):
        CaseFactory(kind="spam", priority=float(i), first_signal_at=late + timedelta(minutes=i))
    for _ in range(3):
        CaseFactory(kind="spam")  # due in 3 days
    sign_in(page, "lead", "pw-lead")
    page.goto(f"{live_server.url}/queues/spam/")
    expect(page.locator("#queue-total")).to_contain_text(f"{QUEUE_PAGE_SIZE + 8} cases in this queue")

    page.get_by_label("SLA", exact=True).select_option(label="Past SLA")
    page.get_by_label("Sort", exact=True).select_option(label="Oldest first")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#queue-total")).to_have_text(
        f"{QUEUE_PAGE_SIZE + 5} cases match the filters · showing 1–{QUEUE_PAGE_SIZE}"
    )
    pager = page.get_by_role("navigation", name="Pages")
    pager.get_by_role("link", name="Next").click()
    expect(page.locator("#queue-total")).to_have_text(
        f"{QUEUE_PAGE_SIZE + 5} cases match the filters · showing {QUEUE_PAGE_SIZE + 1}–{QUEUE_PAGE_SIZE + 5}"
    )
    assert "sla=past" in page.url and "sort=oldest" in page.url and "page=2" in page.url
    # The form still shows the filters applied, and the bulk selection reaches the cases on this page.
    expect(page.get_by_label("SLA", exact=True)).to_have_value("past")
    expect(page.get_by_label("Sort", exact=True)).to_have_value("oldest")
    page.get_by_label("Select every case listed").check()
    expect(page.locator('input[name="cases"]:checked')).to_have_count(5)
    screenshot(page, "queue-filtered")

    # A bad value in the address is a message beside its field, not an error page.
    page.goto(f"{live_server.url}/queues/spam/?sla=later&sort=oldest")
    expect(page.locator("#sla-error")).to_have_text("Choose past SLA, due within 1 h or due later.")
    expect(page.get_by_label("Sort", exact=True)).to_have_value("oldest")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
