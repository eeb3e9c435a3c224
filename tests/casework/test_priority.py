"""Priority: monotonic in every input, aging, restricted on top, brigades damped, one formula."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from casework.intake import signals_ingest
from casework.models import Case, RankMark, Reporter, ReporterClassRecord
from casework.priority import (
    BREACH_OFFSET,
    RESTRICTED_OFFSET,
    case_reprioritise,
    cases_reprioritise_all,
    cases_reprioritise_due,
    reporters_cases_rerank,
)
from casework.tasks import reprioritise_cases, reprioritise_open_cases
from reviews.services.decisions import decision_automated
from tests.factories import CaseFactory, ReporterFactory, SourceFactory, SubjectFactory, queue, threat_class
from tests.support import rows_updated

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def ranked(*cases, now=NOW):
    case_reprioritise(case_ids=[c.pk for c in cases], now=now)
    for c in cases:
        c.refresh_from_db()
    return [c.priority for c in cases]


def signal(n, *, subject, threat="harassment", source="user-reports", reporter=None, score=None, at=None, reach=100):
    item = {
        "source": source,
        "external_id": f"s-{n}",
        "threat_class": threat,
        "subject": {"kind": "account", "external_id": subject, "reach": reach},
    }
    if reporter is not None:
        item["reporter"] = reporter
    if score is not None:
        item["score"] = score
    if at is not None:
        item["occurred_at"] = at.isoformat()
    return item


def case_of(subject, threat="harassment"):
    return Case.objects.get(subject__external_id=subject, threat_class__slug=threat)


def accurate(name, upheld=9, decided=10, threat="harassment"):
    """A reporter with a record: over every class, and on ``threat`` (what a case of that class ranks by)."""
    reporter = ReporterFactory(external_id=name, reports_upheld=upheld, reports_decided=decided)
    ReporterClassRecord.objects.create(
        reporter=reporter, threat_class=threat_class(threat), reports_upheld=upheld, reports_decided=decided
    )
    return reporter


# --- monotonic in each input ---------------------------------------------------------------------


def test_rises_with_severity():
    low, high = CaseFactory(kind="harassment", severity=2), CaseFactory(kind="harassment", severity=3)
    p_low, p_high = ranked(low, high)
    assert p_low < p_high


def test_rises_with_harm_weight():
    low, high = CaseFactory(kind="harassment", harm_weight=2.0), CaseFactory(kind="harassment", harm_weight=3.0)
    p_low, p_high = ranked(low, high)
    assert p_low < p_high


@pytest.mark.parametrize(("small", "large"), [(0, 1), (10, 100), (10_000, 1_000_000)])
def test_rises_with_reach(small, large):
    a = CaseFactory(kind="harassment", subject=SubjectFactory(reach=small))
    b = CaseFactory(kind="harassment", subject=SubjectFactory(reach=large))
    p_a, p_b = ranked(a, b)
    assert p_a < p_b


def test_rises_with_signal_strength(platform):
    SourceFactory(slug="tox", kind="classifier", trust=0.9)
    SourceFactory(slug="tox-lite", kind="classifier", trust=0.5)
    signals_ingest(
        items=[
            signal(1, subject="weak", source="tox", score=0.6),
            signal(2, subject="strong", source="tox", score=0.9),
            signal(3, subject="less-trusted", source="tox-lite", score=0.9),
        ],
        actor=platform,
    )
    weak, strong, less = case_of("weak"), case_of("strong"), case_of("less-trusted")
    assert (weak.signal_strength, strong.signal_strength) == (pytest.approx(0.54), pytest.approx(0.81))
    assert less.signal_strength == pytest.approx(0.45)
    assert less.priority < weak.priority < strong.priority


def test_rises_with_distinct_reporters_and_their_accuracy(platform):
    accurate("good-1")
    accurate("good-2")
    accurate("poor-1", upheld=0, decided=10)
    signals_ingest(
        items=[
            signal(1, subject="one", reporter="good-1"),
            signal(2, subject="two", reporter="good-1"),
            signal(3, subject="two", reporter="good-2"),
            signal(4, subject="poorly", reporter="poor-1"),
        ],
        actor=platform,
    )
    one, two, poorly = case_of("one"), case_of("two"), case_of("poorly")
    assert one.reporter_weight == pytest.approx(11 / 14)
    assert two.reporter_weight == pytest.approx(2 * 11 / 14)
    assert poorly.reporter_weight == pytest.approx(2 / 14)
    assert poorly.priority < one.priority < two.priority


@pytest.mark.parametrize("action, moves", [("remove", "up"), ("no_violation", "down")])
def test_a_decision_on_a_report_re_ranks_the_reporters_other_active_cases(platform, action, moves):
    """The reporter's accuracy changed: their other active cases re-rank on the next periodic run, others not."""
    accurate("carol", upheld=5, decided=10)
    accurate("dave", upheld=5, decided=10)
    signals_ingest(
        items=[
            signal(1, subject="decided-now", reporter="carol"),
            signal(2, subject="carols-other", reporter="carol"),
            signal(3, subject="daves", reporter="dave"),
        ],
        actor=platform,
    )
    decided, other, unrelated = case_of("decided-now"), case_of("carols-other"), case_of("daves")
    cases_reprioritise_due()  # nothing pending: ranked at intake, nothing due
    weight, priority = other.reporter_weight, other.priority

    decision_automated(case=decided, action=action)
    assert Reporter.objects.get(external_id="carol").rerank_pending_at is not None
    cases_reprioritise_due()

    other.refresh_from_db()
    unrelated_before = unrelated.rank_due_at
    unrelated.refresh_from_db()
    if moves == "up":
        assert other.reporter_weight > weight and other.priority > priority
    else:
        assert other.reporter_weight < weight and other.priority < priority
    assert unrelated.rank_due_at == unrelated_before  # dave's record did not change: not touched
    assert Reporter.objects.get(external_id="carol").rerank_pending_at is None
    assert reporters_cases_rerank() == 0  # done: nothing pending


