"""Guard metrics: hand-computed values, an empty system, restricted classes, the cache."""

import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from appeals.models import Appeal
from casework import events
from casework.models import SourceIncident
from casework.services import case_event_add
from docket.periodic import jobs
from oversight import metrics
from oversight.metrics import compute_snapshot, metrics_snapshot, wilson_interval
from reviews.models import Decision, Enforcement, QualityReview
from tests.factories import CaseFactory, SourceFactory, active_version

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)
# A constant number of aggregate queries, whatever the volume.
QUERY_BOUND = 24


def by_slug(rows):
    return {r["slug"]: r for r in rows}


def decided_case(kind, *, created_hours_ago, acted_hours_ago, now, holdout=False):
    created = now - created_hours_ago * HOUR
    acted = now - acted_hours_ago * HOUR
    return CaseFactory(
        kind=kind,
        first_signal_at=created,
        status="decided",
        first_action_at=acted,
        decided_at=acted,
        holdout=holdout,
    )


def decide(case, *, action, reviewer=None, holdout=False, overturned=False):
    return Decision.objects.create(
        case=case,
        reviewer=reviewer,
        automated=reviewer is None,
        action=action,
        rule="SP-1" if action != "no_violation" else "",
        policy_version=active_version(case.threat_class.slug),
        holdout=holdout,
        overturned=overturned,
        overturned_at=case.decided_at if overturned else None,
        created_at=case.decided_at,
    )


def resolved_appeal(decision, *, outcome, by, now):
    return Appeal.objects.create(
        decision=decision,
        appellant="u-appellant",
        received_at=now - HOUR,
        deadline=now + 72 * HOUR,
        status="resolved",
        outcome=outcome,
        resolved_by=by,
        resolved_at=now,
    )


def qa(decision, *, by, agrees, now):
    return QualityReview.objects.create(
        decision=decision,
        reviewer=by,
        status="done",
        action=decision.action if agrees else "no_violation",
        agrees=agrees,
        created_at=now,
        completed_at=now,
    )


@pytest.fixture
def scenario(make_user):
    """Spam, by hand (SLA 72 h; times in hours before now):

    case  created  first action  decision                         notes
    A     10       9   (3600 s)   r1 remove, holdout               appealed: overturned; QA agrees
    B     20       10  (36000 s)  r2 no_violation, holdout
    C     100      1   (356400 s) automation remove (late: 99 h)   appealed: upheld; delivery failed
    F     5        4   (3600 s)   r1 remove                        QA disagrees
    D     80       -              open, past its SLA (due 8 h ago)
    E     1        -              open
    """
    now = timezone.now()
    r1 = make_user("r1", "moderator").reviewer
    r2 = make_user("r2", "moderator").reviewer
    appeals_staff = make_user("ap", "appeals").reviewer
    a = decided_case("spam", created_hours_ago=10, acted_hours_ago=9, now=now, holdout=True)
    b = decided_case("spam", created_hours_ago=20, acted_hours_ago=10, now=now, holdout=True)
    c = decided_case("spam", created_hours_ago=100, acted_hours_ago=1, now=now)
    f = decided_case("spam", created_hours_ago=5, acted_hours_ago=4, now=now)
    CaseFactory(kind="spam", first_signal_at=now - 80 * HOUR)
    CaseFactory(kind="spam", first_signal_at=now - 1 * HOUR)
    CaseFactory(kind="harassment", first_signal_at=now - 2 * HOUR)
    CaseFactory(kind="csam", first_signal_at=now - 2 * HOUR)
    da = decide(a, action="remove", reviewer=r1, holdout=True, overturned=True)
    db = decide(b, action="no_violation", reviewer=r2, holdout=True)
    dc = decide(c, action="remove")
    df = decide(f, action="remove", reviewer=r1)
    resolved_appeal(da, outcome="overturned", by=appeals_staff, now=now)
    resolved_appeal(dc, outcome="upheld", by=appeals_staff, now=now)
    qa(da, by=r2, agrees=True, now=now)
    qa(df, by=r2, agrees=False, now=now)
    Enforcement.objects.create(
        decision=dc,
        action="remove",
        status="failed",
        attempts=8,
        last_error="HTTP 500",
        next_attempt_at=now,
        created_at=now,
    )
    Enforcement.objects.create(decision=df, action="remove", next_attempt_at=now, created_at=now)
    source = SourceFactory(slug="spam-classifier")
    SourceIncident.objects.create(source=source, kind="rate_spike", detail={"rate": 40}, opened_at=now)
    return {"now": now, "decisions": {"A": da, "B": db, "C": dc, "F": df}}


