"""The periodic re-ranking never freezes the queue: real concurrent PostgreSQL connections."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from casework import priority
from casework.intake import signals_ingest
from casework.models import Case, RankMark
from casework.priority import case_reprioritise, cases_reprioritise_due
from casework.services import lock_case
from docket import queueing
from reviews.services import queue_claim
from tests.factories import CaseFactory, SubjectFactory
from tests.support import lock_timeout, second_connection_running

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(queueing, "_publish", lambda task, args, what: None)


def test_claim_and_intake_complete_at_once_while_a_priority_batch_is_in_flight(moderator, platform):
    later = timezone.now() + timedelta(days=1)
    # Ranked cases whose order does not change by itself for a day, and cases whose moment has come.
    top = CaseFactory(kind="spam", priority=50.0, rank_due_at=later)
    folded = CaseFactory(kind="spam", priority=20.0, rank_due_at=later, subject=SubjectFactory(external_id="loud"))
    due = [CaseFactory(kind="spam", priority=float(n), rank_due_at=timezone.now()) for n in range(1, 6)]

    # The batch's transaction stays open on another backend (its row locks held) while a claim and intake run;
    # a wait on a row it holds fails instead of hanging.
    with second_connection_running(cases_reprioritise_due) as ranked, lock_timeout("2s"):
        assert ranked == len(due)
        assignment = queue_claim(reviewer=moderator, queue_slug="spam")
        results = signals_ingest(
            items=[
                {
                    "source": "user-reports",
                    "external_id": "during-batch",
                    "threat_class": "spam",
                    "subject": {"kind": "account", "external_id": "loud"},
                    "reporter": "someone",
                }
            ],
            actor=platform,
        )

    assert assignment is not None and assignment.case_id == top.pk  # the highest-ranked claimable case
    assert (results.results[0]["case"], results.results[0]["disposition"]) == (folded.pk, "queued")
    folded.refresh_from_db()
    assert folded.signal_count == 1 and folded.priority_breakdown["merit"] > 0  # the fold re-ranked it
    # The batch committed: its cases are ranked and not due again before their next moment.
    now = timezone.now()
    assert not Case.objects.filter(pk__in=[c.pk for c in due], rank_due_at__lte=now).exists()


def test_the_priority_refresh_runs_without_jit_and_only_the_sweep_commits_asynchronously():
    """The refresh's cost estimate passes jit_above_cost at any size; compiling it cost more than running it.

    The periodic sweep commits asynchronously (it is redone if lost); a refresh inside intake's transaction
    leaves intake's commit synchronous.
    """
    case = CaseFactory(kind="spam", priority=1.0, rank_due_at=timezone.now())
    settings = "SELECT current_setting('jit'), current_setting('synchronous_commit')"
    with transaction.atomic():
        assert cases_reprioritise_due() == 1
        with connection.cursor() as cur:
            cur.execute(settings)
            assert cur.fetchone() == ("off", "off")
    case.refresh_from_db()
    assert case.priority_breakdown["merit"] > 0
    with transaction.atomic():
        assert case_reprioritise(case_ids=[case.pk]) == 1
        with connection.cursor() as cur:
            cur.execute(settings)
            assert cur.fetchone() == ("off", "on")


def test_a_batch_skips_a_due_case_another_transaction_holds_and_leaves_it_due():
    """The batch locks its rows only to write them, skipping held ones: it never waits, the held case stays due."""
    now = timezone.now()
    held = CaseFactory(kind="spam", priority=1.0, rank_due_at=now - timedelta(minutes=1))
    others = [CaseFactory(kind="spam", priority=1.0, rank_due_at=now) for _ in range(3)]
    with second_connection_running(lambda: lock_case(held.pk)), lock_timeout():  # as a decision holds it
        assert cases_reprioritise_due() == len(others)
    held.refresh_from_db()
    assert held.rank_due_at <= timezone.now()  # still due: the next run ranks it
    assert not Case.objects.filter(pk__in=[c.pk for c in others], rank_due_at__lte=now).exists()
    assert cases_reprioritise_due() == 1


def _intake(n, *, subject, threat="spam"):
    return {
        "source": "user-reports",
        "external_id": f"mark-{n}",
        "threat_class": threat,
        "subject": {"kind": "account", "external_id": subject},
        "reporter": f"reporter-{n}",
    }


def test_marked_cases_are_re_ranked_and_unmarked_and_a_held_one_stays_marked(platform):
    """The job re-ranks marked cases in short batches, skipping a row another transaction holds (its mark
    stays, for the next run); a mark on a case no longer active is simply removed."""
    later = timezone.now() + timedelta(days=1)
    marked = [CaseFactory(kind="spam", priority=1.0, rank_due_at=later) for _ in range(3)]
    held = CaseFactory(kind="spam", priority=1.0, rank_due_at=later)
    closed = CaseFactory(kind="spam", priority=1.0, rank_due_at=later, status="decided", decided_at=timezone.now())
    now = timezone.now()
    RankMark.objects.bulk_create(RankMark(case_id=c.pk, marked_at=now) for c in [*marked, held, closed])

    with second_connection_running(lambda: lock_case(held.pk)), lock_timeout():  # as a decision holds it
        assert cases_reprioritise_due(batch=2) == len(marked)

    assert list(RankMark.objects.values_list("case_id", "marked_at")) == [(held.pk, now)]
    for case in marked:
        case.refresh_from_db()
        assert case.priority_breakdown["merit"] > 0
    assert cases_reprioritise_due() == 1  # the next run
    assert not RankMark.objects.exists()


def test_a_case_both_due_and_marked_is_re_ranked_once_in_a_run(platform):
    """Its moment's batch takes its mark too (the re-rank covers both), so the marks' pass does not rank it
    again; a case only marked is still ranked by that pass."""
    now = timezone.now()
    both = CaseFactory(kind="spam", priority=1.0, rank_due_at=now - timedelta(minutes=1))
    marked = CaseFactory(kind="spam", priority=1.0, rank_due_at=now + timedelta(days=1))
    RankMark.objects.bulk_create(RankMark(case_id=c.pk, marked_at=now) for c in [both, marked])

    assert cases_reprioritise_due() == 2  # each case once: the due one in its batch, the marked one in the marks'

    assert not RankMark.objects.exists()
    for case in (both, marked):
        case.refresh_from_db()
        assert case.priority_breakdown["merit"] > 0 and case.rank_due_at > timezone.now()


def test_a_mark_made_while_a_batch_has_taken_it_is_kept_after_the_batch(platform):
    """Intake marks a case the job's batch has just taken (its re-rank cannot see intake's signal): intake waits
    for that batch, then marks the case again, so the next run ranks it with the signal."""
    CaseFactory(kind="harassment", subject=SubjectFactory(external_id="both"), rank_due_at=timezone.now())
    cases_reprioritise_due()
    signals_ingest(items=_intake(1, subject="both"), actor=platform)  # a spam case: the harassment one is marked
    harassment = Case.objects.get(subject__external_id="both", threat_class__slug="harassment")
    assert list(RankMark.objects.values_list("case_id", flat=True)) == [harassment.pk]
    done, waited = threading.Event(), []

    def intake():
        try:
            signals_ingest(items=_intake(2, subject="both"), actor=platform)
        finally:
            done.set()
            connection.close()

    with second_connection_running(cases_reprioritise_due):  # the batch took the mark; not committed yet
        with connection.cursor() as cur:
            cur.execute("SELECT case_id FROM casework_rankmark FOR UPDATE SKIP LOCKED")
            assert cur.fetchall() == []  # the batch holds the mark it took
        thread = threading.Thread(target=intake)
        thread.start()
        waited.append(not done.wait(1.0))  # intake waits for the batch on the mark
    thread.join(10)

    assert waited == [True] and done.is_set()
    assert list(RankMark.objects.values_list("case_id", flat=True)) == [harassment.pk]


def test_the_job_skips_a_mark_whose_marker_has_not_committed(platform):
    """A marker holds its mark until it commits (its signals with it): the job leaves that mark for the next run,
    and never waits for the marker."""
    CaseFactory(kind="harassment", subject=SubjectFactory(external_id="both"), rank_due_at=timezone.now())
    signals_ingest(items=_intake(1, subject="both"), actor=platform)
    harassment = Case.objects.get(subject__external_id="both", threat_class__slug="harassment")
    spam = Case.objects.get(subject__external_id="both", threat_class__slug="spam")
    cases_reprioritise_due()
    RankMark.objects.create(case_id=harassment.pk, marked_at=timezone.now())  # marked by an earlier intake

    def mark_siblings():  # what a later intake's re-rank of the spam case does, in flight: it locks the mark
        with connection.cursor() as cur:
            cur.execute(priority._SIBLINGS_DUE_SQL, {"now": timezone.now(), "touched": priority._id_array([spam.pk])})

    with second_connection_running(mark_siblings), lock_timeout():
        assert cases_reprioritise_due() == 0

    assert list(RankMark.objects.values_list("case_id", flat=True)) == [harassment.pk]
