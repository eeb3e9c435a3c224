"""An investigation in a real browser: search by IP from any page, open the subject, reveal media."""

import re
import time

import pytest
from playwright.sync_api import expect

from casework.intake import signals_ingest
from casework.models import Case
from docket.models import AccessLog
from tests.reliability.conftest import decide

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

IP = "203.0.113.91"


def _signal(platform, n, subject, threat_class="spam", attributes=None):
    signals_ingest(
        items={
            "source": "user-reports",
            "external_id": f"inv-browser-{n}",
            "threat_class": threat_class,
            "subject": {"kind": "account", "external_id": subject, "reach": 4200, "attributes": attributes or {}},
            "reporter": f"inv-browser-reporter-{n}",
            "reason": "selling followers",
        },
        actor=platform,
    )
    return Case.objects.get(subject__external_id=subject, threat_class__slug=threat_class, status="open")


def _logged(action, case_id, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if AccessLog.objects.filter(action=action, object_type="case", object_id=str(case_id)).exists():
            return True
        time.sleep(0.2)
    return False


def test_search_by_ip_open_the_subject_see_history_and_links_then_reveal_media(
    page, live_server, sign_in, screenshot, platform, moderator, senior, make_user
):
    decider = make_user("inv-decider", "moderator", queues=["spam"])
    earlier = _signal(platform, 1, "ivan-1", attributes={"ip": [IP], "device": ["dev-ivan"]})
    decision = decide(earlier, decider, senior)  # a prior decision, with a strike
    current = _signal(platform, 2, "ivan-1", threat_class="harassment")
    _signal(platform, 3, "jane-2", attributes={"device": ["dev-ivan"]})  # linked through the device

    sign_in(page, "mod", "pw-mod")
    page.keyboard.press("/")
    expect(page.locator("#site-search")).to_be_focused()
    page.keyboard.type(IP)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search/\?q="))
    results = page.locator("#search-results")
    expect(results).to_contain_text("account:ivan-1")
    screenshot(page, "search-results")

    page.keyboard.press("j")  # the first result, then open it from the keyboard
    expect(page.locator("[data-result]").first).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/subjects/account/ivan-1/$"))
    cases = page.locator("#cases")
    expect(cases).to_contain_text(decision.rule)
    expect(cases).to_contain_text("statement of reasons")
    expect(page.locator("#strikes")).to_contain_text("active")
    linked = page.locator("#linked")
    expect(linked).to_contain_text("account:jane-2")
    expect(linked).to_contain_text("dev-ivan")
    screenshot(page, "subject")
    assert AccessLog.objects.filter(username="mod", object_type="subject", object_id="account:ivan-1").exists()

    page.locator("#cases").get_by_role("link", name=f"Case {current.pk}").click()
    page.wait_for_url(re.compile(rf"/cases/{current.pk}/$"))
    expect(page.locator("#account-record")).to_contain_text(decision.rule)
    media = page.locator(".evidence img").first
    expect(media).to_have_css("filter", "blur(12px) grayscale(1)")
    page.keyboard.press("v")
    expect(media).to_have_css("filter", "none")
    assert _logged("reveal", current.pk), "the reveal wrote no access-log row"
    row = AccessLog.objects.get(action="reveal", object_id=str(current.pk))
    assert (row.username, row.threat_class, row.detail["via"]) == ("mod", "harassment", "ui")
