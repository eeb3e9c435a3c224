"""Threshold governance: blast radius, second-person approval, rollback, and the API around them."""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from docket.errors import DocketError
from policies.models import SignalSource, Threshold, ThresholdChange
from policies.services import (
    blast_radius,
    threshold_change_approve,
    threshold_change_propose,
    threshold_change_rollback_proposal,
)
from policies.thresholds import disposition_for
from tests.factories import SignalFactory, threat_class

pytestmark = pytest.mark.django_db

URL = "/api/v1/threshold-changes/"


def backfill(source, kind, scores, *, days_ago=1):
    at = timezone.now() - timedelta(days=days_ago)
    for score in scores:
        SignalFactory(source=source, threat_class=threat_class(kind), score=score, occurred_at=at)


def propose(actor, *, source="spam-clf", kind="spam", auto_action_at=0.8, review_at=0.3, reason="tune"):
    return threshold_change_propose(
        source_slug=source,
        threat_class_slug=kind,
        auto_action_at=auto_action_at,
        review_at=review_at,
        reason=reason,
        actor=actor,
    )


def radius_counts(change):
    keys = ("window_days", "signals", "newly_auto_actioned", "newly_queued", "newly_dropped")
    return {k: change.blast_radius[k] for k in keys}


# --- blast radius ---------------------------------------------------------------------------


@pytest.fixture
def spam_backfill(sources, set_threshold):
    """Spam classifier at auto 0.9 / review 0.5, with a week of known scores."""
    set_threshold("spam-clf", "spam", auto_action_at=0.9, review_at=0.5)
    src = sources["spam"]
    backfill(src, "spam", [0.1, 0.1, 0.3, 0.3, 0.3, 0.5, 0.55, 0.7, 0.85, 0.85, 0.9, 0.95, 0.99, 1.0])
    backfill(src, "spam", [0.2, 0.85], days_ago=8)  # outside the 7-day window
    backfill(src, "harassment", [0.85])  # another class
    backfill(sources["harassment"], "spam", [0.85])  # another source
    return src


def test_blast_radius_of_lowering_both_thresholds(spam_backfill, policy_admin):
    # old (0.9, 0.5): dropped 0.1 0.1 0.3 0.3 0.3 | queued 0.5 0.55 0.7 0.85 0.85 | auto 0.9 0.95 0.99 1.0
    # new (0.8, 0.3): dropped 0.1 0.1 | queued 0.3 0.3 0.3 0.5 0.55 0.7 | auto 0.85 0.85 0.9 0.95 0.99 1.0
    change = propose(policy_admin, auto_action_at=0.8, review_at=0.3)
    assert radius_counts(change) == {
        "window_days": 7,
        "signals": 14,
        "newly_auto_actioned": 2,
        "newly_queued": 3,
        "newly_dropped": 0,
    }
    assert change.blast_radius["before"] == {"queued": 5, "auto_actioned": 4, "held": 0, "below_threshold": 5}
    assert change.blast_radius["after"] == {"queued": 6, "auto_actioned": 6, "held": 0, "below_threshold": 2}
    assert (change.old_auto_action_at, change.old_review_at) == (0.9, 0.5)


def test_blast_radius_of_switching_automation_off_and_raising_review(spam_backfill, policy_admin):
    # new (none, 0.6): dropped 0.1 0.1 0.3 0.3 0.3 0.5 0.55 | queued 0.7 0.85 0.85 0.9 0.95 0.99 1.0
    change = propose(policy_admin, auto_action_at=None, review_at=0.6)
    assert radius_counts(change) == {
        "window_days": 7,
        "signals": 14,
        "newly_auto_actioned": 0,
        "newly_queued": 4,
        "newly_dropped": 2,
    }


