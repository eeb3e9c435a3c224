"""The moderator's day in a real browser: sign in, claim, reveal, decide by keyboard, next case."""

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from casework.intake import signals_ingest
from casework.models import Case
from reviews.models import Assignment, Decision, Reviewer
from reviews.services import case_escalate, decision_make, queue_claim

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def ingest(platform, *, n, threat_class="spam", prefix="b"):
    """``n`` reported subjects, each with two reports from different reporters, through intake."""
    items = []
    for i in range(n):
        subject = {
            "kind": "account",
            "external_id": f"{prefix}-u-{i}",
            "reach": 1000 * (i + 1),
            "attributes": {"ip": [f"203.0.113.{i}"], "link_domain": ["spam.example"]},
        }
        for r in range(2):
            items.append(
                {
                    "source": "user-reports",
                    "external_id": f"{prefix}-{i}-{r}",
                    "threat_class": threat_class,
                    "subject": subject,
                    "reporter": f"{prefix}-reporter-{r}",
                    "reason": "selling followers" if r else "spam links in every comment",
                }
            )
    signals_ingest(items=items, actor=platform)
    cases = list(Case.objects.filter(subject__external_id__startswith=f"{prefix}-u-", status="open"))
    assert len(cases) == n
    return cases


def test_sign_in_claim_reveal_decide_by_keyboard_and_land_on_the_next_case(
    page, live_server, sign_in, screenshot, platform, moderator
):
    ingest(platform, n=3)
    sign_in(page, "mod", "pw-mod")
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    expect(page.locator("#capacity")).to_contain_text("0 of 3")
    screenshot(page, "queues")

    page.keyboard.press("n")  # claim next
    page.wait_for_url(re.compile(r"/cases/\d+/$"))
    first = Assignment.objects.get(reviewer__user=moderator, state="active").case_id
    assert page.url == f"{live_server.url}/cases/{first}/"

    media = page.locator(".evidence img").first
    expect(media).to_have_css("filter", "blur(12px) grayscale(1)")
    screenshot(page, "case")

    # Typing in a field never fires a shortcut.
    page.locator("#id_text").fill("")
    page.locator("#id_text").type("n v 4")
    expect(media).to_have_css("filter", "blur(12px) grayscale(1)")
    assert page.url == f"{live_server.url}/cases/{first}/"
    page.locator("#id_text").fill("")
    page.keyboard.press("Escape")  # leaves the field

    page.keyboard.press("v")  # reveal media
    expect(media).to_have_css("filter", "none")
    screenshot(page, "case-revealed")

    page.keyboard.press("4")  # remove: the 4th step of the spam ladder; focus moves to the rule
    expect(page.locator('input[name="action"][value="remove"]')).to_be_checked()
    expect(page.locator("#id_rule")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#id_rule")).to_have_value("SP-1")
    page.keyboard.press("Control+Enter")

    page.wait_for_url(lambda url: not url.endswith(f"/cases/{first}/"))
    second = Assignment.objects.get(reviewer__user=moderator, state="active").case_id
    assert page.url == f"{live_server.url}/cases/{second}/"
    expect(page.get_by_text(f"Case {first} decided: Remove.")).to_be_visible()
    decision = Decision.objects.get(case_id=first)
    assert (decision.action, decision.rule, decision.reviewer.user) == ("remove", "SP-1", moderator)


def test_click_reveals_one_item(page, sign_in, platform, moderator):
    ingest(platform, n=1)
    sign_in(page, "mod", "pw-mod")
    page.get_by_role("button", name=re.compile("in Spam$")).click()
    items = page.locator(".evidence img")
    expect(items).to_have_count(2)
    page.locator(".evidence").first.click()
    expect(items.nth(0)).to_have_css("filter", "none")
    expect(items.nth(1)).to_have_css("filter", "blur(12px) grayscale(1)")


def test_restricted_case_is_not_reachable_by_url(page, live_server, sign_in, platform, moderator):
    [case] = ingest(platform, n=1, threat_class="csam", prefix="r")
    sign_in(page, "mod", "pw-mod")
    response = page.goto(f"{live_server.url}/cases/{case.pk}/")
    assert response.status == 404
    expect(page.get_by_text("r-u-0")).to_have_count(0)


def test_capacity_refusal_is_shown_as_a_message(page, sign_in, platform, make_user):
    user = make_user("solo", "moderator", max_active=1, password="pw-solo")
    ingest(platform, n=2)
    queue_claim(reviewer=user, queue_slug="spam")
    sign_in(page, "solo", "pw-solo")
    page.get_by_role("button", name=re.compile("in Spam$")).click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("solo already holds 1 case(s), the maximum.")
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()


def test_dashboard_and_escalations_for_a_senior(page, live_server, sign_in, screenshot, platform, senior, moderator):
    cases = ingest(platform, n=4)
    for case in cases[:2]:
        assignment = queue_claim(reviewer=moderator, queue_slug="spam")

        if case is cases[0]:
            decision_make(case_id=assignment.case_id, reviewer=moderator, action="remove", rule="SP-1")
        else:
            case_escalate(
                case_id=assignment.case_id, actor=moderator, queue_slug="escalations", reason="owner is a VIP"
            )
    sign_in(page, "senior", "pw-senior")
    page.get_by_role("navigation").get_by_role("link", name="Escalations").click()
    expect(page.get_by_text("owner is a VIP")).to_be_visible()
    screenshot(page, "escalations")
    page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Queue health")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(4)
    screenshot(page, "dashboard")
    page.goto(f"{live_server.url}/queues/spam/")
    expect(page.get_by_text("Decide the selected cases (senior)")).to_be_visible()
    screenshot(page, "queue-spam")


def test_dashboard_charts_with_the_demo_incident(page, live_server, sign_in, screenshot):
    """The dashboard as a newcomer sees it after `make run`: the demo incident, some of it decided."""

    call_command("docket_demo", password="demo-password-1")
    moderator = Reviewer.objects.get(user__username="mod")
    for queue_slug, action, rule in [("spam", "remove", "SP-1"), ("spam", "no_violation", ""), ("ato", "lock", "AS-1")]:
        assignment = queue_claim(reviewer=moderator, queue_slug=queue_slug)
        decision_make(case_id=assignment.case_id, reviewer=moderator, action=action, rule=rule)
    sign_in(page, "senior", "demo-password-1")
    page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
    expect(page.locator("svg.chart")).to_have_count(4)
    expect(page.get_by_role("cell", name="Spam classifier").first).to_be_visible()
    screenshot(page, "dashboard-demo")
