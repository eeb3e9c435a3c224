"""The appeals API as API.md describes it: list, detail, claim, resolve, release."""

from datetime import timedelta

import pytest
from django.utils import timezone

from appeals.models import Appeal
from casework.models import CaseEvent
from reviews.models import Decision, Enforcement
from tests.appeals.conftest import appeal_on, decide_for_real, decided

pytestmark = pytest.mark.django_db


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


def test_list_is_for_appeals_staff_with_a_status_filter(decider, appeals_staff, api_for, platform, moderator):
    waiting = appeal_on(decided(reviewer=decider.reviewer), received_at=timezone.now() - timedelta(hours=2))
    held = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
    client = api_for(appeals_staff)

    everything = client.get("/api/v1/appeals/").json()
    received = client.get("/api/v1/appeals/", {"status": "received"}).json()
    in_review = client.get("/api/v1/appeals/", {"status": "in_review"}).json()

    assert everything["count"] == 2
    assert [a["id"] for a in everything["results"]] == [waiting.pk, held.pk]
    assert [a["id"] for a in received["results"]] == [waiting.pk]
    assert [a["id"] for a in in_review["results"]] == [held.pk]
    row = in_review["results"][0]
    assert row == {
        "id": held.pk,
        "decision": held.decision_id,
        "case": held.decision.case_id,
        "threat_class": "spam",
        "original_action": "remove",
        "appellant": "u-owner",
        "statement": "no",
        "language": "en",
        "status": "in_review",
        "received_at": iso(held.received_at),
        "deadline": iso(held.deadline),
        "assigned_to": "appeals-1",
        "claimed_at": iso(held.claimed_at),
        "outcome": None,
        "new_action": None,
        "new_decision": None,
        "rationale": "",
        "resolved_by": None,
        "resolved_at": None,
    }
    assert client.get("/api/v1/appeals/", {"status": "lost"}).json()["code"] == "invalid"
    for outsider in (platform, moderator):
        response = api_for(outsider).get("/api/v1/appeals/")
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")


def test_list_has_a_constant_query_count(decider, appeals_staff, api_for, django_assert_max_num_queries):
    for _ in range(30):
        appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)
    client = api_for(appeals_staff)

    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/appeals/")

    assert response.json()["count"] == 30


def test_restricted_appeals_are_invisible_without_clearance(make_user, appeals_staff, api_for):
    senior = make_user("cib-senior", "senior,moderator", clearances=["cib"])
    cleared = make_user("cleared", "appeals", clearances=["cib"])
    hidden = appeal_on(decided(kind="cib", reviewer=senior.reviewer))
    plain = appeal_on(decided(kind="spam", reviewer=senior.reviewer))

    seen = api_for(appeals_staff).get("/api/v1/appeals/").json()
    detail = api_for(appeals_staff).get(f"/api/v1/appeals/{hidden.pk}/")
    claim = api_for(appeals_staff).post("/api/v1/appeals/claim/")
    again = api_for(appeals_staff).post("/api/v1/appeals/claim/")

    assert [a["id"] for a in seen["results"]] == [plain.pk]
    assert (detail.status_code, detail.json()["code"]) == (404, "not_found")
    assert claim.json()["appeal"] == plain.pk
    assert again.status_code == 204
    assert Appeal.objects.get(pk=hidden.pk).status == "received"
    assert sorted(a["id"] for a in api_for(cleared).get("/api/v1/appeals/").json()["results"]) == sorted(
        [hidden.pk, plain.pk]
    )
    assert api_for(cleared).get(f"/api/v1/appeals/{hidden.pk}/").status_code == 200


def test_claim_answers_201_with_the_appeal_then_204(decider, appeals_staff, api_for):
    appeal = appeal_on(decided(reviewer=decider.reviewer))
    client = api_for(appeals_staff)

    first = client.post("/api/v1/appeals/claim/")
    second = client.post("/api/v1/appeals/claim/")

    assert first.status_code == 201
    body = first.json()
    assert body["appeal"] == appeal.pk
    assert body["status"] == "in_review"
    assert body["assigned_to"] == "appeals-1"
    assert body["outcome_statement"] is None
    assert body["deadline"] == iso(appeal.deadline)
    assert body["claimed_at"] and body["deadline"]
    assert second.status_code == 204
    assert second.content == b""


def test_claim_is_for_the_appeals_role(moderator, api_for, platform, decider):
    appeal_on(decided(reviewer=decider.reviewer))
    for user in (moderator, platform):
        response = api_for(user).post("/api/v1/appeals/claim/")
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert Appeal.objects.get().status == "received"


