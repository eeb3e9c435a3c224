"""The access log: append-only in the database, listed to policy admins with filters."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError
from django.utils import timezone

from casework.models import Case
from casework.retention import cases_purge_personal_data
from docket.audit import access_log_add
from docket.models import AccessLog
from tests.casework.test_retention import closed_case

pytestmark = pytest.mark.django_db


def test_update_and_delete_refused_by_the_database(moderator):
    row = access_log_add(user=moderator, action="view", object_type="case", object_id=7, threat_class="csam")
    for attempt in (
        lambda: AccessLog.objects.filter(pk=row.pk).update(action="export"),
        lambda: AccessLog.objects.filter(pk=row.pk).delete(),
    ):
        with pytest.raises((InternalError, ProgrammingError)) as exc, transaction.atomic():
            attempt()
        assert "append-only" in str(exc.value)
    for sql in (
        "UPDATE docket_accesslog SET username = 'x' WHERE id = %s",
        "DELETE FROM docket_accesslog WHERE id = %s",
    ):
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [row.pk])
    row = AccessLog.objects.get(pk=row.pk)
    assert (row.username, row.action, row.object_type, row.object_id, row.threat_class) == (
        "mod",
        "view",
        "case",
        "7",
        "csam",
    )


def test_audit_rows_share_the_table_but_not_the_access_list(moderator, policy_admin, api_for):
    access_log_add(user=moderator, action="view", object_type="case", object_id=1)
    access_log_add(user=moderator, action="sign_in", kind=AccessLog.Kind.AUDIT, detail={"method": "password"})
    body = api_for(policy_admin).get("/api/v1/access-log/").json()
    assert [r["action"] for r in body["results"]] == ["view"]


def test_api_lists_newest_first_with_filters(moderator, senior, policy_admin, api_for):
    now = timezone.now()
    access_log_add(user=moderator, action="view", object_type="case", object_id=1, at=now - timedelta(days=2))
    access_log_add(user=senior, action="reveal", object_type="case", object_id=2, threat_class="csam", at=now)
    access_log_add(user=senior, action="export", object_type="case", object_id=3, threat_class="cib", at=now)
    api = api_for(policy_admin)
    body = api.get("/api/v1/access-log/").json()
    assert body["count"] == 3
    first = body["results"][0]
    assert set(first) == {"at", "user", "action", "object_type", "object_id", "threat_class"}
    assert (first["user"], first["action"], first["object_id"]) == ("senior", "export", "3")

    def ids(query):
        answer = api.get("/api/v1/access-log/" + query)
        assert answer.status_code == 200, answer.content
        return sorted(r["object_id"] for r in answer.json()["results"])

    assert ids("?user=senior") == ["2", "3"]
    assert ids("?threat_class=csam") == ["2"]
    assert ids("?action=view") == ["1"]
    since = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"?since={since}") == ["2", "3"]


def test_api_refuses_bad_filters_and_other_roles(moderator, senior, policy_admin, api_for):
    access_log_add(user=moderator, action="view", object_type="case", object_id=1)
    bad = api_for(policy_admin).get("/api/v1/access-log/?action=delete")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"
    bad = api_for(policy_admin).get("/api/v1/access-log/?since=yesterday")
    assert bad.status_code == 400 and "since" in bad.json()["errors"]
    for user in (moderator, senior):
        answer = api_for(user).get("/api/v1/access-log/")
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert api_for(None).get("/api/v1/access-log/").status_code == 401
    assert AccessLog.objects.filter(kind="access").count() == 1  # (audit rows: the users' creation)


def test_admin_lists_read_only(policy_admin, client):
    access_log_add(user=policy_admin, action="export", object_type="case", object_id=9, threat_class="spam")
    policy_admin.is_staff = True
    policy_admin.save(update_fields=["is_staff"])
    client.force_login(policy_admin)
    page = client.get("/admin/docket/accesslog/?action__exact=export")
    assert page.status_code == 200
    assert b"padmin" in page.content
    row = AccessLog.objects.get(kind="access")
    assert client.get(f"/admin/docket/accesslog/{row.pk}/delete/").status_code == 403
    assert client.get("/admin/docket/accesslog/add/").status_code == 403


def test_retention_keeps_the_log_of_the_cases_it_purges(moderator):
    """Purging a case's personal data leaves the log of who saw it: the log lasts as long as the cases."""

    case = closed_case(reviewer=moderator.reviewer)
    access_log_add(user=moderator, action="export", object_type="case", object_id=case.pk, threat_class="spam")
    assert cases_purge_personal_data() == 1
    assert Case.objects.get(pk=case.pk).personal_data_purged_at is not None
    row = AccessLog.objects.get(kind="access", object_id=str(case.pk))
    assert (row.username, row.action, row.threat_class) == ("mod", "export", "spam")