def test_threat_class_metrics_match_the_hand_computed_scenario(scenario, django_assert_max_num_queries):
    with django_assert_max_num_queries(QUERY_BOUND):
        snapshot = compute_snapshot(clearances=frozenset(), now=scenario["now"])
    spam = by_slug(snapshot["threat_classes"])["spam"]
    assert spam["open"] == 2
    assert spam["breaching"] == 1
    assert spam["created"] == 6
    assert spam["acted"] == 4
    # met: A, B, F; due: A, B, C, F (acted) and D (past due, not acted)
    assert spam["sla_compliance"] == 3 / 5
    # first-action times 3600, 3600, 36000, 356400: median between the middle two, p90 at rank 2.7
    assert spam["time_to_action_p50_s"] == pytest.approx(19800)
    assert spam["time_to_action_p90_s"] == pytest.approx(36000 + 0.7 * (356400 - 36000))
    assert spam["decisions"] == 4
    assert spam["automated_decisions"] == 1
    assert spam["appeal_rate"] == 2 / 3  # A and C appealed, of violations A, C, F
    assert spam["appeals_resolved"] == 2
    assert spam["overturn_rate"] == 1 / 2
    assert spam["qa_reviews"] == 2
    assert spam["qa_agreement"] == 1 / 2
    # holdout: A (human found a violation) and B (human found none)
    assert spam["auto_action_precision"] == {
        "estimate": 0.5,
        "low": pytest.approx(0.0945312, abs=1e-6),
        "high": pytest.approx(0.9054688, abs=1e-6),
        "n": 2,
    }
    harassment = by_slug(snapshot["threat_classes"])["harassment"]
    assert harassment["open"] == 1
    assert harassment["sla_compliance"] is None  # nothing acted on or due yet
    assert harassment["time_to_action_p50_s"] is None


def test_version_reviewer_delivery_and_incident_metrics(scenario):
    snapshot = compute_snapshot(clearances=frozenset(), now=scenario["now"])
    spam_v1 = next(v for v in snapshot["policy_versions"] if v["threat_class"] == "spam")
    assert spam_v1["number"] == 1
    assert spam_v1["status"] == "active"
    assert spam_v1["decisions"] == 4
    assert spam_v1["automated_decisions"] == 1
    assert spam_v1["overturn_share"] == 1 / 4
    assert spam_v1["qa_agreement"] == 1 / 2
    assert spam_v1["auto_action_precision"]["n"] == 2
    assert spam_v1["relabel"] == {"pending": 0, "done": 0, "agreement": None}

    assert snapshot["reviewers"] == [
        {
            "reviewer": "r1",
            "decisions": 2,
            "violation_share": 1.0,
            "overturned": 1,
            "qa_reviews": 2,
            "qa_agreement": 0.5,
        },
        {
            "reviewer": "r2",
            "decisions": 1,
            "violation_share": 0.0,
            "overturned": 0,
            "qa_reviews": 0,
            "qa_agreement": None,
        },
    ]
    enforcement = snapshot["enforcement"]
    assert (enforcement["pending"], enforcement["failed"], enforcement["retrying"]) == (1, 1, 0)
    assert enforcement["recent_failures"] == [
        {
            "id": str(Enforcement.objects.get(status="failed").public_id),
            "decision": scenario["decisions"]["C"].pk,
            "kind": "enforce",
            "action": "remove",
            "attempts": 8,
            "last_error": "HTTP 500",
        }
    ]
    assert [(i["source"], i["kind"]) for i in snapshot["incidents"]] == [("spam-classifier", "rate_spike")]
    assert len(snapshot["series"]) == 14
    assert sum(day["created"] for day in snapshot["series"]) == 6 + 1  # spam cases in the last 14 days + harassment


def test_queues_and_sources_are_those_of_their_endpoints(scenario, moderator, api_for):
    snapshot = compute_snapshot(clearances=frozenset(), now=scenario["now"])
    listed = api_for(moderator).get("/api/v1/queues/").json()["results"]
    without_wait = lambda rows: [{k: v for k, v in r.items() if k != "oldest_wait_seconds"} for r in rows]  # noqa: E731
    assert without_wait(snapshot["queues"]) == without_wait(listed)
    assert by_slug(snapshot["queues"])["spam"]["depth"] == 2
    assert snapshot["sources"] == api_for(moderator).get("/api/v1/sources/").json()["results"]
    assert by_slug(snapshot["sources"])["spam-classifier"]["status"] == "healthy"


