"""Every account lands somewhere useful; refusals are pages in the site layout and one log line."""

import io
import logging
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders

from docket.accounts import token_for
from docket.logs import ExpectedRefusalFilter

pytestmark = pytest.mark.django_db


def has_layout(page):
    return 'class="site-nav"' in page and "Sign out" in page


def test_policy_admin_lands_on_governance_links(login, policy_admin):
    response = login(policy_admin).get("/")
    page = response.content.decode()
    assert response.status_code == 200 and has_layout(page)
    for href in (
        "/admin/",
        "/dashboard/",
        "/thresholds/",
        "/sources/",
        "/admin/policies/policyversion/",
    ):
        assert f'href="{href}"' in page, href


def test_superuser_without_a_role_lands_on_the_admin_links(login):
    root = get_user_model().objects.create_superuser("root", password="pw")
    response = login(root).get("/")
    page = response.content.decode()
    assert response.status_code == 200 and has_layout(page)
    assert 'href="/admin/"' in page and "without the policy admin role" in page


def test_platform_account_is_told_it_is_an_api_account(login, platform):
    response = login(platform).get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "This is an API account" in page and 'href="/api/docs/"' in page
    assert 'action="/logout/"' in page


def test_appeals_staff_land_on_their_queue(login, make_user):
    appeals = make_user("ap", "appeals")
    response = login(appeals).get("/")
    assert (response.status_code, response.url) == (302, "/appeals/")


def test_user_without_role_is_told_so_and_can_sign_out(login):
    nobody = get_user_model().objects.create_user("nobody", password="pw")
    response = login(nobody).get("/")
    page = response.content.decode()
    assert response.status_code == 403
    assert "has no role yet" in page and 'action="/logout/"' in page


def test_403_page_has_navigation_and_sign_out(login, platform):
    response = login(platform).get("/dashboard/")
    page = response.content.decode()
    assert response.status_code == 403
    assert has_layout(page) and "You cannot open this page" in page


def test_404_page_has_navigation_and_sign_out(login, moderator):
    for url in ("/cases/987654/", "/no-such-page/"):
        response = login(moderator).get(url)
        page = response.content.decode()
        assert response.status_code == 404, url
        assert has_layout(page) and "Nothing here" in page and 'href="/dashboard/"' in page


def test_api_404_keeps_the_error_envelope(login, moderator):
    response = login(moderator).get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_an_expected_403_is_one_log_line_without_traceback(login, platform):
    handler = next(
        h for h in logging.getLogger().handlers if any(isinstance(f, ExpectedRefusalFilter) for f in h.filters)
    )
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        login(platform).get("/dashboard/")
        login(platform).get("/no-such-page/")
    finally:
        handler.setStream(old)
    lines = stream.getvalue().splitlines()
    assert lines == ["Forbidden (Permission denied): /dashboard/", "Not Found: /no-such-page/"]


def test_the_filter_keeps_tracebacks_of_real_faults():
    record = logging.LogRecord(
        "django.request", logging.ERROR, __file__, 1, "boom", None, (ValueError, ValueError("x"), None)
    )
    record.status_code = 500
    ExpectedRefusalFilter().filter(record)
    assert record.exc_info is not None


def test_api_docs_serve_swagger_ui_from_local_static_files(login, platform):
    response = login(platform).get("/api/docs/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "/api/schema/" in page
    assert "cdn" not in page.lower() and "unpkg" not in page

    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', page)
    assert any("swagger-ui-bundle" in a for a in assets), assets
    for asset in assets:
        assert finders.find(asset), asset


def test_readme_links_the_api_docs():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "/api/docs/" in readme and "shared/API.md" not in readme


def test_the_schema_and_its_docs_need_a_login(client, platform):
    schema = client.get("/api/schema/")  # YAML by default; a refusal is still the JSON envelope
    docs = client.get("/api/docs/")

    assert schema.status_code == 401 and schema.json()["code"] == "not_authenticated"
    assert docs.status_code == 302 and docs["Location"] == "/login/?next=/api/docs/"
    token = f"Token {token_for(platform)}"
    with_token = client.get("/api/schema/", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=token)
    assert with_token.status_code == 200 and "/api/v1/signals/" in with_token.json()["paths"]
