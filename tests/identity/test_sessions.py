"""Sessions: idle staff sessions end; a change of roles or clearances signs the user out everywhere;
the audit log is append-only; the role map."""

import re
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from docket import roles
from docket.identity.auth import session_user
from docket.identity.oidc import grants_for, role_map
from docket.identity.services import audit_list
from docket.models import UserSession
from docket.visibility import clearances_of
from reviews.accounts import user_upsert
from tests.twofactor import client_sign_in

pytestmark = pytest.mark.django_db


def test_an_idle_staff_session_ends(make_user, settings):
    settings.DOCKET_SESSION_IDLE_MINUTES = 15
    make_user("mo", "moderator", password="mo-password-1")
    client = Client()
    client_sign_in(client, "mo", "mo-password-1")
    assert client.get("/").status_code == 200
    session = client.session
    session["docket_seen"] = time.time() - 16 * 60
    session.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert "signed out after 15 minutes" in client.get(response["Location"]).content.decode()


def test_an_active_session_is_not_rewritten_on_every_request(make_user, settings):
    settings.DOCKET_SESSION_IDLE_MINUTES = 15
    make_user("mo", "moderator", password="mo-password-1")
    client = Client()
    client_sign_in(client, "mo", "mo-password-1")
    seen = client.session["docket_seen"]
    client.get("/")
    assert client.session["docket_seen"] == seen  # within the minute: nothing written
    session = client.session
    session["docket_seen"] = time.time() - 5 * 60
    session.save()
    client.get("/")
    assert client.session["docket_seen"] > time.time() - 5  # refreshed, and still signed in
    assert client.get("/").status_code == 200