def _carols_cases(platform, n):
    """carol's report on a case about to be decided and on ``n`` others; everything ranked, nothing due."""
    accurate("carol", upheld=5, decided=10)
    signals_ingest(
        items=[signal(0, subject="decided-now", reporter="carol")]
        + [signal(i, subject=f"carols-{i}", reporter="carol") for i in range(1, n + 1)],
        actor=platform,
    )
    cases_reprioritise_due()
    return case_of("decided-now"), [case_of(f"carols-{i}") for i in range(1, n + 1)]


def test_a_reporters_other_cases_are_written_once_when_their_record_changes(platform):
    """Re-ranked directly, not marked due and ranked later: one row version per case, not two."""
    decided, others = _carols_cases(platform, 3)
    decision_automated(case=decided, action="remove")
    with connection.cursor() as cur:
        before = rows_updated(cur, "casework_case")
        assert cases_reprioritise_due() == 3
        assert rows_updated(cur, "casework_case") - before == 3
    for case in others:
        weight = case.reporter_weight
        case.refresh_from_db()
        assert case.reporter_weight > weight


def test_a_reporters_cases_past_the_budget_are_marked_due_for_the_next_run(platform):
    decided, others = _carols_cases(platform, 3)
    decision_automated(case=decided, action="remove")

    assert reporters_cases_rerank(batch=1, budget_seconds=0) == 0  # over budget at once: every case marked
    assert Reporter.objects.get(external_id="carol").rerank_pending_at is None
    assert set(RankMark.objects.values_list("case_id", flat=True)) == {c.pk for c in others}
    assert cases_reprioritise_due() == 3  # the next run re-ranks them
    assert not RankMark.objects.exists()
    for case in others:
        weight = case.reporter_weight
        case.refresh_from_db()
        assert case.reporter_weight > weight
        assert case.rank_due_at is None or case.rank_due_at > timezone.now()


def _standing(case):
    """What does not move with the clock: the rank and every input of the breakdown."""
    moving = {"aging_factor", "base", "sla_breached", "breach_offset"}
    return case.rank, {k: v for k, v in case.priority_breakdown.items() if k not in moving}