def test_blast_radius_respects_the_class_tolerance(sources, policy_admin):
    backfill(sources["harassment"], "harassment", [0.2, 0.6, 0.95, 0.99])
    change = propose(policy_admin, source="harassment-clf", kind="harassment", auto_action_at=0.5, review_at=0.5)
    # automation none: 0.6, 0.95, 0.99 stay with humans; 0.2 is newly dropped
    assert radius_counts(change) == {
        "window_days": 7,
        "signals": 4,
        "newly_auto_actioned": 0,
        "newly_queued": 0,
        "newly_dropped": 1,
    }


def test_blast_radius_agrees_with_disposition_for_signal_by_signal(sources, set_threshold, policy_admin):
    """The aggregate query and the intake rule, applied to each stored signal, give the same counts."""
    rng = random.Random(8)
    src = sources["ato"]
    set_threshold("login-risk", "ato", auto_action_at=0.75, review_at=0.4)
    edges = [0.0, 0.2, 0.4, 0.6, 0.75, 0.9, 1.0]
    scores = [rng.choice(edges) if rng.random() < 0.3 else round(rng.random(), 3) for _ in range(400)]
    backfill(src, "ato", scores)
    old = Threshold.objects.get(source=src, threat_class=threat_class("ato"))
    for auto_at, review_at in [(0.6, 0.2), (0.9, 0.6), (None, 0.0), (0.4, 0.4), (1.0, 0.0), (0.75, 0.4)]:
        new = Threshold(auto_action_at=auto_at, review_at=review_at)
        expected = {"newly_auto_actioned": 0, "newly_queued": 0, "newly_dropped": 0}
        for score in scores:
            common = {
                "score": score,
                "source_kind": "rule",
                "source_status": "healthy",
                "threat_class": threat_class("ato"),
                "holdout_draw": None,
            }
            before, after = disposition_for(threshold=old, **common), disposition_for(threshold=new, **common)
            if before != after:
                key = {"auto_actioned": "newly_auto_actioned", "queued": "newly_queued"}.get(after, "newly_dropped")
                expected[key] += 1
        radius = blast_radius(source=src, threat_class=threat_class("ato"), auto_action_at=auto_at, review_at=review_at)
        assert {k: radius[k] for k in expected} == expected, (auto_at, review_at)
        assert radius["signals"] == 400


def test_blast_radius_counts_unscored_signals_once(policy_admin):
    reports = SignalSource.objects.get(slug="user-reports")
    backfill(reports, "spam", [None, None, None])
    change = propose(policy_admin, source="user-reports", auto_action_at=None, review_at=0.5)
    # unscored reports always reach a human, whatever the threshold
    assert radius_counts(change)["signals"] == 3
    assert change.blast_radius["after"]["queued"] == 3
    assert change.blast_radius["newly_dropped"] == 0


# --- approval -------------------------------------------------------------------------------


def test_approval_by_another_admin_applies_the_change(sources, policy_admin, second_admin):
    change = propose(policy_admin, auto_action_at=0.8, review_at=0.3)
    assert not Threshold.objects.exists()  # nothing moves on a proposal

    threshold_change_approve(change_id=change.pk, actor=second_admin)

    threshold = Threshold.objects.get()
    assert (threshold.source.slug, threshold.threat_class.slug) == ("spam-clf", "spam")
    assert (threshold.auto_action_at, threshold.review_at) == (0.8, 0.3)
    change.refresh_from_db()
    assert (change.status, change.approved_by, change.proposed_by) == ("applied", second_admin, policy_admin)
    assert change.decided_at is not None


def test_self_approval_is_refused_and_changes_nothing(sources, policy_admin, unchanged):
    change = propose(policy_admin)
    with unchanged():
        with pytest.raises(DocketError) as exc:
            threshold_change_approve(change_id=change.pk, actor=policy_admin)
    assert (exc.value.code, exc.value.status) == ("self_approval", 403)


def test_stale_proposal_is_refused(sources, policy_admin, second_admin, unchanged):
    first = propose(policy_admin, auto_action_at=0.8, review_at=0.3)
    second = propose(policy_admin, auto_action_at=0.95, review_at=0.5)
    threshold_change_approve(change_id=first.pk, actor=second_admin)

    with unchanged(), pytest.raises(DocketError) as exc:
        threshold_change_approve(change_id=second.pk, actor=second_admin)
    assert (exc.value.code, exc.value.status) == ("stale_proposal", 409)


