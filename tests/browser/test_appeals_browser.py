"""An appeals reviewer claims and overturns an appeal in the browser, by keyboard."""

import re

import pytest
from playwright.sync_api import expect

from appeals.models import Appeal
from appeals.services import appeal_file
from reviews.models import Decision, Enforcement
from tests.appeals.conftest import decide_for_real

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_appeals_reviewer_claims_and_overturns_an_appeal(page, live_server, sign_in, screenshot, make_user, platform):
    decider = make_user("decider", "moderator")
    make_user("appeals-1", "appeals", password="appeals-pass-1")
    decision = decide_for_real(decider)
    appeal = appeal_file(
        decision_id=decision.pk, appellant="u-owner", statement="Those links go to my own shop.", actor=platform
    )

    sign_in(page, "appeals-1", "appeals-pass-1")
    page.get_by_role("link", name="Appeals").click()
    expect(page.get_by_role("heading", name="Appeals", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=f"Appeal {appeal.pk}")).to_be_visible()
    screenshot(page, "appeals-queue")

    page.keyboard.press("c")  # claim next
    page.wait_for_url(f"{live_server.url}/appeals/{appeal.pk}/")
    expect(page.get_by_text("Those links go to my own shop.")).to_be_visible()
    expect(page.get_by_role("heading", name="Statement of reasons sent to the user")).to_be_visible()
    evidence = page.locator(".evidence").first
    expect(evidence).to_have_attribute("aria-pressed", "false")
    evidence.click()
    expect(evidence).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("o")  # overturn: the radio is checked and focus moves to the reasons
    expect(page.get_by_role("radio", name=re.compile("Overturned"))).to_be_checked()
    expect(page.locator("#id_rationale")).to_be_focused()
    page.keyboard.type("The links point to the user's own shop; not spam.")
    screenshot(page, "appeal")
    page.keyboard.press("Control+Enter")

    page.wait_for_url(f"{live_server.url}/appeals/")
    expect(page.get_by_text(f"Appeal {appeal.pk} resolved: overturned.")).to_be_visible()
    appeal.refresh_from_db()
    assert (appeal.status, appeal.outcome, appeal.resolved_by.user.username) == ("resolved", "overturned", "appeals-1")
    assert Decision.objects.get(pk=decision.pk).overturned is True
    assert list(Enforcement.objects.filter(decision=decision).values_list("kind", flat=True).order_by("id")) == [
        "enforce",
        "reverse",
    ]
    assert Appeal.objects.filter(status="resolved").count() == 1
