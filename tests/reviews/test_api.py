"""The reviews endpoints of API.md: paths, fields, status codes and error codes."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.models import Assignment, Decision, QualityReview
from reviews.selectors import _forecast
from reviews.services import decision_make, queue_claim
from reviews.sor import sor_validate
from tests.factories import CaseFactory, queue

pytestmark = pytest.mark.django_db

QUEUE_FIELDS = {
    "slug",
    "name",
    "threat_classes",
    "depth",
    "in_review",
    "oldest_wait_seconds",
    "breaching",
    "forecast_drain_hours",
}


def error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert set(response.json()) >= {"code", "detail"}


def test_queues_list_shows_depth_in_review_wait_breaching(api_for, moderator, make_user, django_assert_max_num_queries):
    now = timezone.now()
    CaseFactory(
        kind="spam", created_at=now - timedelta(hours=2), first_signal_at=now - timedelta(hours=2), priority=0.5
    )
    CaseFactory(kind="spam", sla_due_at=now - timedelta(minutes=1))
    CaseFactory(kind="spam")
    queue_claim(reviewer=make_user("m2", "moderator"), queue_slug="spam")
    CaseFactory(kind="csam", queue=queue("escalations"), status="escalated")  # invisible to the uncleared

    client = api_for(moderator)
    with django_assert_max_num_queries(9):
        response = client.get("/api/v1/queues/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "count_is_estimate", "next", "previous", "results"}  # API.md "Lists"
    rows = {r["slug"]: r for r in body["results"]}
    assert set(rows) == {"ato", "payment_fraud", "harassment", "spam", "escalations", "legal"}
    spam = rows["spam"]
    assert set(spam) >= QUEUE_FIELDS
    assert (spam["threat_classes"], spam["depth"], spam["in_review"], spam["breaching"]) == (["spam"], 2, 1, 1)
    assert 7100 <= spam["oldest_wait_seconds"] <= 7300
    assert spam["forecast_drain_hours"] is None  # nothing decided lately
    assert rows["escalations"]["depth"] == 0
    assert rows["harassment"]["oldest_wait_seconds"] is None


def test_queue_list_counts_restricted_classes_for_the_cleared(api_for, senior):
    CaseFactory(kind="csam", queue=queue("escalations"), status="escalated")
    rows = {r["slug"]: r for r in api_for(senior).get("/api/v1/queues/").json()["results"]}
    assert "csam" in rows and "cib" in rows
    assert rows["escalations"]["depth"] == 1


def test_queue_list_query_count_does_not_grow_with_queues_or_cases(api_for, senior, django_assert_max_num_queries):
    for kind in ("spam", "ato", "harassment", "csam", "cib", "payment_fraud"):
        CaseFactory.create_batch(3, kind=kind)
    client = api_for(senior)
    with django_assert_max_num_queries(9):
        assert client.get("/api/v1/queues/").status_code == 200


def test_drain_forecast():
    assert _forecast(depth=10, arrivals=0, decisions=0) == {"forecast_drain_hours": None, "drain_state": "idle"}
    assert _forecast(depth=12, arrivals=6, decisions=18) == {"forecast_drain_hours": 6.0, "drain_state": "draining"}
    assert _forecast(depth=12, arrivals=18, decisions=6) == {"forecast_drain_hours": None, "drain_state": "growing"}
    assert _forecast(depth=0, arrivals=1, decisions=1) == {"forecast_drain_hours": 0.0, "drain_state": "draining"}


def test_queue_forecast_from_recent_decisions(api_for, moderator):
    for _ in range(3):
        CaseFactory(kind="spam", created_at=timezone.now() - timedelta(days=1))
    for _ in range(2):
        a = queue_claim(reviewer=moderator, queue_slug="spam")
        decision_make(case_id=a.case_id, reviewer=moderator, action="remove", rule="SP-1")
    rows = {r["slug"]: r for r in api_for(moderator).get("/api/v1/queues/").json()["results"]}
    # 1 waiting, 2 decided in 6 h, none arrived: 1 / (2/6) = 3 h
    assert (rows["spam"]["depth"], rows["spam"]["forecast_drain_hours"]) == (1, 3.0)


def test_queues_list_needs_a_staff_role(api_for, platform):
    error(api_for(platform).get("/api/v1/queues/"), 403, "forbidden")
    error(api_for(None).get("/api/v1/queues/"), 401, "not_authenticated")


def test_claim_answers_201_with_the_case_then_204(api_for, moderator):
    case = CaseFactory(kind="spam")
    response = api_for(moderator).post("/api/v1/queues/spam/claim/")
    assert response.status_code == 201
    body = response.json()
    assignment = Assignment.objects.get()
    assert set(body) == {"assignment", "lease_expires_at", "case"}
    assert body["assignment"] == assignment.pk
    assert body["case"]["id"] == case.pk
    assert body["case"]["status"] == "in_review"
    assert body["case"]["assignment"]["id"] == assignment.pk
    assert api_for(moderator).post("/api/v1/queues/spam/claim/").status_code == 204


def test_claim_refusals_over_http(api_for, make_user, platform, unchanged):
    user = make_user("one", "moderator", max_active=1)
    CaseFactory.create_batch(2, kind="spam")
    CaseFactory(kind="csam")
    client = api_for(user)
    assert client.post("/api/v1/queues/spam/claim/").status_code == 201
    with unchanged():
        error(client.post("/api/v1/queues/spam/claim/"), 409, "capacity_reached")
        error(client.post("/api/v1/queues/csam/claim/"), 403, "clearance_required")
        error(client.post("/api/v1/queues/escalations/claim/"), 403, "forbidden")
        error(client.post("/api/v1/queues/nope/claim/"), 404, "not_found")
        error(api_for(platform).post("/api/v1/queues/spam/claim/"), 403, "forbidden")
    user.reviewer.on_shift = False
    user.reviewer.save()
    error(client.post("/api/v1/queues/spam/claim/"), 409, "off_shift")


@pytest.mark.parametrize("verb", ["renew", "release", "skip"])
def test_assignment_endpoints(api_for, moderator, make_user, verb, unchanged):
    CaseFactory(kind="spam")
    a = queue_claim(reviewer=moderator, queue_slug="spam")
    with unchanged():
        error(api_for(make_user("x", "moderator")).post(f"/api/v1/assignments/{a.pk}/{verb}/"), 403, "not_assignee")
        error(api_for(moderator).post(f"/api/v1/assignments/{a.pk + 99}/{verb}/"), 404, "not_found")
    response = api_for(moderator).post(f"/api/v1/assignments/{a.pk}/{verb}/")
    assert response.status_code == 200
    expected = {"renew": "active", "release": "released", "skip": "skipped"}[verb]
    assert response.json()["state"] == expected
    assert response.json()["assignment"] == a.pk


@pytest.mark.parametrize("verb", ["renew", "release", "skip"])
def test_an_assignment_on_a_hidden_case_answers_like_a_missing_one(api_for, make_user, verb, unchanged):
    """No existence oracle: another reviewer's assignment on a restricted case is a 404, as an unknown id is."""
    CaseFactory(kind="csam")
    cleared = make_user("cleared", "moderator", clearances=["csam"], queues=["csam"])
    a = queue_claim(reviewer=cleared, queue_slug="csam")
    uncleared = api_for(make_user("x", "moderator"))
    with unchanged():
        hidden = uncleared.post(f"/api/v1/assignments/{a.pk}/{verb}/")
        missing = uncleared.post(f"/api/v1/assignments/{a.pk + 99}/{verb}/")
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
    error(hidden, 404, "not_found")


