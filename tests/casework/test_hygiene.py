"""Source health: baselines by hour of week, spikes, score shifts, corroboration, confirm and quarantine."""

import threading
from datetime import timedelta
from itertools import count

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework import hygiene
from casework.hygiene import (
    incidents_open,
    source_confirm,
    source_quarantine,
    source_register,
    sources_check_health,
    sources_health,
)
from casework.intake import signals_ingest
from casework.models import Case, CaseEvent, Signal, SourceIncident, Subject, SubjectAttribute
from policies.models import SignalSource
from tests.factories import CaseFactory, SourceFactory, threat_class
from tests.support import rows_fetched, run_threads

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
_ids = count()


def subjects(n, **attributes):
    """``n`` fresh accounts, each carrying the given attribute values (``link_domain="x.example"``)."""
    made = Subject.objects.bulk_create(
        [Subject(kind="account", external_id=f"h-{next(_ids)}", reach=10) for _ in range(n)]
    )
    SubjectAttribute.objects.bulk_create(
        [SubjectAttribute(subject=s, kind=k, value=v, seen_at=NOW) for s in made for k, v in attributes.items()]
    )
    return made


def add_signals(source, times, *, on=None, scores=None, kind="spam"):
    """Store signals of ``source`` at ``times`` (on fresh subjects unless ``on`` names them), as already received."""
    on = on if on is not None else subjects(len(times))
    tc = threat_class(kind)
    return Signal.objects.bulk_create(
        [
            Signal(
                source=source,
                external_id=f"x-{next(_ids)}",
                subject=subject,
                threat_class=tc,
                score=None if scores is None else scores[i % len(scores)],
                occurred_at=at,
                received_at=max(at, NOW),
                disposition="below_threshold",
            )
            for i, (at, subject) in enumerate(zip(times, on, strict=True))
        ]
    )


def normal_weeks(source, *, per_hour=5, weeks=4, scores=(0.2, 0.3, 0.4)):
    """A backfilled history: ``per_hour`` signals every hour of the past weeks (occurred_at spread out)."""
    step = timedelta(hours=1) / per_hour
    start = NOW - timedelta(weeks=weeks) - timedelta(hours=2)
    n = int((NOW - timedelta(hours=1) - start) / step)
    times = [start + i * step for i in range(n)]
    add_signals(source, times, scores=list(scores) if source.kind in SignalSource.SCORED_KINDS else None)