def test_a_case_ranks_by_its_reporters_record_on_its_own_class_and_unrestricted_ones(platform):
    """A decision of a restricted class moves no other class's case: a reporter's upheld csam report weighs
    their csam cases, not their spam or harassment ones; an upheld spam report weighs every class's."""
    accurate("erin", upheld=5, decided=10)
    signals_ingest(
        items=[
            signal(1, subject="csam-decided", threat="csam", reporter="erin"),
            signal(2, subject="csam-other", threat="csam", reporter="erin"),
            signal(3, subject="harassment-other", reporter="erin"),
            signal(4, subject="spam-decided", threat="spam", reporter="erin"),
        ],
        actor=platform,
    )
    csam_other, harassment_other = case_of("csam-other", "csam"), case_of("harassment-other")
    csam_weight = csam_other.reporter_weight
    harassment = _standing(harassment_other)
    assert csam_weight == harassment_other.reporter_weight == pytest.approx(7 / 14)

    decision_automated(case=case_of("csam-decided", "csam"), action="remove")
    assert reporters_cases_rerank() == 3  # erin's active cases re-ranked: the formula says which it moves
    cases_reprioritise_due()
    csam_other.refresh_from_db()
    harassment_other.refresh_from_db()
    assert csam_other.reporter_weight == pytest.approx(8 / 15) and csam_other.reporter_weight > csam_weight
    assert _standing(harassment_other) == harassment
    records = ReporterClassRecord.objects.filter(reporter__external_id="erin")
    assert sorted(records.values_list("threat_class__slug", "reports_decided", "reports_upheld")) == [
        ("csam", 1, 1),
        ("harassment", 10, 5),
    ]

    decision_automated(case=case_of("spam-decided", "spam"), action="remove")  # an unrestricted class
    cases_reprioritise_due()
    csam_other.refresh_from_db()
    harassment_other.refresh_from_db()
    assert csam_other.reporter_weight == pytest.approx(9 / 16)
    assert harassment_other.reporter_weight == pytest.approx(8 / 15)
    assert harassment_other.rank > harassment[0]


def test_repeats_by_one_reporter_add_nothing(platform):
    accurate("alice")
    signals_ingest(items=[signal(1, subject="once", reporter="alice")], actor=platform)
    signals_ingest(items=[signal(n, subject="often", reporter="alice") for n in range(2, 12)], actor=platform)
    once, often = case_of("once"), case_of("often")
    assert (often.signal_count, often.reporter_count) == (10, 1)
    assert often.reporter_weight == once.reporter_weight
    # velocity counts signals, so compare with velocity equalised: nothing else differs
    assert often.priority_breakdown["reporter_term"] == once.priority_breakdown["reporter_term"]


def test_new_reporters_are_down_weighted(platform):
    ReporterFactory(external_id="veteran")
    ReporterFactory(external_id="newcomer", first_seen_at=timezone.now() - timedelta(hours=2))
    signals_ingest(
        items=[signal(1, subject="a", reporter="veteran"), signal(2, subject="b", reporter="newcomer")], actor=platform
    )
    assert case_of("a").reporter_weight == pytest.approx(0.5)
    assert case_of("b").reporter_weight == pytest.approx(0.125)
    assert case_of("b").priority < case_of("a").priority


def test_rises_with_velocity(platform):
    accurate("r")
    old = NOW - timedelta(hours=5)
    signals_ingest(items=[signal(1, subject="slow", reporter="r", at=old)], actor=platform)
    signals_ingest(items=[signal(2, subject="slow", reporter="r", at=old)], actor=platform)
    signals_ingest(items=[signal(3, subject="fast", reporter="r", at=old)], actor=platform)
    signals_ingest(items=[signal(4, subject="fast", reporter="r", at=NOW - timedelta(minutes=5))], actor=platform)
    slow, fast = case_of("slow"), case_of("fast")
    # same first signal time, same SLA, same reporter: only velocity differs
    p_slow, p_fast = ranked(slow, fast)
    assert (slow.velocity, fast.velocity) == (0, 1)
    assert p_slow < p_fast


# --- aging and tiers ------------------------------------------------------------------------------


def test_rises_as_the_sla_approaches():
    case = CaseFactory(kind="harassment", first_signal_at=NOW)
    (fresh,) = ranked(case, now=NOW)
    (later,) = ranked(case, now=NOW + timedelta(hours=12))
    (due,) = ranked(case, now=NOW + timedelta(hours=23))
    assert fresh < later < due < BREACH_OFFSET


def test_a_breached_case_ranks_above_every_unbreached_case_of_its_class():
    breached = CaseFactory(kind="harassment", first_signal_at=NOW - timedelta(hours=25), severity=1, harm_weight=0.1)
    loud = CaseFactory(
        kind="harassment",
        subject=SubjectFactory(reach=10**12),
        severity=5,
        harm_weight=10**6,
        signal_strength=1.0,
        reporter_weight=10**6,
    )
    p_breached, p_loud = ranked(breached, loud)
    assert p_loud < BREACH_OFFSET < p_breached
    assert breached.priority_breakdown["sla_breached"] is True