def test_senior_assigns_over_http(api_for, senior, moderator, make_user, unchanged):
    case = CaseFactory(kind="spam")
    csam = CaseFactory(kind="csam")
    with unchanged():
        error(
            api_for(moderator).post(f"/api/v1/cases/{case.pk}/assign/", {"reviewer": "mod"}, format="json"),
            403,
            "forbidden",
        )
        error(
            api_for(senior).post(f"/api/v1/cases/{case.pk}/assign/", {"reviewer": "ghost"}, format="json"),
            400,
            "invalid",
        )
        error(api_for(senior).post(f"/api/v1/cases/{case.pk}/assign/", {}, format="json"), 400, "invalid")
        error(
            api_for(senior).post(f"/api/v1/cases/{csam.pk}/assign/", {"reviewer": "mod"}, format="json"),
            403,
            "clearance_required",
        )
        uncleared = make_user("s2", "senior,moderator")
        error(
            api_for(uncleared).post(f"/api/v1/cases/{csam.pk}/assign/", {"reviewer": "mod"}, format="json"),
            404,
            "not_found",
        )
    response = api_for(senior).post(f"/api/v1/cases/{case.pk}/assign/", {"reviewer": "mod"}, format="json")
    assert response.status_code == 201
    assert response.json()["case"]["assignment"]["reviewer"] == "mod"


