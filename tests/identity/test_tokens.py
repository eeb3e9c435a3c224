"""API tokens: expiry (401 token_expired), rotation, last use (at most one write a minute), audit."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from docket import roles
from docket.identity.auth import ExpiringTokenAuthentication
from docket.identity.services import audit_list, tokens_expired_record
from docket.models import ApiToken

pytestmark = pytest.mark.django_db


def api(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def token_command(*args, capsys):
    call_command("docket_token", *args)
    return capsys.readouterr().out.strip().splitlines()[-1]


def expire(key):
    ApiToken.objects.filter(key=key).update(
        created_at=timezone.now() - timedelta(days=10), expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_an_expired_token_answers_401_token_expired_and_is_audited_once(make_user, capsys):
    make_user("svc", "platform")
    key = token_command("svc", "--expires-days", "7", capsys=capsys)
    token = ApiToken.objects.get(key=key)
    assert timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert api(key).get("/api/v1/sources/").status_code in (200, 403)  # authenticated: the role decides

    expire(key)
    for _ in range(2):
        response = api(key).get("/api/v1/cases/")
        assert response.status_code == 401
        assert response.json()["code"] == "token_expired" and response.json()["detail"]
        assert response["WWW-Authenticate"] == "Token"
    assert api(key).post("/api/v1/signals/", {}, format="json").json()["code"] == "token_expired"
    assert audit_list().filter(action="token_expired", object_id="svc").count() == 1
    assert tokens_expired_record() == 0  # already recorded at the refusal


def test_the_sweep_records_expiry_of_tokens_nobody_used(make_user, capsys):
    make_user("quiet", "platform")
    key = token_command("quiet", "--expires-days", "1", capsys=capsys)
    expire(key)
    call_command("docket_tick")
    assert audit_list().filter(action="token_expired", object_id="quiet").count() == 1
    assert tokens_expired_record() == 0


def test_a_rotated_away_token_is_refused_and_the_new_one_works(make_user, capsys):
    user = make_user("svc", "platform")
    old = token_command("svc", capsys=capsys)
    new = token_command("svc", "--rotate", "--expires-days", "30", capsys=capsys)
    assert new != old
    refused = api(old).get("/api/v1/sources/")
    assert refused.status_code == 401 and refused.json()["code"] == "authentication_failed"
    assert api(new).get("/api/v1/sources/").status_code == 403  # platform may not list sources: but signed in
    assert ApiToken.objects.get(user=user).expires_at is not None
    actions = list(audit_list().filter(object_id="svc").values_list("action", flat=True).order_by("id"))
    assert actions[-2:] == ["token_created", "token_rotated"]


def test_docket_token_without_flags_prints_the_same_token(make_user, capsys):
    make_user("svc", "platform")
    first = token_command("svc", capsys=capsys)
    assert token_command("svc", capsys=capsys) == first
    assert audit_list().filter(action="token_created", object_id="svc").count() == 1


def test_expiry_is_set_on_the_existing_token(make_user, capsys):
    make_user("svc", "platform")
    key = token_command("svc", capsys=capsys)
    assert token_command("svc", "--expires-days", "3", capsys=capsys) == key
    assert ApiToken.objects.get(key=key).expires_at > timezone.now() + timedelta(days=2)
    assert audit_list().filter(action="token_expiry_set", object_id="svc").exists()


def test_a_negative_expiry_is_a_one_line_error_and_changes_nothing(make_user):
    make_user("svc", "platform")
    with pytest.raises(CommandError, match="0 \\(expires now\\) or more"):
        call_command("docket_token", "svc", "--expires-days", "-3")
    assert not ApiToken.objects.exists()


def test_expires_days_0_revokes_the_token_now(make_user, capsys):
    make_user("svc", "platform")
    key = token_command("svc", capsys=capsys)
    assert token_command("svc", "--expires-days", "0", capsys=capsys) == key
    assert api(key).get("/api/v1/cases/").json()["code"] == "token_expired"
    new = token_command("svc", "--rotate", "--expires-days", "0", capsys=capsys)
    assert api(new).get("/api/v1/cases/").json()["code"] == "token_expired"


def test_docket_user_creates_a_service_account_whose_token_expires(db, capsys):
    call_command("docket_user", "ingest-bot", "--role", "platform", "--expires-days", "90")
    out = capsys.readouterr().out.strip().splitlines()
    token = ApiToken.objects.get(user__username="ingest-bot")
    assert out[-1] == token.key
    assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)
    response = api(token.key).post("/api/v1/signals/", {}, format="json")
    assert response.status_code == 400  # authenticated as platform: the empty body is invalid


def test_last_use_is_written_at_most_once_a_minute(make_user, capsys, django_assert_num_queries):
    make_user("svc", "platform")
    key = token_command("svc", capsys=capsys)
    assert ApiToken.objects.get(key=key).last_used_at is None
    api(key).get("/api/v1/cases/")
    first = ApiToken.objects.get(key=key).last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)

    recent = timezone.now() - timedelta(seconds=30)
    ApiToken.objects.filter(key=key).update(last_used_at=recent)
    api(key).get("/api/v1/cases/")
    assert ApiToken.objects.get(key=key).last_used_at == recent  # no write within the minute

    stale = timezone.now() - timedelta(seconds=90)
    ApiToken.objects.filter(key=key).update(last_used_at=stale)
    api(key).get("/api/v1/cases/")
    assert ApiToken.objects.get(key=key).last_used_at > stale


def test_the_admin_shows_token_expiry_and_last_use(make_user, policy_admin, capsys):
    make_user("svc", "platform")
    key = token_command("svc", "--expires-days", "5", capsys=capsys)
    api(key).get("/api/v1/cases/")
    client = Client()
    client.force_login(policy_admin)
    page = client.get("/admin/docket/staffaccount/?q=svc")
    assert page.status_code == 200
    html = page.content.decode()
    assert "token last used" in html.lower() and "token expires" in html.lower()
    row = next(r for r in page.context["cl"].result_list if r.username == "svc")
    assert row.api_token.last_used_at is not None
    assert key not in html  # the key itself is never shown


def test_a_token_is_checked_with_its_user_and_roles_in_one_query(make_user, capsys, django_assert_num_queries):
    user = make_user("svc-roles", "moderator,senior")
    key = token_command("svc-roles", capsys=capsys)
    ApiToken.objects.filter(key=key).update(last_used_at=timezone.now())  # no last-use write in this minute
    check = ExpiringTokenAuthentication()

    with django_assert_num_queries(1):
        found, token = check.authenticate_credentials(key)
        assert roles.names(found) == {"moderator", "senior"}
    assert (found.pk, found.username, token.key, token.user is found) == (user.pk, "svc-roles", key, True)

    with pytest.raises(AuthenticationFailed, match="Invalid token"):
        check.authenticate_credentials(key[:-1] + ("0" if key[-1] != "0" else "1"))
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(AuthenticationFailed, match="inactive"):
        check.authenticate_credentials(key)