def test_rollback_proposes_the_old_values(sources, set_threshold, policy_admin, second_admin):
    set_threshold("spam-clf", "spam", auto_action_at=0.9, review_at=0.5)
    change = propose(policy_admin, auto_action_at=0.7, review_at=0.2)
    threshold_change_approve(change_id=change.pk, actor=second_admin)

    rollback = threshold_change_rollback_proposal(change_id=change.pk, actor=second_admin)
    assert (rollback.status, rollback.auto_action_at, rollback.review_at) == ("proposed", 0.9, 0.5)
    assert (rollback.old_auto_action_at, rollback.old_review_at) == (0.7, 0.2)
    assert rollback.reason == f"Rollback of threshold change {change.pk}."
    threshold_change_approve(change_id=rollback.pk, actor=policy_admin)
    threshold = Threshold.objects.get()
    assert (threshold.auto_action_at, threshold.review_at) == (0.9, 0.5)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_approvals_of_one_pair_apply_exactly_one(sources, policy_admin, second_admin):
    a = propose(policy_admin, auto_action_at=0.8, review_at=0.3)
    b = propose(policy_admin, auto_action_at=0.6, review_at=0.1)
    barrier = threading.Barrier(2)
    outcomes = {}

    def approve(change):
        try:
            barrier.wait()
            threshold_change_approve(change_id=change.pk, actor=second_admin)
            outcomes[change.pk] = "applied"
        except Exception as e:
            outcomes[change.pk] = getattr(e, "code", repr(e))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["applied", "stale_proposal"]
    winner = ThresholdChange.objects.get(status="applied")
    threshold = Threshold.objects.get()
    assert (threshold.auto_action_at, threshold.review_at) == (winner.auto_action_at, winner.review_at)
    assert ThresholdChange.objects.filter(status="proposed").count() == 1


# --- API ------------------------------------------------------------------------------------


def test_api_propose_answers_201_with_the_blast_radius(spam_backfill, api_for, policy_admin):
    body = {"source": "spam-clf", "threat_class": "spam", "auto_action_at": 0.8, "review_at": 0.3, "reason": "tune"}
    response = api_for(policy_admin).post(URL, body, format="json")
    assert response.status_code == 201
    data = response.json()
    change = ThresholdChange.objects.get(pk=data["id"])
    assert change.proposed_by == policy_admin
    assert data["status"] == "proposed"
    assert {k: data["blast_radius"][k] for k in radius_counts(change)} == {
        "window_days": 7,
        "signals": 14,
        "newly_auto_actioned": 2,
        "newly_queued": 3,
        "newly_dropped": 0,
    }
    assert (data["source"], data["threat_class"], data["proposed_by"]) == ("spam-clf", "spam", "padmin")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"source": "nope", "threat_class": "spam"}, "unknown_source", None),
        ({"threat_class": "nope"}, "unknown_threat_class", None),
        ({"review_at": 1.5}, "invalid", "review_at"),
        ({"review_at": -0.1}, "invalid", "review_at"),
        ({"auto_action_at": 0.2, "review_at": 0.5}, "invalid", "auto_action_at"),
        ({"auto_action_at": 7}, "invalid", "auto_action_at"),
        ({"reason": "  "}, "invalid", "reason"),
        ({"review_at": "high"}, "invalid", "review_at"),
        ({"review_at": None}, "invalid", "review_at"),
        ({"source": ["spam-clf"]}, "invalid", "source"),
        ({"reason": None}, "invalid", "reason"),
    ],
)
def test_api_propose_refuses_bad_input_and_stores_nothing(sources, api_for, policy_admin, unchanged, body, code, field):
    full = {"source": "spam-clf", "threat_class": "spam", "auto_action_at": 0.9, "review_at": 0.5, "reason": "r"}
    with unchanged():
        response = api_for(policy_admin).post(URL, {**full, **body}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    if field:
        assert field in response.json()["errors"]


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "null", '{"review_at": NaN}', "{}"])
def test_api_propose_survives_malformed_bodies(sources, api_for, policy_admin, unchanged, raw):
    with unchanged():
        response = api_for(policy_admin).generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert "code" in response.json()