def test_a_signed_in_page_reads_its_session_from_the_cache_not_the_database(make_user):
    make_user("mo", "moderator", password="mo-password-1")
    client = Client()
    client_sign_in(client, "mo", "mo-password-1")
    assert client.get("/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    assert [q["sql"] for q in queries.captured_queries if "django_session" in q["sql"]] == []
    cache.clear()  # a flushed cache: the database copy still signs the user in
    assert client.get("/").status_code == 200


def test_a_signed_in_page_reads_its_user_roles_and_reviewer_profile_in_one_statement(make_user):
    make_user("mo", "moderator", password="mo-password-1", clearances=["csam"])
    client = Client()
    client_sign_in(client, "mo", "mo-password-1")
    assert client.get("/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/")
    assert response.status_code == 200
    reads = re.compile(r'FROM "?(auth_user|auth_group|reviews_reviewer)"?\s')  # the user, its roles, its profile
    identity = [q["sql"] for q in queries.captured_queries if reads.search(q["sql"])]
    assert len(identity) == 1 and all(t in identity[0] for t in ("auth_user", "auth_group", "reviews_reviewer"))
    # What the page knows of the user came with it: the role's page, the cleared queue.
    assert "csam" in response.content.decode().lower()


def test_the_session_user_comes_with_its_roles_and_profile_or_none(make_user, django_assert_num_queries):
    mo = make_user("mo", "moderator,senior", clearances=["csam"])
    admin = make_user("pa", "policy_admin")
    with django_assert_num_queries(1):
        user = session_user(mo.pk)
    with django_assert_num_queries(0):
        assert roles.names(user) == {"moderator", "senior"}
        assert user.reviewer.clearances == ["csam"] and user.reviewer.user is user
        assert clearances_of(user) == frozenset({"csam"})
    with django_assert_num_queries(1):
        user = session_user(admin.pk)
    with django_assert_num_queries(0):
        assert roles.names(user) == {"policy_admin"} and getattr(user, "reviewer", None) is None
    assert session_user(admin.pk + mo.pk + 1000) is None


@pytest.mark.parametrize("backend", settings.AUTHENTICATION_BACKENDS)
def test_a_deactivated_user_is_signed_out_whichever_backend_signed_them_in(make_user, backend):
    user = make_user("mo", "moderator")
    client = Client()
    client.force_login(user, backend=backend)
    assert client.get("/").status_code == 200
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_change_of_roles_signs_the_user_out_everywhere(make_user):
    make_user("mo", "moderator", password="mo-password-1")
    phone, laptop = Client(), Client()
    client_sign_in(phone, "mo", "mo-password-1")
    client_sign_in(laptop, "mo", "mo-password-1")
    assert UserSession.objects.filter(user__username="mo").count() == 2
    user_upsert(username="mo", role_names=["moderator", "senior"])
    assert phone.get("/").status_code == 302 and laptop.get("/").status_code == 302
    assert not UserSession.objects.filter(user__username="mo").exists()
    change = audit_list().filter(action="roles_changed", object_id="mo").latest("id")
    assert change.detail["before"]["roles"] == ["moderator"]
    assert change.detail["after"]["roles"] == ["moderator", "senior"]
    assert change.detail["sessions_ended"] == 2


def test_a_change_of_clearances_signs_out_and_the_same_grants_do_not(make_user):
    make_user("mo", "moderator", password="mo-password-1")
    client = Client()
    client_sign_in(client, "mo", "mo-password-1")
    user_upsert(username="mo", role_names=["moderator"])  # nothing changes
    assert client.get("/").status_code == 200
    user_upsert(username="mo", role_names=["moderator"], clearances=["cib"])
    assert client.get("/").status_code == 302
    change = audit_list().filter(action="roles_changed", object_id="mo").latest("id")
    assert change.detail["after"]["clearances"] == ["cib"]


def test_clearances_approved_in_the_admin_are_audited_and_sign_out(make_user, policy_admin):
    mo = make_user("mo", "moderator", password="mo-password-1")
    client = Client()
    client_sign_in(client, "mo", "mo-password-1")
    proposer, approver = Client(), Client()
    proposer.force_login(policy_admin)
    approver.force_login(make_user("padmin2", "policy_admin"))
    proposed = proposer.post(
        "/admin/reviews/accesschange/add/", {"reviewer": mo.reviewer.pk, "clearances": ["csam"], "reason": "team"}
    )
    assert proposed.status_code == 302
    assert client.get("/").status_code == 200  # a proposal changes nothing yet
    change_id = int(proposed.url.rstrip("/").split("/")[-2])
    approver.post("/admin/reviews/accesschange/", {"action": "approve_access_changes", "_selected_action": [change_id]})
    assert client.get("/").status_code == 302
    change = audit_list().filter(action="roles_changed", object_id="mo").latest("id")
    assert change.username == "padmin2" and change.detail["via"] == "access_change"


def test_the_audit_log_refuses_update_and_delete(make_user):
    make_user("mo", "moderator")
    row = audit_list().filter(object_id="mo").first()
    with pytest.raises(DatabaseError), transaction.atomic():
        audit_list().filter(pk=row.pk).update(action="nothing")
    with pytest.raises(DatabaseError), transaction.atomic():
        audit_list().filter(pk=row.pk).delete()


def test_audit_rows_are_visible_to_policy_admins_only(make_user, policy_admin, moderator):
    admin = Client()
    admin.force_login(policy_admin)
    page = admin.get("/admin/docket/accesslog/?kind__exact=audit")
    assert page.status_code == 200 and b"roles_changed" in page.content
    mod = Client()
    mod.force_login(moderator)
    assert mod.get("/admin/docket/accesslog/")["Location"].startswith("/admin/login/")


def test_the_role_map():
    mapping = role_map("tns-moderators=moderator, tns-csam=clearance:csam,tns-leads=senior,tns-leads=moderator")
    assert mapping == {
        "tns-moderators": {"moderator"},
        "tns-csam": {"clearance:csam"},
        "tns-leads": {"senior", "moderator"},
    }
    assert grants_for(["tns-csam", "tns-leads", "other"], mapping) == ({"senior", "moderator"}, {"csam"})
    assert grants_for(["tns-csam"], mapping) == (set(), {"csam"})  # a clearance alone grants no role
    for bad in ["tns-moderators", "x=wizard", "=moderator"]:
        with pytest.raises(ImproperlyConfigured, match="DOCKET_OIDC_ROLE_MAP"):
            role_map(bad)
