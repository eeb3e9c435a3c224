"""In Chromium: a refused suspension keeps its input; a senior dismisses a campaign and confirms a source."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from casework.management.commands.simulate import scenario_run
from casework.models import Campaign
from policies.models import SignalSource
from reviews.models import Decision
from reviews.services import queue_claim
from tests.factories import CaseFactory, active_version, threat_class

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SMALL = {"width": 1280, "height": 720}


def test_suspend_without_duration_keeps_the_input_then_succeeds(page, live_server, sign_in, screenshot, moderator):
    page.set_viewport_size(SMALL)
    case = CaseFactory(kind="ato", priority=1000.0)
    assert queue_claim(reviewer=moderator, queue_slug=case.queue.slug).case_id == case.pk
    rule = active_version("ato").rules[0]
    sign_in(page, "mod", "pw-mod")
    page.goto(f"{live_server.url}/cases/{case.pk}/")

    form = page.locator("#decision-form")
    form.get_by_label("Suspend").check()
    form.get_by_label("Rule").select_option(rule["code"])
    form.get_by_label("Rationale").fill("Logins from four countries in an hour; owner confirmed the takeover.")
    form.get_by_role("button", name="Decide").click()

    expect(page.locator("#duration-field .field-error")).to_have_text("Required for suspend.")
    expect(form.get_by_label("Suspend")).to_be_checked()
    expect(form.get_by_label("Rule")).to_have_value(rule["code"])
    expect(form.get_by_label("Rationale")).to_have_value(
        "Logins from four countries in an hour; owner confirmed the takeover."
    )
    assert not Decision.objects.filter(case=case).exists()
    screenshot(page, "case-decision-refused")

    form.get_by_label("Duration (days)").fill("7")
    form.get_by_role("button", name="Decide").click()
    expect(page.locator(".messages")).to_contain_text(f"Case {case.pk} decided: Suspend.")
    decision = Decision.objects.get(case=case)
    assert (decision.action, decision.duration_days, decision.rule) == ("suspend", 7, rule["code"])


def test_senior_dismisses_a_campaign_and_confirms_a_source(page, live_server, sign_in, screenshot, make_user):
    page.set_viewport_size(SMALL)
    # Confirming a source is a policy admin's call (API.md): this senior also holds that role.
    make_user("lead", "senior,moderator,policy_admin", clearances=["csam", "cib"], password="pw-lead")
    campaign = Campaign.objects.create(
        threat_class=threat_class("spam"),
        size=7,
        detected_at=timezone.now(),
        links=[{"kind": "device", "value": "dev-farm-1"}],
    )
    scenario_run("broken-classifier", count=60, seed=1)
    held = SignalSource.objects.get(slug="spam-classifier")
    assert held.status == "suspect"
    sign_in(page, "lead", "pw-lead")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    screenshot(page, "campaigns-index")
    page.get_by_role("link", name=f"Campaign {campaign.pk}").click()
    expect(page.get_by_role("heading", name="Not a campaign?")).to_be_visible()
    screenshot(page, "campaign-dismiss")
    page.get_by_label("The shared attributes are coincidental").check()
    page.get_by_role("button", name="Dismiss the campaign").click()
    expect(page.locator(".messages")).to_contain_text("dismissed as coincidental")
    assert Campaign.objects.get(pk=campaign.pk).status == "dismissed"

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sources").click()
    expect(page.locator("#sources")).to_contain_text("Uncorroborated spike")
    screenshot(page, "sources-index")
    page.locator("#sources").get_by_role("link", name="Spam classifier").click()
    page.get_by_role("button", name="Confirm the spike is real").click()
    expect(page.locator("#source-status")).to_have_text("Healthy")
    assert SignalSource.objects.get(slug="spam-classifier").status == "healthy"


def test_bulk_decision_selects_all_and_asks_with_the_count(page, live_server, sign_in, senior):
    page.set_viewport_size(SMALL)
    cases = [CaseFactory(kind="spam", priority=p) for p in (3, 2, 1)]
    sign_in(page, "senior", "pw-senior")
    page.goto(f"{live_server.url}/queues/spam/")
    page.get_by_label("Select every case listed").check()
    page.locator("#bulk-action").select_option("remove")
    page.locator("#bulk-rule").select_option(active_version("spam").rules[0]["code"])
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Decide selected").click()
    assert asked == ["Apply Remove to 3 cases?"]
    assert not Decision.objects.exists()  # dismissed: nothing sent
    page.get_by_role("button", name="Decide selected").click()
    expect(page.locator(".messages")).to_contain_text("Decided 3")
    assert Decision.objects.filter(case__in=cases).count() == 3
