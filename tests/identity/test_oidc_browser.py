"""Single sign-on end to end: a real OpenID Connect provider, Docket, and Chromium between them."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from docket.identity.services import audit_list
from reviews.models import Reviewer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def sso_sign_in(page, live_server, login):
    """From Docket's sign-in page through the provider's form and back."""
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    if page.locator("input[name=login]").count():  # the provider asks only when it has no session of its own
        page.locator("input[name=login]").fill(login)
        page.locator("input[name=password]").fill("any password")
        page.get_by_role("button", name="Sign-in").click()
    page.wait_for_url(f"{live_server.url}/**")


def test_moderator_signs_in_with_roles_from_groups_and_loses_them_with_the_group(
    oidc_provider, live_server, browser, screenshot
):
    maria_ctx, other_ctx = browser.new_context(), browser.new_context()
    maria, other = maria_ctx.new_page(), other_ctx.new_page()

    # The moderator lands on their queues, with the role and clearance their groups map to.
    sso_sign_in(maria, live_server, "maria")
    assert maria.url == f"{live_server.url}/"
    expect(maria.locator(".who")).to_contain_text("Signed in as maria")
    screenshot(maria, "sso-moderator-home")
    # Her queues, the cleared child-safety queue among them, each with a claim button.
    expect(maria.get_by_role("row", name="Child safety")).to_contain_text("Claim next")
    expect(maria.locator("main")).to_contain_text("Child sexual abuse material")  # her clearance, by the class's name
    user = get_user_model().objects.get(username="maria")
    assert set(user.groups.values_list("name", flat=True)) == {"moderator"}
    assert Reviewer.objects.get(user=user).clearances == ["csam"]
    assert not user.has_usable_password()

    # A second session of hers, in another browser.
    sso_sign_in(other, live_server, "maria")
    assert other.url == f"{live_server.url}/"

    # Removed from the moderators group: her next sign-in is refused and every access ends.
    oidc_provider.set_groups("maria", ["tns-csam"])
    maria.get_by_role("button", name="Sign out").click()
    maria.wait_for_url(f"{live_server.url}/login/")
    sso_sign_in(maria, live_server, "maria")
    expect(maria.get_by_role("heading", name="No access to Docket")).to_be_visible()
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == []
    assert Reviewer.objects.get(user=user).clearances == []
    other.goto(f"{live_server.url}/")
    assert other.url.startswith(f"{live_server.url}/login/")  # her other session ended too

    actions = [(r.action, r.object_id) for r in audit_list().filter(object_id="maria").order_by("id")]
    assert ("sign_in", "maria") in actions
    assert ("roles_changed", "maria") in actions
    assert actions[-1] == ("sign_in_failed", "maria")
    maria_ctx.close()
    other_ctx.close()


def test_user_in_no_mapped_group_is_refused_with_a_clear_page(oidc_provider, live_server, page, screenshot):
    sso_sign_in(page, live_server, "nobody")
    expect(page.get_by_role("heading", name="No access to Docket")).to_be_visible()
    expect(page.locator("main")).to_contain_text("is not in any group that grants a Docket role")
    screenshot(page, "sso-refused")
    assert not get_user_model().objects.filter(username="nobody").exists()
    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/login/")
    refusal = audit_list().get(action="sign_in_failed", object_id="nobody")
    assert refusal.detail["reason"] == "no_mapped_group" and refusal.detail["groups"] == ["marketing"]