def test_restricted_classes_rank_above_every_unrestricted_case_in_the_queue():
    escalations = queue("escalations")
    quiet_csam = CaseFactory(kind="csam", queue=escalations, subject=SubjectFactory(reach=0))
    loud_ato = CaseFactory(
        kind="ato",
        queue=escalations,
        first_signal_at=NOW - timedelta(days=3),
        subject=SubjectFactory(reach=10**12),
        harm_weight=10**6,
        signal_strength=1.0,
    )
    p_csam, p_ato = ranked(quiet_csam, loud_ato)
    assert BREACH_OFFSET < p_ato < RESTRICTED_OFFSET < p_csam
    assert quiet_csam.priority_breakdown["restricted_offset"] == RESTRICTED_OFFSET


# --- brigading --------------------------------------------------------------------------------------


def test_a_brigade_of_new_reporters_ranks_below_five_accurate_reporters(platform):
    day_old = timezone.now() - timedelta(days=1, minutes=1)
    for n in range(30):
        ReporterFactory(external_id=f"brigade-{n}", first_seen_at=day_old)
    for n in range(5):
        accurate(f"trusted-{n}", upheld=18, decided=20)
    signals_ingest(items=[signal(n, subject="victim", reporter=f"brigade-{n}") for n in range(30)], actor=platform)
    signals_ingest(items=[signal(100 + n, subject="abuser", reporter=f"trusted-{n}") for n in range(5)], actor=platform)

    victim, abuser = case_of("victim"), case_of("abuser")
    assert (victim.reporter_count, victim.brigading) == (30, True)
    assert (abuser.reporter_count, abuser.brigading) == (5, False)
    assert victim.priority < abuser.priority
    assert victim.priority_breakdown["brigading"] is True


def test_many_reports_from_established_reporters_are_not_a_brigade(platform):
    for n in range(30):
        accurate(f"r-{n}")
    signals_ingest(items=[signal(n, subject="x", reporter=f"r-{n}") for n in range(30)], actor=platform)
    assert case_of("x").brigading is False


# --- one formula ----------------------------------------------------------------------------------------


def test_bulk_and_per_case_reprioritisation_are_identical(platform):
    SourceFactory(slug="tox", kind="classifier", trust=0.8)
    accurate("good")
    for n in range(12):
        ReporterFactory(external_id=f"new-{n}", first_seen_at=timezone.now())
    signals_ingest(
        items=[signal(1, subject="a", source="tox", score=0.7, reach=5000), signal(2, subject="a", reporter="good")]
        + [signal(10 + n, subject="b", reporter=f"new-{n}") for n in range(12)]
        + [signal(30, subject="c", threat="csam", reporter="good", at=NOW - timedelta(hours=3))],
        actor=platform,
    )
    CaseFactory(kind="spam", first_signal_at=NOW - timedelta(days=4))
    fields = ["id", "priority", "priority_breakdown", "signal_count", "reporter_count", "reporter_weight", "velocity"]
    fields += ["signal_strength", "brigading", "first_signal_at", "last_signal_at", "reach", "holdout"]
    later = NOW + timedelta(minutes=30)

    for case_id in Case.objects.values_list("id", flat=True):
        assert case_reprioritise(case_ids=[case_id], now=later) == 1
    one_by_one = list(Case.objects.order_by("id").values(*fields))
    Case.objects.update(priority=0, priority_breakdown={}, velocity=0)
    updated = cases_reprioritise_all(now=later)

    assert updated == 4
    assert list(Case.objects.order_by("id").values(*fields)) == one_by_one


def test_only_active_cases_are_reprioritised():
    open_case = CaseFactory(priority=0)
    decided = CaseFactory(priority=0, status="decided", decided_at=timezone.now())
    assert cases_reprioritise_all() == 1
    open_case.refresh_from_db()
    decided.refresh_from_db()
    assert open_case.priority > 0 and decided.priority == 0


def test_tasks_call_the_same_services():
    case = CaseFactory(priority=0)
    assert reprioritise_open_cases.run() == 1  # never ranked: due at once
    case.refresh_from_db()
    assert case.priority > 0
    assert reprioritise_open_cases.run() == 0  # ranked, nothing due until its SLA
    assert reprioritise_cases.run([case.pk]) == 1
    assert Reporter.objects.count() == 0