def test_api_approve_by_second_admin_and_refusals(sources, api_for, policy_admin, second_admin, moderator, unchanged):
    change = propose(policy_admin)
    approve = f"{URL}{change.pk}/approve/"
    with unchanged():
        own = api_for(policy_admin).post(approve)
        not_admin = api_for(moderator).post(approve)
        missing = api_for(second_admin).post(f"{URL}999999/approve/")
    assert (own.status_code, own.json()["code"]) == (403, "self_approval")
    assert (not_admin.status_code, not_admin.json()["code"]) == (403, "forbidden")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")

    response = api_for(second_admin).post(approve)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["approved_by"]) == ("applied", "padmin2")
    assert Threshold.objects.get().auto_action_at == 0.8

    with unchanged():
        again = api_for(second_admin).post(approve)
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")


def test_api_non_admins_cannot_propose_or_read(sources, api_for, moderator, senior, platform, unchanged):
    body = {"source": "spam-clf", "threat_class": "spam", "auto_action_at": 0.9, "review_at": 0.5, "reason": "r"}
    for user in (moderator, senior, platform):
        with unchanged():
            assert api_for(user).post(URL, body, format="json").status_code == 403
        assert api_for(user).get(URL).json()["code"] == "forbidden"
        assert api_for(user).get("/api/v1/thresholds/").status_code == 403
    assert api_for(None).get("/api/v1/thresholds/").status_code in (401, 403)


def test_api_lists_thresholds_and_changes_in_bounded_queries(
    sources, set_threshold, api_for, policy_admin, django_assert_max_num_queries
):
    for slug, kind in [("spam-clf", "spam"), ("login-risk", "ato"), ("photo-hash", "csam")]:
        set_threshold(slug, kind, auto_action_at=0.9, review_at=0.5)
    propose(policy_admin, auto_action_at=0.5, review_at=0.1)
    client = api_for(policy_admin)
    with django_assert_max_num_queries(6):
        thresholds = client.get("/api/v1/thresholds/").json()
    assert thresholds["count"] == 3
    assert thresholds["results"][0] == {
        "id": thresholds["results"][0]["id"],
        "source": "login-risk",
        "threat_class": "ato",
        "auto_action_at": 0.9,
        "review_at": 0.5,
        "automation": "reversible",
        "auto_action": "lock",
        "updated_at": thresholds["results"][0]["updated_at"],
    }
    with django_assert_max_num_queries(6):
        changes = client.get(URL, {"status": "proposed"}).json()
    assert [c["status"] for c in changes["results"]] == ["proposed"]
    assert client.get(URL).json()["count"] == 3  # not the csam change: its class is hidden from this admin
    assert client.get("/api/v1/thresholds/", {"threat_class": "csam"}).json()["count"] == 1  # values: configuration


def test_api_rollback_and_reject(sources, api_for, policy_admin, second_admin):
    change = propose(policy_admin, auto_action_at=0.8, review_at=0.3)
    api_for(second_admin).post(f"{URL}{change.pk}/approve/")
    response = api_for(policy_admin).post(f"{URL}{change.pk}/rollback/")
    assert response.status_code == 201
    rollback = response.json()
    # there was no threshold before: rollback proposes the default (review everything, automate nothing)
    assert (rollback["auto_action_at"], rollback["review_at"], rollback["status"]) == (None, 0.0, "proposed")
    rejected = api_for(second_admin).post(f"{URL}{rollback['id']}/reject/")
    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected")
    assert Threshold.objects.get().auto_action_at == 0.8
