"""In Chromium at 1280x720: the governance and reviewer-work pages render with navigation (screenshots)."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from policies.services import threshold_change_propose
from reviews.models import Decision, QualityReview, RelabelItem
from tests.factories import CaseFactory, SignalFactory, SourceFactory, active_version, threat_class

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SMALL = {"width": 1280, "height": 720}


def test_threshold_change_page_approve_beside_blast_radius(page, live_server, sign_in, screenshot, make_user):
    page.set_viewport_size(SMALL)
    proposer = make_user("padmin2", "policy_admin")
    make_user("padmin", "policy_admin", password="pw-padmin")
    source = SourceFactory(slug="spam-clf", kind="classifier", name="Spam classifier")
    for score in (0.3, 0.6, 0.92, 0.97):
        SignalFactory(source=source, threat_class=threat_class("spam"), score=score)
    change = threshold_change_propose(
        source_slug="spam-clf",
        threat_class_slug="spam",
        auto_action_at=0.9,
        review_at=0.5,
        reason="v7 is calibrated",
        actor=proposer,
    )
    sign_in(page, "padmin", "pw-padmin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Thresholds").click()
    screenshot(page, "thresholds")
    page.get_by_role("link", name=f"Change {change.pk}").first.click()
    expect(page.locator("#blast-radius")).to_contain_text("Actioned automatically")
    screenshot(page, "threshold-change")
    page.get_by_role("button", name="Approve and apply").click()
    expect(page.locator("#change-status")).to_have_text("Applied")


def test_reviewer_work_pages(page, live_server, sign_in, screenshot, moderator, make_user):
    page.set_viewport_size(SMALL)
    other = make_user("other", "moderator")
    at = timezone.now()
    case = CaseFactory(kind="spam", status="decided", decided_at=at, first_action_at=at)
    version = active_version("spam")
    decision = Decision.objects.create(
        case=case, reviewer=other.reviewer, action="remove", rule=version.rules[0]["code"],
        policy_version=version, created_at=at, qa_sampled=True,
    )  # fmt: skip
    review = QualityReview.objects.create(decision=decision, created_at=at)
    sign_in(page, "mod", "pw-mod")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="QA").click()
    screenshot(page, "qa-list")
    page.get_by_role("link", name=f"Review case {case.pk}").click()
    screenshot(page, "qa-review")
    page.get_by_label("Action").select_option("remove")
    page.get_by_role("button", name="Record").click()
    expect(page.locator(".messages")).to_contain_text("recorded")
    review.refresh_from_db()
    assert review.status == "done"
    RelabelItem.objects.create(policy_version=version, decision=decision, created_at=at)
    page.goto(f"{live_server.url}/relabel/")
    screenshot(page, "relabel-list")
    page.get_by_role("link", name=f"Relabel case {case.pk}").click()
    expect(page.get_by_label("Action")).to_be_visible()
    screenshot(page, "relabel-review")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My decisions").click()
    expect(page.get_by_role("heading", name="My recent decisions")).to_be_visible()
    screenshot(page, "my-decisions")
