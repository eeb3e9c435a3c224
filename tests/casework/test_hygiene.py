"""Source health: baselines by hour of week, spikes, score shifts, corroboration, confirm and quarantine."""

from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone

from casework.hygiene import incidents_open, sources_check_health, sources_health
from casework.models import SignalSource, SourceIncident, Subject
from tests.factories import SourceFactory, threat_class

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
_ids = count()


def subjects(n):
    return Subject.objects.bulk_create(
        [Subject(kind="account", external_id=f"h-{next(_ids)}", reach=10) for _ in range(n)]
    )


def add_signals(source, times, *, on=None, scores=None, kind="spam"):
    """Store signals of ``source`` at ``times`` (on fresh subjects unless ``on`` names them), as already received."""
    from casework.models import Signal

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


def test_spike_corroborated_by_the_same_class_rising_elsewhere(classifier):
    other = SourceFactory(slug="spam-rules", kind="rule", trust=0.8)
    normal_weeks(classifier, per_hour=5)
    normal_weeks(other, per_hour=1)
    add_signals(classifier, last_hour(100), scores=[0.3])
    add_signals(other, last_hour(10), scores=[0.9])  # different subjects, same class, 10x its own hour

    result = sources_check_health(now=NOW)

    assert result["incidents"] == ["spam-model"]
    assert SignalSource.objects.get(slug="spam-model").status == "healthy"


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
