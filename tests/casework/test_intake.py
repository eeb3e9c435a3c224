"""Intake: signals become stored signals and cases, idempotently and all or nothing."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from casework import priority
from casework.intake import signals_ingest
from casework.models import (
    Case,
    CaseEvent,
    Queue,
    RankMark,
    Reporter,
    Signal,
    Subject,
    SubjectAttribute,
    SubjectFacet,
)
from casework.priority import case_reprioritise
from docket import queueing
from docket.errors import DocketError
from policies.models import SignalSource, Threshold
from policies.thresholds import AUTO_ACTIONED, BELOW_THRESHOLD, HELD, HOLDING_STATUSES, QUEUED, disposition_for
from reviews.models import Decision
from tests.factories import SourceFactory, queue, threat_class
from tests.support import case_rows_fetched, cases_copied_without_statistics, rows_updated

pytestmark = pytest.mark.django_db


def report(n, *, subject="u-1", reporter=None, threat="spam", source="user-reports", **extra):
    item = {
        "source": source,
        "external_id": f"r-{n}",
        "threat_class": threat,
        "subject": {"kind": "account", "external_id": subject, "reach": 100},
        "reporter": reporter if reporter is not None else f"rep-{n}",
        "reason": "selling followers",
    }
    item.update(extra)
    return item


def detection(n, *, source, score, subject="u-1", threat="spam", **extra):
    item = report(n, subject=subject, threat=threat, source=source, score=score, **extra)
    del item["reporter"]
    return item


def state():
    """Everything intake writes, to prove a refusal changed nothing."""
    return (
        Signal.objects.count(),
        Case.objects.count(),
        Subject.objects.count(),
        Reporter.objects.count(),
        SubjectAttribute.objects.count(),
        CaseEvent.objects.count(),
    )


def refused(items, actor):
    before = state()
    with pytest.raises(DocketError) as exc:
        signals_ingest(items=items, actor=actor)
    assert state() == before
    return exc.value


# --- storing and folding ------------------------------------------------------------------


def test_one_signal_opens_a_case_in_the_class_queue(platform):
    result = signals_ingest(items=report(1), actor=platform)

    signal = Signal.objects.get()
    case = Case.objects.get()
    assert result.status == 201
    assert result.body == {"id": signal.id, "external_id": "r-1", "case": case.id, "disposition": "queued"}
    assert (case.subject.external_id, case.threat_class.slug, case.queue.slug) == ("u-1", "spam", "spam")
    assert (case.status, case.signal_count, case.reporter_count, case.reach) == ("open", 1, 1, 100)
    assert (case.severity, case.harm_weight) == (2, 1.0)
    assert case.first_signal_at == case.last_signal_at == signal.occurred_at
    assert case.sla_due_at == signal.occurred_at + timedelta(hours=72)
    assert case.priority > 0 and case.priority_breakdown["severity"] == 2
    assert (signal.reporter.external_id, signal.reason, signal.disposition) == ("rep-1", "selling followers", "queued")
    assert list(case.events.values_list("kind", "actor_label", "detail")) == [
        ("opened", "platform-svc", {}),
        ("signals_added", "platform-svc", {"signals": 1, "reporters": 1, "sources": ["user-reports"]}),
    ]


def test_a_class_no_queue_takes_reaches_the_escalations_queue_and_without_one_is_refused(platform):
    spam = threat_class("spam")
    for q in Queue.objects.filter(threat_classes=spam):
        q.threat_classes.remove(spam)
    signals_ingest(items=report(1), actor=platform)
    assert Case.objects.get().queue.slug == "escalations"

    Case.objects.update(queue=queue("spam"))
    queue("escalations").delete()
    error = refused(report(2, subject="u-2"), platform)
    assert error.code == "unroutable"
    assert Signal.objects.count() == 1


def test_signals_on_one_subject_and_class_fold_into_one_case(platform):
    t0 = timezone.now() - timedelta(hours=3)
    signals_ingest(items=report(1, occurred_at=t0.isoformat()), actor=platform)
    result = signals_ingest(
        items=[
            report(2, occurred_at=(t0 + timedelta(hours=1)).isoformat()),
            report(3, threat="harassment"),
            report(4, subject="u-2"),
        ],
        actor=platform,
    )

    spam = Case.objects.get(subject__external_id="u-1", threat_class__slug="spam")
    assert [r["case"] for r in result.body] == [
        spam.id,
        Case.objects.get(threat_class__slug="harassment").id,
        Case.objects.get(subject__external_id="u-2").id,
    ]
    assert Case.objects.count() == 3
    assert (spam.signal_count, spam.reporter_count) == (2, 2)
    assert spam.first_signal_at == t0
    assert spam.last_signal_at == t0 + timedelta(hours=1)
    assert spam.sla_due_at == t0 + timedelta(hours=72)
    assert list(spam.events.values_list("kind", flat=True)) == ["opened", "signals_added", "signals_added"]
    assert Case.objects.get(threat_class__slug="harassment").queue.slug == "harassment"


def test_a_case_intake_opens_is_written_once_and_ranks_as_a_re_rank_ranks_it(platform):
    """A new case is inserted ranked from its signals: one row version and one entry per index, where an
    insert followed by a re-rank wrote both twice. Re-ranking it at the same moment changes nothing."""
    items = [report(n, subject=f"u-{n % 5}", threat=("spam", "harassment")[n % 2]) for n in range(20)]

    with connection.cursor() as cur:
        before = rows_updated(cur, "casework_case")
        signals_ingest(items=items, actor=platform)
        assert rows_updated(cur, "casework_case") == before

    def ranked():
        return [
            (c.signal_count, c.reporter_count, c.reach, c.first_signal_at, c.last_signal_at, c.velocity)
            + (c.rank_tier, c.rank, c.rank_due_at, c.priority, c.priority_breakdown)
            for c in Case.objects.order_by("pk")
        ]

    opened = ranked()
    cases = list(Case.objects.order_by("pk"))
    assert len(cases) == 10 and {c[0] for c in opened} == {2}
    assert all(c.priority > 0 and c.priority_breakdown["velocity"] == 4 for c in cases)
    assert case_reprioritise(case_ids=[c.pk for c in cases], now=cases[0].updated_at) == 10
    assert ranked() == opened


def test_a_new_subjects_classes_are_written_once_and_its_attribute_rows_take_them_as_inserted(platform):
    """The subject gains its class as a signal class and a case class in one write (the signals are stored
    before their new case, and a folded signal's class is a case class), not once per statement."""
    items = [report(n, subject=f"u-{n}", attributes={"ip": [f"10.0.0.{n}"]}) for n in range(5)]
    for item in items:
        item["subject"]["attributes"] = item.pop("attributes")

    with connection.cursor() as cur:
        subjects, attributes = rows_updated(cur, "casework_subject"), rows_updated(cur, "casework_subjectattribute")
        signals_ingest(items=items, actor=platform)
        assert rows_updated(cur, "casework_subject") - subjects == 5
        assert rows_updated(cur, "casework_subjectattribute") == attributes

    spam = threat_class("spam").pk
    assert {tuple(s.case_class_ids + s.class_ids) for s in Subject.objects.all()} == {(spam, spam)}
    assert {(*a.subject_case_class_ids, *a.subject_class_ids) for a in SubjectAttribute.objects.all()} == {(spam, spam)}


def test_joining_a_case_reads_the_subjects_cases_not_the_class_backlog(platform):
    """Intake finds each (subject, class)'s active case by its subject. Without statistics, PostgreSQL
    took the class's index and read every active case of the class for each key of the batch."""
    signals_ingest(items=report(1), actor=platform)
    case = Case.objects.get()

    with transaction.atomic(), connection.cursor() as cur:
        cases_copied_without_statistics(cur, {case.pk: 2_000})
        before = case_rows_fetched(cur)
        result = signals_ingest(items=[report(2), report(3, subject="u-2")], actor=platform)
        fetched = case_rows_fetched(cur) - before
        transaction.set_rollback(True)

    assert result.body[0]["case"] == case.pk
    assert fetched <= 20, fetched


def _row_version(case_id):
    with connection.cursor() as cur:
        cur.execute("SELECT xmin::text FROM casework_case WHERE id = %s", [case_id])
        return cur.fetchone()[0]


def test_a_case_intake_opens_marks_its_subjects_other_cases_due_without_writing_them(platform):
    signals_ingest(items=report(1, threat="harassment"), actor=platform)
    harassment = Case.objects.get(threat_class__slug="harassment")
    RankMark.objects.all().delete()
    version = _row_version(harassment.pk)

    signals_ingest(items=report(2), actor=platform)
    signals_ingest(items=report(3), actor=platform)  # marked already: the mark stays as it was

    spam = Case.objects.get(threat_class__slug="spam")
    [mark] = RankMark.objects.all()
    assert (mark.case_id, mark.marked_at) == (harassment.pk, spam.created_at)
    assert _row_version(harassment.pk) == version  # the case row itself is not written (nor locked)


def test_the_other_cases_of_subjects_with_cases_of_one_class_are_not_looked_up(platform):
    """Two active cases of a subject are of two classes: a subject whose cases are all of one class has
    none to mark due, and the look-up reads only the touched cases, not the subjects' case index entries."""
    signals_ingest(items=[report(n, subject=f"u-{n}") for n in range(5)], actor=platform)
    signals_ingest(items=report(9, subject="u-0", threat="harassment"), actor=platform)
    RankMark.objects.all().delete()
    lone = list(Case.objects.exclude(subject__external_id="u-0").values_list("pk", flat=True))
    spam_of_u0 = Case.objects.get(subject__external_id="u-0", threat_class__slug="spam").pk
    params = {"now": timezone.now()}

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        before = case_rows_fetched(cur)
        cur.execute(priority._SIBLINGS_DUE_SQL, params | {"touched": priority._id_array(lone)})
        fetched = case_rows_fetched(cur) - before
        cur.execute(priority._SIBLINGS_DUE_SQL, params | {"touched": priority._id_array([spam_of_u0])})
        due = Case.objects.filter(pk__in=RankMark.objects.values("case_id"))
        due = dict(due.values_list("threat_class__slug", "subject__external_id"))
        transaction.set_rollback(True)

    assert fetched == len(lone) == 4  # each touched case by its key; before, every active case (10)
    assert due == {"harassment": "u-0"}  # the subject with cases of two classes: its other case is due


def test_repeats_by_one_reporter_count_once(platform):
    signals_ingest(items=[report(1, reporter="alice"), report(2, reporter="alice")], actor=platform)
    signals_ingest(items=[report(3, reporter="alice"), report(4, reporter="bob")], actor=platform)

    case = Case.objects.get()
    assert (case.signal_count, case.reporter_count) == (4, 2)
    assert Reporter.objects.count() == 2


def test_a_decided_case_makes_way_for_a_new_one(platform):
    signals_ingest(items=report(1), actor=platform)
    first = Case.objects.get()
    Case.objects.filter(pk=first.pk).update(status="decided", decided_at=timezone.now())

    result = signals_ingest(items=report(2), actor=platform)

    assert result.body["case"] != first.id
    assert Case.objects.get(pk=result.body["case"]).signal_count == 1


def test_subjects_keep_the_largest_reach_and_merge_attributes(platform):
    subject = {
        "kind": "account",
        "external_id": "u-9",
        "reach": 500,
        "attributes": {"device": ["d-1"], "ip": "1.2.3.4"},
    }
    signals_ingest(items=report(1, subject=None) | {"subject": subject}, actor=platform)
    later = {"kind": "account", "external_id": "u-9", "reach": 20, "attributes": {"device": ["d-2", "d-1"]}}
    signals_ingest(items=report(2) | {"subject": later}, actor=platform)

    row = Subject.objects.get(external_id="u-9")
    assert row.reach == 500
    assert row.attributes == {"device": ["d-1", "d-2"], "ip": ["1.2.3.4"]}
    assert sorted(SubjectAttribute.objects.values_list("kind", "value")) == [
        ("device", "d-1"),
        ("device", "d-2"),
        ("ip", "1.2.3.4"),
    ]
    assert Case.objects.get().reach == 500


def _row_versions(table, ids):
    """Each row's ``(xmin, xmax)``: a write or a lock of the row changes them."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT id, xmin::text, xmax::text FROM {table} WHERE id = ANY(%s) ORDER BY id", [list(ids)])
        return cur.fetchall()


def test_a_subject_and_facet_that_learn_nothing_are_neither_written_nor_locked(platform):
    """A signal repeating what its subject's rows hold leaves them as they are, unlocked: an upsert whose
    update is skipped still locks the row it conflicts with (a write of the lock), and a batch would wait
    for every other transaction holding one of its subjects. One that learns something still writes."""
    post = {"kind": "content", "external_id": "p-7", "owner": "u-7", "reach": 50, "attributes": {"ip": ["1.2.3.4"]}}
    signals_ingest(items=report(1) | {"subject": post}, actor=platform)
    subjects = list(Subject.objects.order_by("id").values_list("id", flat=True))
    facets = list(SubjectFacet.objects.values_list("id", flat=True))
    before = _row_versions("casework_subject", subjects), _row_versions("casework_subjectfacet", facets)

    same = post | {"reach": 10, "attributes": {}}  # a smaller reach, no new value, the same owner
    with transaction.atomic():  # a transaction of its own: its id would be the lock's
        signals_ingest(items=report(2) | {"subject": same}, actor=platform)
    assert (_row_versions("casework_subject", subjects), _row_versions("casework_subjectfacet", facets)) == before

    signals_ingest(items=report(3) | {"subject": post | {"reach": 80}}, actor=platform)
    content = Subject.objects.get(kind="content")
    assert content.reach == 80 and content.owner.external_id == "u-7"
    assert SubjectFacet.objects.get(subject=content).reach == 80


def test_content_owner_is_upserted_as_an_account(platform):
    post = {"kind": "content", "external_id": "p-1", "owner": "u-owner", "reach": 10}
    signals_ingest(items=report(1) | {"subject": post}, actor=platform)

    content = Subject.objects.get(kind="content")
    assert (content.owner.kind, content.owner.external_id) == ("account", "u-owner")
    # a later signal without an owner keeps it
    signals_ingest(items=report(2) | {"subject": post | {"owner": None}}, actor=platform)
    content.refresh_from_db()
    assert content.owner.external_id == "u-owner"
    assert Subject.objects.count() == 2


def test_future_times_are_clamped_to_receipt(platform):
    future = (timezone.now() + timedelta(minutes=5)).isoformat()
    signals_ingest(items=report(1, occurred_at=future), actor=platform)
    signal = Signal.objects.get()
    assert signal.occurred_at == signal.received_at


# --- idempotency --------------------------------------------------------------------------


def test_a_repeat_answers_the_stored_result_and_stores_nothing(platform):
    first = signals_ingest(items=report(1), actor=platform)
    before = state()

    again = signals_ingest(items=report(1, reason="changed", subject="u-other"), actor=platform)

    assert again.status == 200
    assert again.body == first.body
    assert state() == before
    assert Case.objects.get().signal_count == 1


def test_a_list_is_201_when_anything_is_new_and_answers_in_input_order(platform):
    first = signals_ingest(items=[report(1), report(2)], actor=platform)
    mixed = signals_ingest(items=[report(3), report(1), report(3)], actor=platform)
    repeat = signals_ingest(items=[report(2), report(1)], actor=platform)

    assert first.status == 201 and mixed.status == 201 and repeat.status == 200
    assert [r["external_id"] for r in mixed.body] == ["r-3", "r-1", "r-3"]
    assert mixed.body[1] == first.body[0]
    assert mixed.body[0] == mixed.body[2]
    assert mixed.created == 1
    assert repeat.body == [first.body[1], first.body[0]]
    assert Signal.objects.count() == 3


def test_the_same_external_id_from_two_sources_is_two_signals(platform):
    SourceFactory(slug="trusted", kind="trusted_flagger", trust=1.0)
    signals_ingest(items=[report(1), report(1, source="trusted")], actor=platform)
    assert Signal.objects.count() == 2
    assert Case.objects.get().signal_count == 2


# --- validation: all or nothing ---------------------------------------------------------------


def test_unknown_source(platform):
    error = refused(report(1, source="nope"), platform)
    assert (error.code, error.status) == ("unknown_source", 400)
    assert error.errors == {"source": ["Unknown source 'nope'."]}


def test_unknown_threat_class(platform):
    error = refused(report(1, threat="nope"), platform)
    assert (error.code, error.status) == ("unknown_threat_class", 400)
    assert error.errors == {"threat_class": ["Unknown threat class 'nope'."]}


def test_one_bad_item_stores_nothing_and_names_its_index(platform):
    error = refused([report(1), report(2), report(3, score=1.5)], platform)
    assert error.code == "invalid"
    assert error.errors == {"2": {"score": ["score must be between 0 and 1."]}}


def test_every_bad_item_is_reported(platform):
    error = refused([report(1, source="nope"), report(2), report(3, threat="nope")], platform)
    assert error.code == "unknown_source"
    assert set(error.errors) == {"0", "2"}
    assert error.errors["2"] == {"threat_class": ["Unknown threat class 'nope'."]}


def test_score_is_required_for_scored_sources_and_reporter_for_user_reports(platform):
    SourceFactory(slug="spam-classifier", kind="classifier")
    error = refused([detection(1, source="spam-classifier", score=None), report(2, reporter=None)], platform)
    assert error.errors["0"] == {"score": ["score is required for classifier sources."]}
    error = refused(report(2) | {"reporter": None}, platform)
    assert error.errors == {"reporter": ["reporter is required for user reports."]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"external_id": ""}, "external_id"),
        ({"external_id": 7}, "external_id"),
        ({"external_id": "x" * 201}, "external_id"),
        ({"external_id": "a\x00b"}, "external_id"),
        ({"score": True}, "score"),
        ({"score": "0.5"}, "score"),
        ({"score": float("inf")}, "score"),
        ({"score": -0.1}, "score"),
        ({"reason": ["x"]}, "reason"),
        ({"reason": "nul \x00"}, "reason"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-11-24T10:00:00"}, "occurred_at"),
        ({"occurred_at": 1700000000}, "occurred_at"),
        ({"subject": None}, "subject"),
        ({"subject": "u-1"}, "subject"),
        ({"subject": {"kind": "group", "external_id": "g"}}, "subject"),
        ({"subject": {"kind": "account", "external_id": "u", "owner": "x"}}, "subject"),
        ({"subject": {"kind": "account", "external_id": "u", "reach": -1}}, "subject"),
        ({"subject": {"kind": "account", "external_id": "u", "reach": 10**30}}, "subject"),
        ({"subject": {"kind": "account", "external_id": "u", "reach": 1.5}}, "subject"),
        ({"subject": {"kind": "account", "external_id": "u", "attributes": ["d"]}}, "subject"),
        ({"subject": {"kind": "account", "external_id": "u", "attributes": {"d": [{"x": 1}]}}}, "subject"),
        ({"subject": {"kind": "account", "external_id": "u", "attributes": {"d\x00": ["x"]}}}, "subject"),
    ],
)
def test_malformed_fields_are_invalid(platform, change, field):
    error = refused(report(1) | change, platform)
    assert error.code == "invalid"
    assert list(error.errors) == [field]


@pytest.mark.parametrize("body", [None, "signal", 42, [1, 2], [[]], {"": None}, {}])
def test_malformed_bodies_are_invalid(platform, body):
    error = refused(body, platform)
    assert (error.code, error.status) == ("invalid", 400)


def test_more_than_a_thousand_is_refused(platform):
    error = refused([report(n) for n in range(1001)], platform)
    assert error.code == "invalid"
    assert error.errors == {"non_field_errors": ["At most 1000 signals per request; got 1001."]}


def test_an_empty_list_stores_nothing(platform):
    result = signals_ingest(items=[], actor=platform)
    assert (result.status, result.body) == (200, [])


# --- dispositions -----------------------------------------------------------------------------


def test_disposition_for_rules():
    spam, harassment = threat_class("spam"), threat_class("harassment")
    t = Threshold(review_at=0.5, auto_action_at=0.9)

    def d(score, *, status="healthy", threshold=t, tc=spam, draw=0.5, kind="classifier"):
        return disposition_for(
            score=score, source_kind=kind, source_status=status, threshold=threshold, threat_class=tc, holdout_draw=draw
        )

    assert d(0.99, status="suspect") == "held"
    assert d(0.99, status="quarantined") == "held"
    assert d(0.49) == "below_threshold"
    assert d(0.5) == "queued"
    assert d(0.9) == "auto_actioned"
    assert d(0.9, draw=0.01) == "queued"  # the 2% holdout goes to a human
    assert d(0.9, draw=None) == "auto_actioned"
    assert d(0.99, tc=harassment) == "queued"  # the class allows no automation
    assert d(0.0, threshold=None) == "queued"  # no threshold: review from 0, never automated
    assert d(1.0, threshold=None) == "queued"
    assert d(None, kind="user_report") == "queued"


def test_the_threshold_rule_names_exactly_the_dispositions_and_the_holding_statuses_casework_stores():
    """The rule lives in policies, below casework: its names are casework's choices, checked here."""
    assert {QUEUED, AUTO_ACTIONED, HELD, BELOW_THRESHOLD} == set(Signal.Disposition.values)
    assert set(HOLDING_STATUSES) == set(SignalSource.Status.values) - {SignalSource.Status.HEALTHY}


def test_suspect_source_signals_are_held_without_a_case(platform):
    SourceFactory(slug="spam-classifier", kind="classifier", status="suspect")
    result = signals_ingest(items=detection(1, source="spam-classifier", score=0.99), actor=platform)
    assert (result.body["case"], result.body["disposition"]) == (None, "held")
    assert Signal.objects.get().disposition == "held"
    assert Case.objects.count() == 0


def test_below_threshold_is_stored_without_a_case(platform):
    source = SourceFactory(slug="spam-classifier", kind="classifier")
    Threshold.objects.create(source=source, threat_class=threat_class("spam"), review_at=0.6)
    result = signals_ingest(
        items=[detection(1, source="spam-classifier", score=0.3), detection(2, source="spam-classifier", score=0.6)],
        actor=platform,
    )
    assert [(r["disposition"], r["case"] is None) for r in result.body] == [
        ("below_threshold", True),
        ("queued", False),
    ]
    assert Case.objects.get().signal_count == 1


def test_auto_actioned_case_is_decided_by_automation(platform, settings):
    settings.DOCKET = {**settings.DOCKET, "HOLDOUT_RATE": 0.0}
    source = SourceFactory(slug="spam-classifier", kind="classifier")
    Threshold.objects.create(source=source, threat_class=threat_class("spam"), review_at=0.5, auto_action_at=0.9)

    result = signals_ingest(items=detection(1, source="spam-classifier", score=0.95), actor=platform)

    case = Case.objects.get()
    decision = Decision.objects.get()
    assert result.body == {
        "id": Signal.objects.get().id,
        "external_id": "r-1",
        "case": case.id,
        "disposition": "auto_actioned",
    }
    assert (case.status, case.holdout) == ("decided", False)
    assert (decision.action, decision.automated, decision.reviewer) == ("remove", True, None)
    assert list(case.events.values_list("kind", flat=True))[:2] == ["opened", "signals_added"]


def test_holdout_sends_an_automatable_signal_to_a_human(platform, settings):
    settings.DOCKET = {**settings.DOCKET, "HOLDOUT_RATE": 1.0}
    source = SourceFactory(slug="spam-classifier", kind="classifier")
    Threshold.objects.create(source=source, threat_class=threat_class("spam"), review_at=0.5, auto_action_at=0.9)

    result = signals_ingest(items=detection(1, source="spam-classifier", score=0.95), actor=platform)

    case = Case.objects.get()
    assert result.body["disposition"] == "queued"
    assert Signal.objects.get().holdout is True
    assert (case.status, case.holdout) == ("open", True)
    assert Decision.objects.count() == 0


def test_automation_leaves_a_case_under_human_review_to_the_human(platform, settings):
    settings.DOCKET = {**settings.DOCKET, "HOLDOUT_RATE": 0.0}
    source = SourceFactory(slug="spam-classifier", kind="classifier")
    Threshold.objects.create(source=source, threat_class=threat_class("spam"), review_at=0.5, auto_action_at=0.9)
    signals_ingest(items=report(1), actor=platform)
    Case.objects.update(status="in_review")

    result = signals_ingest(items=detection(2, source="spam-classifier", score=0.99), actor=platform)

    assert result.body["disposition"] == "queued"
    assert Case.objects.get().status == "in_review"
    assert Decision.objects.count() == 0


def test_harassment_is_never_automated(platform, settings):
    settings.DOCKET = {**settings.DOCKET, "HOLDOUT_RATE": 0.0}
    source = SourceFactory(slug="tox", kind="classifier")
    Threshold.objects.create(source=source, threat_class=threat_class("harassment"), review_at=0.1, auto_action_at=0.5)
    result = signals_ingest(items=detection(1, source="tox", threat="harassment", score=0.99), actor=platform)
    assert result.body["disposition"] == "queued"
    assert Case.objects.get().status == "open"


# --- after commit -------------------------------------------------------------------------------


def test_the_cases_are_ranked_at_commit_and_nothing_is_left_to_a_worker(platform, django_capture_on_commit_callbacks):
    signals_ingest(items=report(1), actor=platform)
    with django_capture_on_commit_callbacks() as callbacks:
        signals_ingest(items=[report(2), report(3, subject="u-2")], actor=platform)

    assert callbacks == []
    assert [(c.signal_count, c.priority > 0) for c in Case.objects.order_by("pk")] == [(2, True), (1, True)]


def test_a_broker_outage_does_not_fail_intake(platform, settings, django_capture_on_commit_callbacks, monkeypatch):
    """The automated decision's enforcement delivery cannot be queued: intake still stores and decides."""
    settings.DOCKET = {**settings.DOCKET, "HOLDOUT_RATE": 0.0}
    source = SourceFactory(slug="spam-classifier", kind="classifier")
    Threshold.objects.create(source=source, threat_class=threat_class("spam"), review_at=0.5, auto_action_at=0.9)
    monkeypatch.setattr(queueing, "_down_until", 0.0)
    with mock.patch("reviews.tasks.deliver_enforcements.delay", side_effect=ConnectionError("redis down")) as delay:
        with django_capture_on_commit_callbacks(execute=True):
            result = signals_ingest(items=detection(1, source="spam-classifier", score=0.95), actor=platform)
    delay.assert_called_once()
    assert Decision.objects.get().automated is True
    assert result.status == 201
    assert Signal.objects.count() == 1