def test_overturn_through_the_api_serves_the_outcome_statement(decider, appeals_staff, platform, api_for):
    decision = decide_for_real(decider)
    filed = api_for(platform).post(
        "/api/v1/appeals/", {"decision": decision.pk, "appellant": "u-owner", "statement": "Mine."}, format="json"
    )
    appeal_id = filed.json()["id"]
    staff = api_for(appeals_staff)
    assert staff.post("/api/v1/appeals/claim/").json()["appeal"] == appeal_id

    response = staff.post(
        f"/api/v1/appeals/{appeal_id}/resolve/",
        {"outcome": "overturned", "action": None, "rationale": "The links were to the user's own shop."},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["outcome"], body["resolved_by"]) == ("resolved", "overturned", "appeals-1")
    version = decision.policy_version
    assert body["outcome_statement"] == {
        "appeal": appeal_id,
        "decision": decision.pk,
        "outcome": "overturned",
        "original_action": "remove",
        "new_action": "no_violation",
        "new_decision": None,
        "reasons": "The links were to the user's own shop.",
        "policy": {
            "slug": "spam",
            "name": "Spam",
            "version": version.number,
            "rule": "SP-1",
            "rule_title": "Commercial spam",
        },
        "decided_by_human": True,
        "resolved_at": Appeal.objects.get(pk=appeal_id).resolved_at.isoformat(),
        "redress": [
            {
                "kind": "out_of_court_settlement",
                "description": "a certified out-of-court dispute settlement body of your choice (Art. 21 DSA)",
            },
            {"kind": "judicial_redress", "description": "the competent courts under the law that applies to you"},
        ],
    }
    assert Decision.objects.get(pk=decision.pk).overturned is True
    assert (
        api_for(platform).get(f"/api/v1/appeals/{appeal_id}/").json()["outcome_statement"] == body["outcome_statement"]
    )
    decision_api = staff.get(f"/api/v1/decisions/{decision.pk}/")
    if decision_api.status_code == 200:  # the reviews API shows it overturned too
        assert decision_api.json()["overturned"] is True


def test_modify_through_the_api(decider, appeals_staff, platform, api_for):
    decision = decide_for_real(decider)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer)

    response = api_for(appeals_staff).post(
        f"/api/v1/appeals/{appeal.pk}/resolve/",
        {"outcome": "modified", "action": "label", "rule": "SP-2", "rationale": "A label is enough."},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    new = Decision.objects.get(pk=body["new_decision"])
    assert (body["outcome"], body["new_action"], new.action, new.rule) == ("modified", "label", "label", "SP-2")
    assert body["outcome_statement"]["policy"]["rule"] == "SP-2"
    assert body["outcome_statement"]["new_action"] == "label"


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"outcome": "modified", "action": "legal_report", "rationale": "x"}, 400, "action_not_allowed"),
        ({"outcome": "modified", "action": "explode", "rationale": "x"}, 400, "action_not_allowed"),
        ({"outcome": "modified", "action": "suspend", "rationale": "x"}, 400, "invalid"),
        ({"outcome": "modified", "action": "label", "rule": "XX-9", "rationale": "x"}, 400, "invalid"),
        ({"outcome": "dismissed", "rationale": "x"}, 400, "invalid"),
        ({"outcome": "upheld"}, 400, "invalid"),
        ({"outcome": "upheld", "rationale": "x", "duration_days": 0}, 400, "invalid"),
        ({"outcome": ["upheld"], "rationale": "x"}, 400, "invalid"),
        ([], 400, "invalid"),
        ("upheld", 400, "invalid"),
    ],
)
def test_bad_resolutions_answer_4xx_and_change_nothing(decider, appeals_staff, api_for, body, status, code):
    decision = decide_for_real(decider)
    appeal = appeal_on(decision, holder=appeals_staff.reviewer)
    before = (Decision.objects.count(), Enforcement.objects.count(), CaseEvent.objects.count())

    response = api_for(appeals_staff).post(f"/api/v1/appeals/{appeal.pk}/resolve/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert Appeal.objects.get(pk=appeal.pk).status == "in_review"
    assert (Decision.objects.count(), Enforcement.objects.count(), CaseEvent.objects.count()) == before


def test_resolve_refusals_over_the_api(make_user, decider, appeals_staff, appeals_staff_2, api_for):
    both = make_user("mod-and-appeals", "moderator,appeals")
    mine = appeal_on(decided(reviewer=both.reviewer), holder=appeals_staff.reviewer)
    body = {"outcome": "overturned", "rationale": "x"}

    conflicted = api_for(both).post(f"/api/v1/appeals/{mine.pk}/resolve/", body, format="json")
    not_holder = api_for(appeals_staff_2).post(f"/api/v1/appeals/{mine.pk}/resolve/", body, format="json")
    missing = api_for(appeals_staff).post("/api/v1/appeals/999999/resolve/", body, format="json")
    moderator = api_for(decider).post(f"/api/v1/appeals/{mine.pk}/resolve/", body, format="json")

    assert (conflicted.status_code, conflicted.json()["code"]) == (403, "conflict_of_interest")
    assert (not_holder.status_code, not_holder.json()["code"]) == (403, "not_assignee")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (moderator.status_code, moderator.json()["code"]) == (403, "forbidden")
    assert Appeal.objects.get(pk=mine.pk).status == "in_review"


def test_release_over_the_api(decider, appeals_staff, appeals_staff_2, api_for):
    appeal = appeal_on(decided(reviewer=decider.reviewer), holder=appeals_staff.reviewer)

    other = api_for(appeals_staff_2).post(f"/api/v1/appeals/{appeal.pk}/release/")
    mine = api_for(appeals_staff).post(f"/api/v1/appeals/{appeal.pk}/release/")

    assert (other.status_code, other.json()["code"]) == (403, "not_assignee")
    assert (mine.status_code, mine.json()["status"], mine.json()["assigned_to"]) == (200, "received", None)