def test_metrics_of_an_empty_system_are_zeros_and_nulls(django_assert_max_num_queries):
    with django_assert_max_num_queries(QUERY_BOUND):
        snapshot = compute_snapshot(clearances=frozenset({"csam", "cib"}))
    assert [c["slug"] for c in snapshot["threat_classes"]] == [
        "csam",
        "ato",
        "payment_fraud",
        "cib",
        "harassment",
        "spam",
    ]
    for row in snapshot["threat_classes"]:
        assert row["open"] == 0
        assert row["sla_compliance"] is None
        assert row["time_to_action_p50_s"] is None
        assert row["time_to_action_p90_s"] is None
        assert row["overturn_rate"] is None
        assert row["qa_agreement"] is None
        assert row["appeal_rate"] is None
        assert row["auto_action_precision"] == {"estimate": None, "low": None, "high": None, "n": 0}
    assert all(q["depth"] == 0 and q["forecast_drain_hours"] is None for q in snapshot["queues"])
    assert snapshot["reviewers"] == []
    assert snapshot["enforcement"] == {"pending": 0, "failed": 0, "retrying": 0, "recent_failures": []}
    assert snapshot["incidents"] == []
    assert all(day == {**day, "created": 0, "acted": 0, "within_sla": 0} for day in snapshot["series"])
    assert [v["number"] for v in snapshot["policy_versions"]] == [1] * 6


def test_metrics_endpoint_hides_restricted_classes_without_clearance(scenario, api_for, moderator, senior):
    seen_by_moderator = api_for(moderator).get("/api/v1/metrics/")
    assert seen_by_moderator.status_code == 200
    body = seen_by_moderator.json()
    assert set(body) >= {"generated_at", "threat_classes", "queues", "sources"}
    assert [c["slug"] for c in body["threat_classes"]] == ["ato", "payment_fraud", "harassment", "spam"]
    assert {"csam", "cib"}.isdisjoint(q["slug"] for q in body["queues"])
    assert all(v["threat_class"] not in ("csam", "cib") for v in body["policy_versions"])

    # the senior is cleared: a separate cache entry, with the restricted classes
    body = api_for(senior).get("/api/v1/metrics/").json()
    classes = by_slug(body["threat_classes"])
    assert set(classes) == {"csam", "ato", "payment_fraud", "cib", "harassment", "spam"}
    assert classes["csam"]["open"] == 1
    assert {"csam", "cib"} <= {q["slug"] for q in body["queues"]}


def test_metrics_endpoint_is_for_staff_only(api_for, platform):
    response = api_for(platform).get("/api/v1/metrics/")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert api_for(None).get("/api/v1/metrics/").status_code in (401, 403)


def test_a_writer_sees_its_own_changes_and_they_are_never_cached(moderator, monkeypatch):
    stored = []
    monkeypatch.setattr(metrics.cache, "set", lambda *args, **kwargs: stored.append(args))
    assert by_slug(metrics_snapshot(moderator)["threat_classes"])["spam"]["open"] == 0
    CaseFactory(kind="spam")
    assert by_slug(metrics_snapshot(moderator)["threat_classes"])["spam"]["open"] == 1
    assert stored == []  # this transaction has uncommitted rows: nothing of it reaches the cache


def test_snapshot_is_cached_per_clearance_set(moderator, senior, monkeypatch):
    monkeypatch.setattr(metrics, "_writing_transaction", lambda: False)  # as a read-only request would be
    monkeypatch.setattr(metrics, "BUSY_SHARE", 1.0)  # no floor from the computation's cost: change alone decides
    keys = [metrics._cache_key(frozenset()), metrics._cache_key(frozenset({"csam", "cib"}))]
    cache.delete_many(keys)
    try:
        first = metrics_snapshot(moderator)
        assert metrics_snapshot(moderator)["generated_at"] == first["generated_at"]  # nothing changed: cached
        case = CaseFactory(kind="spam")  # a row written without an event: the cache may lag, briefly
        assert by_slug(metrics_snapshot(moderator)["threat_classes"])["spam"]["open"] == 0
        case_event_add(case=case, event=events.opened())  # every state change writes an event: a new snapshot
        fresh = metrics_snapshot(moderator)
        assert fresh["generated_at"] != first["generated_at"]
        assert by_slug(fresh["threat_classes"])["spam"]["open"] == 1
        cleared = metrics_snapshot(senior)  # another clearance set: its own entry
        assert "csam" in by_slug(cleared["threat_classes"])
        assert by_slug(cleared["threat_classes"])["spam"]["open"] == 1
    finally:
        cache.delete_many(keys)


