"""Blind second reviews stay blind: while a QA review or a relabel of a decision is pending, every reviewer who
may do it (all but the decider) sees neither the decision nor its events, over the API and in the UI."""

import pytest
from django.utils import timezone

from reviews.models import QualityReview, RelabelItem
from reviews.services import decision_make, quality_review_complete, queue_claim
from tests.factories import CaseFactory, active_version
from tests.support import signed_in

pytestmark = pytest.mark.django_db

DECISION_EVENTS = {"decided"}


def sees(api, ui, case, decision):
    """What one user can read of the decision: the case's list, the decision, its statement, the timelines."""
    detail = api.get(f"/api/v1/cases/{case.pk}/").json()
    events = api.get(f"/api/v1/cases/{case.pk}/events/").json()["results"]
    page = ui.get(f"/cases/{case.pk}/")
    return {
        "case_decisions": detail["decisions"],
        "decision": api.get(f"/api/v1/decisions/{decision.pk}/").status_code,
        "statement": api.get(f"/api/v1/decisions/{decision.pk}/statement-of-reasons/").status_code,
        "events": sorted({e["kind"] for e in events} & DECISION_EVENTS),
        "page_decisions": [d.pk for d in page.context["decisions"]],
        "page_events": sorted({e.kind for e in page.context["events"]} & DECISION_EVENTS),
        "page_strikes": [st.decision_id for st in page.context["record"]["strikes"]],
        "recommended": detail["recommended_action"],
        "page_recommended": page.context["recommended"],
    }


def shown(decision):
    return {
        "case_decisions": [decision.pk],
        "decision": 200,
        "statement": 200,
        "events": ["decided"],
        "page_decisions": [decision.pk],
        "page_events": ["decided"],
        "page_strikes": [decision.pk],
        "recommended": "restrict",  # the step above the account's strike (remove) on the spam ladder
        "page_recommended": "restrict",  # the page steps up from the strikes it lists
    }


HIDDEN = {
    "case_decisions": [],
    "decision": 404,
    "statement": 404,
    "events": [],
    "page_decisions": [],
    "page_events": [],
    "page_strikes": [],
    "recommended": "label",  # the mildest violation: as for an account without strikes
    "page_recommended": "label",
}


@pytest.fixture
def decided(moderator, always_qa):
    case = CaseFactory(kind="spam")
    queue_claim(reviewer=moderator, queue_slug="spam")
    return case, decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")


@pytest.fixture
def reader(api_for, client_for):
    return lambda user: (api_for(user), client_for(user))


@pytest.fixture
def client_for():
    return signed_in


def test_a_pending_qa_review_hides_the_decision_from_its_possible_reviewers_until_done(
    decided, moderator, make_user, reader, senior
):
    case, decision = decided
    second = make_user("second", "moderator")
    assert QualityReview.objects.filter(decision=decision, status="pending").exists()

    assert sees(*reader(second), case, decision) == HIDDEN
    assert sees(*reader(senior), case, decision) == HIDDEN  # a senior may do it too
    assert sees(*reader(moderator), case, decision) == shown(decision)  # the decider is not blind to it

    quality_review_complete(review_id=QualityReview.objects.get(decision=decision).pk, reviewer=second, action="remove")
    assert sees(*reader(second), case, decision) == shown(decision)


def test_a_pending_relabel_hides_the_decision_from_appeals_staff_too(decided, make_user, api_for):
    case, decision = decided
    QualityReview.objects.filter(decision=decision).update(
        status="done", reviewer=make_user("qa", "moderator").reviewer, agrees=True, completed_at=timezone.now()
    )
    appeals = make_user("appeals-1", "appeals")
    policy_admin = make_user("padmin", "policy_admin")  # no reviewer profile: does no relabel
    assert api_for(appeals).get(f"/api/v1/decisions/{decision.pk}/").status_code == 200

    RelabelItem.objects.create(policy_version=active_version("spam"), decision=decision, created_at=timezone.now())
    assert api_for(appeals).get(f"/api/v1/decisions/{decision.pk}/").status_code == 404
    assert api_for(make_user("other", "moderator")).get(f"/api/v1/decisions/{decision.pk}/").status_code == 404
    assert api_for(policy_admin).get(f"/api/v1/decisions/{decision.pk}/").status_code == 200


def test_the_subject_history_leaves_out_a_decision_under_blind_review_and_its_strike(
    decided, moderator, make_user, api_for
):
    case, decision = decided
    path = f"/api/v1/subjects/account/{case.subject.external_id}/"

    def history(user):
        body = api_for(user).get(path).json()
        return [d["id"] for c in body["cases"] for d in c["decisions"]], [s["decision"] for s in body["strikes"]]

    assert history(make_user("second", "moderator")) == ([], [])
    assert history(moderator) == ([decision.pk], [decision.pk])