def last_hour(n):
    return [NOW - timedelta(minutes=59) + timedelta(seconds=i * 3540 // n) for i in range(n)]


@pytest.fixture
def classifier():
    return SourceFactory(slug="spam-model", kind="classifier", trust=0.9)


def test_baseline_counts_the_same_hour_of_week_by_occurred_at(classifier):
    normal_weeks(classifier, per_hour=5)
    add_signals(classifier, last_hour(7), scores=[0.3])

    (health,) = [h for h in sources_health(now=NOW) if h.source_id == classifier.pk]

    assert health.current == 7
    assert health.baseline == 5.0
    assert health.recent_scores["n"] == 7
    assert health.baseline_scores["n"] == 3354  # every scored signal of the 4 weeks before the hour


def test_normal_hour_changes_nothing(classifier):
    normal_weeks(classifier, per_hour=5)
    add_signals(classifier, last_hour(6), scores=[0.2, 0.3, 0.4])

    result = sources_check_health(now=NOW)

    classifier.refresh_from_db()
    assert result["suspect"] == [] and result["incidents"] == []
    assert classifier.status == "healthy"
    assert classifier.status_changed_at is None
    assert classifier.baseline_rate == 5.0
    assert classifier.current_rate == 6.0
    assert classifier.health_checked_at == NOW
    assert classifier.score_summary["anomaly"] is None
    assert SourceIncident.objects.count() == 0


def test_uncorroborated_20x_spike_makes_the_source_suspect(classifier):
    normal_weeks(classifier, per_hour=5)
    add_signals(classifier, last_hour(100), scores=[0.2, 0.3, 0.4])

    result = sources_check_health(now=NOW)

    classifier.refresh_from_db()
    assert result["suspect"] == ["spam-model"]
    assert classifier.status == "suspect"
    assert classifier.status_changed_at == NOW
    assert classifier.current_rate == 100.0
    assert classifier.baseline_rate == 5.0
    assert classifier.score_summary["anomaly"] == "rate_spike"
    assert classifier.score_summary["corroboration"]["corroborated_subjects"] == 0
    assert SourceIncident.objects.count() == 0
    assert list(incidents_open()) == []


def test_corroborated_spike_opens_one_incident_and_stays_healthy(classifier):
    reports = SignalSource.objects.get(slug="user-reports")
    normal_weeks(classifier, per_hour=5)
    spike = add_signals(classifier, last_hour(100), scores=[0.3])
    # users report a third of the same subjects within the hour (for another class: the subjects corroborate)
    add_signals(reports, last_hour(30), on=[s.subject for s in spike[:30]], kind="harassment")

    result = sources_check_health(now=NOW)
    again = sources_check_health(now=NOW + timedelta(minutes=5))

    classifier.refresh_from_db()
    assert result["incidents"] == ["spam-model"] and again["incidents"] == ["spam-model"]
    assert classifier.status == "healthy"
    (incident,) = incidents_open()
    assert incident.source == classifier
    assert incident.kind == "rate_spike"
    assert incident.opened_at == NOW
    assert incident.detail["corroboration"]["corroborated_subjects"] == 30
    assert SourceIncident.objects.count() == 1


# --- what corroborates a spike (HealthRules) ------------------------------------------------------------------


def week_old(source, *, per_hour=1, scores=(0.1, 0.2, 0.3)):
    """Six days of history: enough for a score distribution, none for a same-hour-of-week rate baseline."""
    normal_weeks(source, per_hour=per_hour, weeks=6 / 7, scores=scores)


def verdict(source):
    source.refresh_from_db()
    return source.status, source.score_summary["corroboration"]


def test_new_classifiers_spike_with_unrelated_same_class_reports_in_the_hour_is_held(classifier):
    reports = SignalSource.objects.get(slug="user-reports")
    week_old(classifier)
    add_signals(classifier, last_hour(400), scores=[0.99])
    add_signals(reports, last_hour(304))  # spam reports on other accounts; the reports have no history either

    result = sources_check_health(now=NOW)

    status, c = verdict(classifier)
    assert result["suspect"] == ["spam-model"] and result["incidents"] == []
    assert status == "suspect"
    assert classifier.score_summary["anomaly"] == "score_shift"
    assert c == {
        "subjects": 400,
        "corroborated_subjects": 0,
        "related_subjects": 0,
        "class_current": 0,  # a source without a baseline for the hour is no evidence of a rise
        "class_baseline": None,
        "class_factor": None,
        "spike_factor": None,
        "by": None,
    }
    assert classifier.score_summary["suspected"]["corroboration"] == c
    assert ingest("spam-model", 2)[0]["disposition"] == "held"


def test_new_classifiers_spike_with_reports_on_the_same_subjects_opens_an_incident(classifier):
    reports = SignalSource.objects.get(slug="user-reports")
    week_old(classifier)
    spike = add_signals(classifier, last_hour(400), scores=[0.99])
    add_signals(reports, last_hour(40), on=[s.subject for s in spike[:40]])  # 10% of the spike's subjects

    result = sources_check_health(now=NOW)

    status, c = verdict(classifier)
    assert result["incidents"] == ["spam-model"] and status == "healthy"
    assert (c["corroborated_subjects"], c["subjects"], c["by"]) == (40, 400, "same_subjects")
    incident = SourceIncident.objects.get(status="open")
    assert incident.kind == "score_shift"
    assert incident.detail["corroboration"]["by"] == "same_subjects"
    assert "suspected" not in classifier.score_summary


def test_one_subject_short_of_the_share_is_not_corroboration(classifier):
    reports = SignalSource.objects.get(slug="user-reports")
    week_old(classifier)
    spike = add_signals(classifier, last_hour(400), scores=[0.99])
    add_signals(reports, last_hour(39), on=[s.subject for s in spike[:39]])

    assert sources_check_health(now=NOW)["suspect"] == ["spam-model"]


def rising_reports(*, history_per_hour, in_hour, **attributes):
    """User reports with four weeks of history at ``history_per_hour``, then ``in_hour`` in the last hour."""
    reports = SignalSource.objects.get(slug="user-reports")
    normal_weeks(reports, per_hour=history_per_hour)
    add_signals(reports, last_hour(in_hour), on=subjects(in_hour, **attributes))
    return reports


def mature_spike(classifier, **attributes):
    """A 20x spike of a classifier with four weeks at 5 an hour, on accounts carrying ``attributes``."""
    normal_weeks(classifier, per_hour=5)
    add_signals(classifier, last_hour(100), on=subjects(100, **attributes), scores=[0.3])


def test_mature_sources_spike_during_a_proportional_related_class_rise_opens_an_incident(classifier):
    mature_spike(classifier, link_domain="cheap-followers.example")
    rising_reports(history_per_hour=2, in_hour=30, link_domain="cheap-followers.example")  # 15x, same wave

    result = sources_check_health(now=NOW)

    status, c = verdict(classifier)
    # both are real: each source's spike is the other's corroboration
    assert result["incidents"] == ["spam-model", "user-reports"] and status == "healthy"
    assert c == {
        "subjects": 100,
        "corroborated_subjects": 0,
        "related_subjects": 100,
        "class_current": 30,
        "class_baseline": 2.0,
        "class_factor": 15.0,
        "spike_factor": 20.0,
        "by": "class_rise",
    }


def test_a_2x_rise_of_unrelated_reports_does_not_excuse_a_20x_classifier_spike(classifier):
    mature_spike(classifier)
    rising_reports(history_per_hour=5, in_hour=10)

    result = sources_check_health(now=NOW)

    status, c = verdict(classifier)
    assert result["suspect"] == ["spam-model"] and status == "suspect"
    assert (c["class_factor"], c["spike_factor"], c["related_subjects"], c["by"]) == (2.0, 20.0, 0, None)


def test_a_2x_rise_does_not_excuse_a_20x_spike_even_on_related_accounts(classifier):
    mature_spike(classifier, device="farm-1")
    rising_reports(history_per_hour=5, in_hour=10, device="farm-1")

    sources_check_health(now=NOW)

    status, c = verdict(classifier)
    assert status == "suspect"
    assert (c["class_factor"], c["related_subjects"]) == (2.0, 100)


def test_a_proportional_rise_on_unrelated_accounts_is_a_coincidence(classifier):
    mature_spike(classifier, device="farm-1")
    rising_reports(history_per_hour=2, in_hour=30, device="someone-else")

    sources_check_health(now=NOW)

    status, c = verdict(classifier)
    assert status == "suspect"
    assert (c["class_factor"], c["related_subjects"]) == (15.0, 0)


def test_a_value_shared_by_too_many_accounts_links_nothing(classifier, settings):
    settings.DOCKET = {**settings.DOCKET, "CAMPAIGN_MAX_VALUE_SHARE": 100}
    mature_spike(classifier, ip="10.0.0.1")  # a carrier NAT address: 130 accounts share it
    rising_reports(history_per_hour=2, in_hour=30, ip="10.0.0.1")

    sources_check_health(now=NOW)

    status, c = verdict(classifier)
    assert status == "suspect" and c["related_subjects"] == 0


def test_a_rise_counts_only_over_the_weeks_the_other_source_was_sending(classifier):
    """Reports that began two weeks ago at 2 an hour have a baseline of 2, not of 1 averaged over four weeks."""
    mature_spike(classifier, device="farm-1")
    reports = SignalSource.objects.get(slug="user-reports")
    normal_weeks(reports, per_hour=2, weeks=2)
    add_signals(reports, last_hour(14), on=subjects(14, device="farm-1"))  # 7x: short of the 10x the spike needs

    sources_check_health(now=NOW)

    status, c = verdict(classifier)
    assert (c["class_baseline"], c["class_factor"]) == (2.0, 7.0)
    assert status == "suspect"


def test_calm_hour_resolves_the_open_incident(classifier):
    reports = SignalSource.objects.get(slug="user-reports")
    normal_weeks(classifier, per_hour=5)
    spike = add_signals(classifier, last_hour(100), scores=[0.3])
    add_signals(reports, last_hour(30), on=[s.subject for s in spike[:30]])
    sources_check_health(now=NOW)

    later = NOW + timedelta(hours=3)  # the spike's hour is no longer the last hour
    sources_check_health(now=later)

    incident = SourceIncident.objects.get()
    assert incident.status == "resolved"
    assert incident.resolved_at == later
    assert list(incidents_open()) == []


def corroborated_incident(classifier):
    reports = SignalSource.objects.get(slug="user-reports")
    normal_weeks(classifier, per_hour=5)
    spike = add_signals(classifier, last_hour(100), scores=[0.3])
    add_signals(reports, last_hour(30), on=[s.subject for s in spike[:30]])
    assert sources_check_health(now=NOW)["incidents"] == ["spam-model"]


def spike_goes_on_unreported(classifier, hours):
    """The next hour's spike, on accounts nobody else reported."""
    later = NOW + timedelta(hours=hours)
    add_signals(classifier, [t + timedelta(hours=hours) for t in last_hour(100)], scores=[0.3])
    return later


def test_an_incident_whose_spike_goes_on_uncorroborated_gives_way_to_suspect(classifier):
    corroborated_incident(classifier)
    later = spike_goes_on_unreported(classifier, 2)

    result = sources_check_health(now=later)

    classifier.refresh_from_db()
    incident = SourceIncident.objects.get()
    assert result["suspect"] == ["spam-model"] and classifier.status == "suspect"
    assert (incident.status, incident.resolved_at, incident.detail["resolution"]) == ("resolved", later, "suspect")
    assert list(incidents_open()) == []


def test_a_confirmed_incident_stays_open_while_the_spike_lasts_and_closes_when_calm(classifier, policy_admin):
    corroborated_incident(classifier)
    source_confirm(source_slug="spam-model", actor=policy_admin, now=NOW + timedelta(minutes=1))
    later = spike_goes_on_unreported(classifier, 7)  # past the grace hours of a confirm

    result = sources_check_health(now=later)

    classifier.refresh_from_db()
    incident = SourceIncident.objects.get()
    assert result["suspect"] == [] and classifier.status == "healthy"
    assert incident.status == "open"
    assert (incident.detail["confirmed_by"], incident.detail["confirmed_at"]) == (
        "padmin",
        (NOW + timedelta(minutes=1)).isoformat(),
    )
    sources_check_health(now=later + timedelta(hours=3))
    assert SourceIncident.objects.get().detail["resolution"] == "calm"


def test_quarantine_resolves_the_open_incident(classifier, policy_admin):
    corroborated_incident(classifier)

    source_quarantine(source_slug="spam-model", actor=policy_admin, now=NOW + timedelta(minutes=1))

    classifier.refresh_from_db()
    incident = SourceIncident.objects.get()
    assert classifier.status == "quarantined"
    assert classifier.score_summary["admin"] == {
        "action": "quarantined",
        "by": "padmin",
        "at": (NOW + timedelta(minutes=1)).isoformat(),
    }
    assert (incident.status, incident.detail["resolution"]) == ("resolved", "quarantined")
    assert list(incidents_open()) == []


def test_a_suspect_source_keeps_why_it_was_held_until_confirmed(classifier, policy_admin):
    suspect_source(classifier)
    sources_check_health(now=NOW + timedelta(hours=3))  # calm now, still suspect: only an admin moves it

    classifier.refresh_from_db()
    assert classifier.score_summary["anomaly"] is None
    assert classifier.score_summary["suspected"]["at"] == NOW.isoformat()
    assert classifier.score_summary["suspected"]["anomaly"] == "rate_spike"

    source_confirm(source_slug="spam-model", actor=policy_admin, now=NOW + timedelta(hours=3, minutes=1))
    sources_check_health(now=NOW + timedelta(hours=3, minutes=5))
    classifier.refresh_from_db()
    assert "suspected" not in classifier.score_summary
    assert classifier.score_summary["admin"]["action"] == "confirmed"


def test_score_shift_without_rate_change_makes_the_source_suspect(classifier):
    normal_weeks(classifier, per_hour=30, weeks=1, scores=(0.1, 0.2, 0.3))
    add_signals(classifier, last_hour(30), scores=[0.95, 0.97, 0.99])

    result = sources_check_health(now=NOW)

    classifier.refresh_from_db()
    assert result["suspect"] == ["spam-model"]
    assert classifier.score_summary["anomaly"] == "score_shift"
    assert classifier.score_summary["distance"] == 1.0
    assert classifier.score_summary["recent"]["histogram"] == [0] * 9 + [30]


def test_new_source_without_history_is_never_suspect():
    fresh = SourceFactory(slug="new-model", kind="classifier")
    add_signals(fresh, last_hour(500), scores=[0.99])

    result = sources_check_health(now=NOW)

    fresh.refresh_from_db()
    assert result["suspect"] == [] and result["incidents"] == []
    assert fresh.status == "healthy"
    assert fresh.baseline_rate is None
    assert fresh.current_rate == 500.0


def test_small_absolute_jump_is_not_a_spike(classifier):
    normal_weeks(classifier, per_hour=1, weeks=1)
    add_signals(classifier, last_hour(10), scores=[0.3])  # 10x, but only ten signals

    assert sources_check_health(now=NOW)["suspect"] == []


def test_suspect_and_quarantined_sources_keep_their_status(classifier):
    normal_weeks(classifier, per_hour=5, weeks=1)
    changed = NOW - timedelta(days=1)
    SignalSource.objects.filter(pk=classifier.pk).update(status="quarantined", status_changed_at=changed)
    add_signals(classifier, last_hour(100), scores=[0.3])

    sources_check_health(now=NOW)

    classifier.refresh_from_db()
    assert classifier.status == "quarantined"
    assert classifier.status_changed_at == changed
    assert classifier.current_rate == 100.0


# --- holding, confirming, quarantining (through the real intake path) ----------------------------------------------


def ingest(source_slug, n, *, subjects_prefix="t", per_subject=1, start=0, at=None):
    """Push ``n`` signals of the source through intake, ``per_subject`` on each subject; returns the results."""

    at = at or NOW - timedelta(minutes=5)
    items = [
        {
            "source": source_slug,
            "external_id": f"{source_slug}-{start + i}",
            "threat_class": "spam",
            "subject": {"kind": "account", "external_id": f"{subjects_prefix}-{(start + i) // per_subject}"},
            "score": 0.9,
            "occurred_at": at.isoformat(),
        }
        for i in range(n)
    ]
    return signals_ingest(items=items, actor="platform").results


def suspect_source(classifier):
    normal_weeks(classifier, per_hour=5, weeks=1)
    add_signals(classifier, last_hour(100), scores=[0.3])
    assert sources_check_health(now=NOW)["suspect"] == [classifier.slug]


def test_a_suspect_sources_new_signals_are_held_stored_without_a_case(classifier):
    suspect_source(classifier)

    results = ingest("spam-model", 6, per_subject=2)

    assert [(r["disposition"], r["case"]) for r in results] == [("held", None)] * 6
    assert Signal.objects.filter(source=classifier, disposition="held").count() == 6
    assert Case.objects.count() == 0


def test_confirm_releases_held_signals_into_cases_with_right_counts(classifier, policy_admin):
    suspect_source(classifier)
    ingest("spam-model", 6, per_subject=2)  # 3 subjects, 2 signals each
    existing = CaseFactory(
        subject=Subject.objects.get(external_id="t-0"), kind="spam", signal_count=0, reporter_count=0
    )

    result = source_confirm(source_slug="spam-model", actor=policy_admin, now=NOW)

    classifier.refresh_from_db()
    assert result["released"] == 6
    assert classifier.status == "healthy" and classifier.status_changed_at == NOW
    assert Signal.objects.filter(source=classifier, disposition="held").count() == 0
    released = Signal.objects.filter(source=classifier, released_at=NOW)
    assert released.count() == 6 and set(released.values_list("disposition", flat=True)) == {"queued"}
    cases = Case.objects.order_by("subject__external_id")
    assert [(c.subject.external_id, c.signal_count, c.status) for c in cases] == [
        ("t-0", 2, "open"),
        ("t-1", 2, "open"),
        ("t-2", 2, "open"),
    ]
    assert cases[0].pk == existing.pk  # joined the active case rather than opening a second one
    assert all(c.priority > 0 and c.queue.slug == "spam" for c in cases)
    released_events = CaseEvent.objects.filter(kind="signals_released")
    assert sorted(e.detail["signals"] for e in released_events) == [2, 2, 2]
    assert {e.actor_label for e in released_events} == {"padmin"}
    assert CaseEvent.objects.filter(kind="opened").count() == 2
    # new signals queue again, and a second confirm has nothing left to release
    assert ingest("spam-model", 1, start=100)[0]["disposition"] == "queued"
    assert source_confirm(source_slug="spam-model", actor=policy_admin)["released"] == 0


def test_a_large_release_holds_at_most_a_batch_of_cases_per_transaction(classifier, policy_admin):
    """250 held signals on 250 subjects: three transactions (100, 100, 50), each folding and locking its own cases."""
    suspect_source(classifier)
    ingest("spam-model", 250)
    with CaptureQueriesContext(connection) as captured:
        assert source_confirm(source_slug="spam-model", actor=policy_admin, now=NOW)["released"] == 250
    picks = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith('SELECT "casework_signal"."id"') and "FOR NO KEY UPDATE" in q["sql"]
    ]
    assert len(picks) == 3 and all("LIMIT 100" in sql for sql in picks), picks
    assert Case.objects.filter(subject__external_id__startswith="t-").count() == 250


def test_after_confirm_the_same_spike_opens_an_incident(classifier, policy_admin):
    suspect_source(classifier)
    source_confirm(source_slug="spam-model", actor=policy_admin, now=NOW)

    result = sources_check_health(now=NOW + timedelta(minutes=5))

    assert result["suspect"] == [] and result["incidents"] == ["spam-model"]
    assert SourceIncident.objects.get().detail["corroboration"] == {
        "confirmed_by_admin": True,
        "confirmed_by": "padmin",
        "confirmed_at": NOW.isoformat(),
        "by": "confirmed_by_admin",
    }


def test_quarantine_keeps_signals_held(classifier, policy_admin):
    suspect_source(classifier)
    ingest("spam-model", 4)

    source_quarantine(source_slug="spam-model", actor=policy_admin, now=NOW)
    later = ingest("spam-model", 2, start=10)
    sources_check_health(now=NOW + timedelta(minutes=5))

    classifier.refresh_from_db()
    assert classifier.status == "quarantined" and classifier.status_changed_at == NOW
    assert [r["disposition"] for r in later] == ["held", "held"]
    assert Signal.objects.filter(source=classifier, disposition="held").count() == 6
    assert Case.objects.count() == 0


def test_a_new_source_is_not_held(policy_admin):
    source_register(slug="fresh-model", kind="classifier", trust=0.8, actor=policy_admin)

    results = ingest("fresh-model", 300, at=NOW - timedelta(minutes=1))
    check = sources_check_health(now=NOW)

    assert {r["disposition"] for r in results} == {"queued"}
    assert check["suspect"] == []
    assert SignalSource.objects.get(slug="fresh-model").status == "healthy"


def test_the_health_check_releases_signals_a_healthy_source_still_holds(classifier):
    suspect_source(classifier)
    ingest("spam-model", 3)
    # a confirm raced an in-flight intake batch: the source is healthy, three signals still held
    SignalSource.objects.filter(pk=classifier.pk).update(status="healthy", status_changed_at=NOW)

    result = sources_check_health(now=NOW + timedelta(minutes=5))

    assert result["released"] == 3
    assert Signal.objects.filter(disposition="held").count() == 0
    assert CaseEvent.objects.filter(kind="signals_released", actor_label="system").count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_admins_confirming_at_once_release_each_signal_once(make_user):
    classifier = SourceFactory(slug="spam-model", kind="classifier", trust=0.9)
    SignalSource.objects.filter(pk=classifier.pk).update(status="suspect", status_changed_at=NOW)
    ingest("spam-model", 20, per_subject=4)
    admins = [make_user("admin-a", "policy_admin"), make_user("admin-b", "policy_admin")]
    barrier = threading.Barrier(2)
    released = []

    def confirm(admin):
        try:
            barrier.wait()
            released.append(source_confirm(source_slug="spam-model", actor=admin)["released"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm, args=(a,)) for a in admins]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(released) == [0, 20]
    assert list(Case.objects.order_by("pk").values_list("signal_count", flat=True)) == [4] * 5
    assert CaseEvent.objects.filter(kind="signals_released").count() == 5


def test_the_score_sample_reads_scored_signals_only_however_many_unscored_ones_the_window_holds(classifier):
    # A user-report source sends no scores: the score baseline (the four weeks before the last hour) once
    # walked every one of its reports backwards, looking for a scored one, on each health check (272,000
    # rows, 5-20 s at a million cases). Placed outside the rate windows, only that walk could read them.
    reports = SourceFactory(slug="reports-x", kind="user_report", trust=0.5)
    add_signals(reports, [NOW - timedelta(days=2, minutes=k % 1400) for k in range(3000)])
    add_signals(classifier, [NOW - timedelta(days=3)], scores=[0.5])
    with connection.cursor() as cur:
        before = rows_fetched(cur, "casework_signal")
        health = {h.source_id: h for h in sources_health(now=NOW)}
        after = rows_fetched(cur, "casework_signal")
    assert health[classifier.pk].baseline_scores["n"] == 1
    assert health[reports.pk].baseline_scores["n"] == 0
    assert after - before <= 100, after - before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_case_intake_opens_while_a_release_folds_is_joined(policy_admin, monkeypatch):
    """Between the release's fold and the insert of its new case, intake opens the subject's spam case on
    another connection: the released signals move to that case, and no second case is opened."""
    classifier = SourceFactory(slug="spam-model", kind="classifier", trust=0.9)
    SignalSource.objects.filter(pk=classifier.pk).update(status="suspect", status_changed_at=NOW)
    ingest("spam-model", 2, per_subject=2)
    settle, opened = hygiene.cases_settle, []

    def intake_meanwhile(fold, items, *, now):
        item = {"source": "user-reports", "external_id": "r-1", "threat_class": "spam", "reporter": "rep-1"}
        item["subject"] = {"kind": "account", "external_id": "t-0"}
        opened.extend(run_threads(1, lambda _: signals_ingest(items=item, actor="platform").body["case"]))
        return settle(fold, items, now=now)

    monkeypatch.setattr(hygiene, "cases_settle", intake_meanwhile)
    assert source_confirm(source_slug="spam-model", actor=policy_admin, now=NOW)["released"] == 2

    case = Case.objects.get()
    assert case.pk == opened[0]
    assert (case.signal_count, case.status) == (3, "open")
    assert set(Signal.objects.values_list("case_id", flat=True)) == {case.pk}
    assert list(case.events.order_by("pk").values_list("kind", flat=True)) == [
        "opened",
        "signals_added",
        "signals_released",
    ]
