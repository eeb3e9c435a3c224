"""The sign-in pages against the usual attacks: fixation, open redirects, CSRF, forged provider answers,
caching of secrets."""

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client

from tests.twofactor import client_sign_in, code_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


@pytest.fixture
def cleared(make_user):
    user = make_user("cleo", "moderator", clearances=["csam"], password="cleo-password-1")
    client_sign_in(Client(), "cleo", "cleo-password-1")  # enrolled
    return user


def test_the_session_key_changes_when_the_second_factor_signs_in(cleared):
    client = Client()
    client.post("/login/", {"username": "cleo", "password": "cleo-password-1"})
    before = client.session.session_key
    client.post("/login/second-factor/", {"code": code_for("cleo")})
    assert client.session[SESSION_KEY] == str(cleared.pk)
    assert client.session.session_key != before


def test_next_cannot_send_the_user_off_site(cleared):
    client = Client()
    client.post("/login/", {"username": "cleo", "password": "cleo-password-1", "next": "https://evil.example/x"})
    response = client.post("/login/second-factor/", {"code": code_for("cleo")})
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_second_factor_form_needs_the_csrf_token(cleared):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    token = page.cookies["csrftoken"].value
    client.post("/login/", {"username": "cleo", "password": "cleo-password-1", "csrfmiddlewaretoken": token})
    refused = client.post("/login/second-factor/", {"code": code_for("cleo")})
    assert refused.status_code == 403 and SESSION_KEY not in client.session


def test_secrets_pages_are_never_cached(make_user):
    make_user("new", "moderator", clearances=["cib"], password="new-password-1")
    client = Client()
    client.post("/login/", {"username": "new", "password": "new-password-1"})
    for url in ("/login/enrol/", "/login/second-factor/"):
        response = client.get(url, follow=True)
        assert "no-store" in response.headers.get("Cache-Control", ""), url


def test_a_forged_provider_answer_signs_nobody_in(settings, cleared):
    settings.OIDC_DISCOVERY_URL = "http://127.0.0.1:9/.well-known/openid-configuration"
    settings.OIDC_RP_CLIENT_ID = "docket"
    client = Client()
    for query in ("?code=stolen&state=guessed", "?error=access_denied&state=x", ""):
        response = client.get("/oidc/callback/" + query)
        assert response.status_code == 400 and SESSION_KEY not in client.session
    session = client.session
    session["oidc_states"] = {"real-state": {"nonce": "n", "code_verifier": None}}
    session.save()
    response = client.get("/oidc/callback/?code=stolen&state=other-state")
    assert response.status_code == 400 and SESSION_KEY not in client.session


def test_an_unreachable_provider_is_a_clear_page_and_passwords_still_work(settings, make_user):
    settings.OIDC_DISCOVERY_URL = "http://127.0.0.1:9/.well-known/openid-configuration"
    settings.OIDC_RP_CLIENT_ID = "docket"
    page = Client().get("/login/")
    assert b"Sign in with single sign-on" in page.content
    response = Client().get("/oidc/authenticate/")
    assert response.status_code == 503 and b"could not reach" in response.content
    make_user("mo", "moderator", password="mo-password-1")
    assert Client().post("/login/", {"username": "mo", "password": "mo-password-1"})["Location"] == "/"


def test_an_sso_only_account_has_no_password(make_user):
    user = get_user_model().objects.create(username="sso-user")
    user.set_unusable_password()
    user.save()
    client = Client()
    for password in ("", "!"):
        response = client.post("/login/", {"username": "sso-user", "password": password})
        assert response.status_code == 200 and SESSION_KEY not in client.session