def _stored_entry(clearances, **fields):
    """A stored snapshot for ``clearances`` as ``metrics._cached`` writes it, with ``fields`` overridden."""
    entry = {"snapshot": {"generated_at": "stored"}, "version": "old", "at": time.time(), "cost": 0.01, **fields}
    cache.set(metrics._cache_key(clearances), entry, 60)
    return entry


@pytest.fixture
def read_only(monkeypatch):
    monkeypatch.setattr(metrics, "_writing_transaction", lambda: False)
    keys = [metrics._cache_key(frozenset())]
    cache.delete_many(keys + [f"{k}:computing" for k in keys])
    yield
    cache.delete_many(keys + [f"{k}:computing" for k in keys])


def test_a_costly_snapshot_is_served_until_recomputing_it_fits_the_busy_share(moderator, read_only):
    # A snapshot that took 30 s (a large backlog), 60 s old, while the data changed meanwhile (a flood):
    # computing again now would spend a third of the time on metrics, so the stored one is served.
    _stored_entry(frozenset(), at=time.time() - 60, cost=30.0)
    assert metrics_snapshot(moderator) == {"generated_at": "stored"}
    # Old enough for its cost (30 s is 5% of 600 s): recomputed, and stored with what it cost.
    _stored_entry(frozenset(), at=time.time() - 600, cost=30.0)
    fresh = metrics_snapshot(moderator)
    assert fresh["generated_at"] != "stored"
    entry = cache.get(metrics._cache_key(frozenset()))
    assert entry["snapshot"] == fresh and 0 < entry["cost"] < 30 and entry["version"] == metrics._data_version()


def test_a_cheap_snapshot_follows_the_data(moderator, read_only):
    _stored_entry(frozenset(), at=time.time() - 5, cost=0.01)  # changed since, and 5 s is far over 19 x 10 ms
    assert metrics_snapshot(moderator)["generated_at"] != "stored"
    _stored_entry(frozenset(), version=metrics._data_version(), at=time.time() - 5, cost=0.01)
    assert metrics_snapshot(moderator) == {"generated_at": "stored"}  # unchanged and recent


def test_while_one_process_computes_others_are_served_the_stored_snapshot(moderator, read_only):
    _stored_entry(frozenset(), at=time.time() - 3600, cost=1.0)  # due
    cache.add(f"{metrics._cache_key(frozenset())}:computing", 1, 60)  # another process is computing it
    assert metrics_snapshot(moderator) == {"generated_at": "stored"}


def test_cache_outage_falls_back_to_computing(moderator, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(metrics.cache, "get", down)
    monkeypatch.setattr(metrics.cache, "set", down)
    CaseFactory(kind="spam")
    snapshot = metrics_snapshot(moderator)
    assert by_slug(snapshot["threat_classes"])["spam"]["open"] == 1


def test_refresh_warms_every_clearance_set(senior, moderator, monkeypatch):
    stored = {}
    monkeypatch.setattr(metrics.cache, "get", lambda key: None)
    monkeypatch.setattr(metrics.cache, "set", lambda key, value, timeout: stored.__setitem__(key, value))
    assert metrics.metrics_refresh() == 2  # none (the moderator, and users without a profile) and csam+cib
    assert {key.split(":")[3] for key in stored} == {"-", "cib,csam"}


def test_refresh_leaves_a_snapshot_alone_until_it_is_due(moderator, read_only):
    _stored_entry(frozenset(), at=time.time() - 60, cost=30.0)
    metrics.metrics_refresh()
    assert cache.get(metrics._cache_key(frozenset()))["snapshot"] == {"generated_at": "stored"}


def test_wilson_interval():
    assert wilson_interval(0, 0) == {"estimate": None, "low": None, "high": None, "n": 0}
    assert wilson_interval(2, 2)["high"] == 1.0
    assert wilson_interval(2, 2)["low"] == pytest.approx(0.3423802, abs=1e-6)
    estimate = wilson_interval(98, 100)
    assert estimate["estimate"] == 0.98
    assert estimate["low"] == pytest.approx(0.9300, abs=1e-4)
    assert estimate["high"] == pytest.approx(0.9945, abs=1e-4)


def test_refresh_runs_every_minute_with_the_other_periodic_jobs(monkeypatch):
    job = next(j for j in jobs() if j.name == "policies.tasks.refresh_metrics")
    assert job.seconds == 60
    monkeypatch.setattr(metrics.cache, "set", lambda *args, **kwargs: None)
    assert job.task.run() == 1  # no reviewer has clearances yet: one snapshot, for everyone
