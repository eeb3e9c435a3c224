"""A claim or assignment holds its rows only for its own statements: the answer is built after the commit.

While the API builds a claim's answer, a second PostgreSQL connection must be able to lock
the claimed case (and every other case of the queue, the ones the claim passed over too)
at once: a decision or an intake fold on that case never waits for someone else's answer.
"""

import psycopg
import pytest
from rest_framework.test import APIClient

from appeals.api import views as appeal_views
from docket.accounts import token_for
from reviews.accounts import user_upsert
from reviews.api import views
from tests.appeals.conftest import appeal_on, decided
from tests.factories import CaseFactory
from tests.support import second_connection

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def api_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def row_free(table, pk):
    """Another connection's view of one row right now: (locked at once?, its status)."""
    with second_connection(autocommit=True) as other:
        other.execute("SET lock_timeout = '100ms'")
        try:
            with other.transaction():
                other.execute(f"SELECT id FROM {table} WHERE id = %s FOR NO KEY UPDATE NOWAIT", [pk])
            free = True
        except psycopg.errors.LockNotAvailable:
            free = False
        status = other.execute(f"SELECT status FROM {table} WHERE id = %s", [pk]).fetchone()[0]
    return free, status


def test_a_case_assigned_by_a_senior_is_not_locked_while_the_answer_is_built(monkeypatch):
    case = CaseFactory(kind="spam")
    senior = user_upsert(username="lock-senior", role_names=["senior"], queues=["spam"])
    user_upsert(username="lock-assignee", role_names=["moderator"], queues=["spam"])
    seen = {}
    build = views.assignment_representation

    def answer_watched(assignment, request):
        seen["case"] = row_free("casework_case", assignment.case_id)
        return build(assignment, request)

    monkeypatch.setattr(views, "assignment_representation", answer_watched)

    response = api_client(senior).post(f"/api/v1/cases/{case.pk}/assign/", {"reviewer": "lock-assignee"}, format="json")

    assert response.status_code == 201, response.content
    assert seen["case"] == (True, "in_review")  # committed, and free, before the answer was built


def test_a_claimed_appeal_is_not_locked_while_the_answer_is_built(monkeypatch):
    appeal = appeal_on(decided())
    staff = user_upsert(username="lock-appeals", role_names=["appeals"])
    seen = {}
    build = appeal_views._detail

    def answer_watched(request, appeal_id):
        seen["appeal"] = row_free("appeals_appeal", appeal_id)
        return build(request, appeal_id)

    monkeypatch.setattr(appeal_views, "_detail", answer_watched)

    response = api_client(staff).post("/api/v1/appeals/claim/")

    assert response.status_code == 201, response.content
    assert response.json()["appeal"] == appeal.pk
    assert seen["appeal"] == (True, "in_review")


def test_a_claimed_case_is_not_locked_while_the_claim_answer_is_built(monkeypatch):
    cases = [CaseFactory(kind="spam", priority=float(n)) for n in range(5)]
    moderator = user_upsert(username="lock-claimer", role_names=["moderator"], queues=["spam"])
    seen = {}
    build = views.assignment_representation

    def answer_watched(assignment, request, **given):
        # Between the claim and its answer: another connection tries the row locks a decision takes.
        with second_connection(autocommit=True) as other:
            try:
                other.execute("SET lock_timeout = '100ms'")
                with other.transaction():
                    locked = other.execute(
                        "SELECT id FROM casework_case WHERE queue_id = (SELECT queue_id FROM casework_case"
                        " WHERE id = %s) FOR NO KEY UPDATE NOWAIT",
                        [assignment.case_id],
                    ).fetchall()
                seen["locked"] = {row[0] for row in locked}
            except psycopg.errors.LockNotAvailable:
                seen["locked"] = None
            seen["status"] = other.execute(
                "SELECT status FROM casework_case WHERE id = %s", [assignment.case_id]
            ).fetchone()[0]
        return build(assignment, request, **given)

    monkeypatch.setattr(views, "assignment_representation", answer_watched)

    response = api_client(moderator).post("/api/v1/queues/spam/claim/")

    assert response.status_code == 201, response.content
    assert seen["status"] == "in_review"  # committed before the answer was built
    assert seen["locked"] == {c.pk for c in cases}  # nothing held: the claimed case nor any other
    assert response.json()["case"]["id"] == cases[-1].pk
