"""In Chromium: every demo login lands on a page with navigation; a policy admin drafts, diffs and activates."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from playwright.sync_api import expect

from oversight.management.commands.docket_demo import USERS
from policies.models import PolicyVersion
from tests.factories import active_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SMALL = {"width": 1280, "height": 720}


def test_every_demo_login_lands_on_a_page_with_navigation(browser, live_server, sign_in, screenshot):
    call_command("docket_demo", "--password", "demo-pass-123")
    # The superuser ``make run`` creates (a policy admin too).
    root = get_user_model().objects.create_superuser("admin", password="demo-pass-123")
    root.groups.add(Group.objects.get(name="policy_admin"))

    landings = {}
    for username in [u for u, _, _ in USERS] + ["admin"]:
        context = browser.new_context(viewport=SMALL)
        page = context.new_page()
        sign_in(page, username, "demo-pass-123")  # enrols a second factor where one is required
        expect(page.get_by_role("button", name="Sign out").first).to_be_visible()
        nav = page.get_by_role("navigation", name="Main")
        expect(nav).to_be_visible()
        assert nav.get_by_role("link").count() >= 1, username
        landings[username] = page.url.removeprefix(live_server.url)
        screenshot(page, f"landing-{username}")
        context.close()
    assert landings["appeals"] == "/appeals/"
    assert all(url == "/" for user, url in landings.items() if user != "appeals"), landings


def test_api_account_page_and_error_pages(page, live_server, sign_in, screenshot, platform):
    page.set_viewport_size(SMALL)
    sign_in(page, "platform-svc", "pw-platform-svc")
    expect(page.get_by_role("heading", name="This is an API account")).to_be_visible()
    screenshot(page, "landing-api-account")

    page.goto(f"{live_server.url}/dashboard/")
    expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    screenshot(page, "error-403")

    page.goto(f"{live_server.url}/no-such-page/")
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    screenshot(page, "error-404")

    page.get_by_role("link", name="API docs").click()
    page.wait_for_url(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info")).to_contain_text("Docket API")
    screenshot(page, "api-docs")

    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Sign out").last.click()
    page.wait_for_url(f"{live_server.url}/login/")


def test_policy_admin_drafts_diffs_and_activates_a_version(page, live_server, sign_in, screenshot, policy_admin):
    page.set_viewport_size(SMALL)
    v1 = active_version("spam")
    sign_in(page, "padmin", "pw-padmin")
    expect(page.get_by_role("heading", name="Policy administration")).to_be_visible()
    screenshot(page, "landing-policy-admin")

    page.get_by_role("link", name="Policy versions").click()
    page.get_by_role("link", name=str(v1.policy)).first.click()
    expect(page.get_by_text("its text, rules, ladder and strike weight never change")).to_be_visible()
    screenshot(page, "policy-version-active")
    page.get_by_role("button", name="New draft from this version").click()
    expect(page.locator(".messagelist")).to_contain_text("Draft spam v2 created")
    draft = PolicyVersion.objects.get(policy=v1.policy, status="draft")

    blank = len(v1.rules)
    page.get_by_label(f"Rule {blank + 1} code").fill("SP-NEW")
    page.get_by_label(f"Rule {blank + 1} title").fill("Engagement bait")
    page.get_by_label(f"Rule {blank + 1} description").fill("Posts that ask for likes in exchange for prizes.")
    page.get_by_label("Label", exact=True).uncheck()
    screenshot(page, "policy-version-draft")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")

    page.get_by_role("link", name="Compare with the active version").click()
    diff = page.locator(".policy-diff")
    expect(diff).to_contain_text("SP-NEW")
    expect(diff).to_contain_text("No longer allowed: Label")
    screenshot(page, "policy-version-diff")

    page.get_by_role("link", name="Activate…").click()
    expect(page.get_by_role("heading", name="What changes against spam v1")).to_be_visible()
    screenshot(page, "policy-version-activate")
    assert PolicyVersion.objects.get(pk=draft.pk).status == "draft"
    page.get_by_role("button", name="Yes, activate spam v2").click()
    expect(page.locator(".messagelist")).to_contain_text("v2 is now active")
    draft.refresh_from_db()
    v1.refresh_from_db()
    assert (draft.status, v1.status) == ("active", "retired")
    assert "label" not in draft.ladder and draft.rules[-1]["code"] == "SP-NEW"