def test_decision_over_http(api_for, moderator):
    case = CaseFactory(kind="ato")
    queue_claim(reviewer=moderator, queue_slug="ato")
    response = api_for(moderator).post(
        f"/api/v1/cases/{case.pk}/decision/",
        {"action": "suspend", "rule": "AS-1", "rationale": "takeover", "duration_days": 7},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    decision = Decision.objects.get()
    assert body["id"] == decision.pk
    assert {
        k: body[k]
        for k in ("case", "action", "rule", "policy_version", "reviewer", "automated", "rationale", "overturned")
    } == {
        "case": case.pk,
        "action": "suspend",
        "rule": "AS-1",
        "policy_version": decision.policy_version_id,
        "reviewer": "mod",
        "automated": False,
        "rationale": "takeover",
        "overturned": False,
    }
    assert "created_at" in body


def test_decision_refusals_over_http(api_for, moderator, make_user, unchanged):
    case = CaseFactory(kind="ato")
    queue_claim(reviewer=moderator, queue_slug="ato")
    csam = CaseFactory(kind="csam")
    url = f"/api/v1/cases/{case.pk}/decision/"
    client = api_for(moderator)
    with unchanged():
        error(
            api_for(make_user("x", "moderator")).post(url, {"action": "lock", "rule": "AS-1"}, format="json"),
            403,
            "not_assignee",
        )
        error(client.post(url, {"action": "remove", "rule": "AS-1"}, format="json"), 400, "action_not_allowed")
        error(client.post(url, {"action": "suspend", "rule": "AS-1"}, format="json"), 400, "invalid")
        error(
            client.post(url, {"action": "lock", "rule": "AS-1", "duration_days": "soon"}, format="json"), 400, "invalid"
        )
        error(client.post(url, ["lock"], format="json"), 400, "invalid")
        error(client.post(url, "garbage", content_type="application/json"), 400, "parse_error")
        error(client.post(url, {}, format="json"), 400, "invalid")
        error(
            client.post(f"/api/v1/cases/{csam.pk}/decision/", {"action": "remove", "rule": "CS-1"}, format="json"),
            404,
            "not_found",
        )
        error(client.post("/api/v1/cases/999999/decision/", {"action": "remove"}, format="json"), 404, "not_found")


def test_escalate_over_http(api_for, moderator, unchanged):
    case = CaseFactory(kind="harassment")
    queue_claim(reviewer=moderator, queue_slug="harassment")
    url = f"/api/v1/cases/{case.pk}/escalate/"
    with unchanged():
        error(api_for(moderator).post(url, {"queue": "spam", "reason": "x"}, format="json"), 400, "invalid")
        error(api_for(moderator).post(url, {"queue": "legal"}, format="json"), 400, "invalid")
    response = api_for(moderator).post(url, {"queue": "legal", "reason": "court order"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"case": case.pk, "status": "escalated", "queue": "legal"}


def test_decision_detail_and_statement_of_reasons(api_for, moderator, make_user, platform):
    case = CaseFactory(kind="spam")
    queue_claim(reviewer=moderator, queue_slug="spam")
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-3")
    body = api_for(moderator).get(f"/api/v1/decisions/{decision.pk}/").json()
    assert {
        "id",
        "case",
        "action",
        "rule",
        "policy_version",
        "reviewer",
        "automated",
        "rationale",
        "created_at",
        "overturned",
    } <= set(body)
    sor = api_for(platform).get(f"/api/v1/decisions/{decision.pk}/statement-of-reasons/")
    assert sor.status_code == 200
    assert sor_validate(sor.json()) == []
    assert re.fullmatch(rf"docket-[0-9a-f]{{12}}-decision-{decision.pk}", sor.json()["puid"])
    error(api_for(moderator).get("/api/v1/decisions/999999/"), 404, "not_found")


def test_restricted_decisions_are_404_without_clearance(api_for, make_user, moderator):
    cleared = make_user("cs", "moderator", clearances=["csam"])
    case = CaseFactory(kind="csam")
    queue_claim(reviewer=cleared, queue_slug="csam")
    decision = decision_make(case_id=case.pk, reviewer=cleared, action="remove", rule="CS-1")
    assert api_for(cleared).get(f"/api/v1/decisions/{decision.pk}/").status_code == 200
    error(api_for(moderator).get(f"/api/v1/decisions/{decision.pk}/"), 404, "not_found")
    error(api_for(moderator).get(f"/api/v1/decisions/{decision.pk}/statement-of-reasons/"), 404, "not_found")


def test_quality_review_is_blind_over_http(api_for, moderator, make_user, always_qa):
    case = CaseFactory(kind="spam")
    queue_claim(reviewer=moderator, queue_slug="spam")
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    second = make_user("second", "moderator")
    assert api_for(moderator).get("/api/v1/quality-reviews/").json()["results"] == []  # not their own
    [row] = api_for(second).get("/api/v1/quality-reviews/").json()["results"]
    review = QualityReview.objects.get(decision=decision)
    assert row == {"id": review.pk, "case": case.pk, "status": "pending", "created_at": row["created_at"]}
    response = api_for(second).post(
        f"/api/v1/quality-reviews/{review.pk}/complete/", {"action": "remove"}, format="json"
    )
    assert response.json() == {"id": review.pk, "status": "done", "agrees": True}
