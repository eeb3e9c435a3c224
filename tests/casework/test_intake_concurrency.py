"""Intake under concurrent requests, on real concurrent PostgreSQL connections."""

import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from casework.intake import signals_ingest, store
from casework.models import Case, CaseEvent, Reporter, Signal, Subject, SubjectAttribute
from docket import queueing
from policies.models import Threshold
from reviews.models import Decision
from tests.factories import CaseFactory, SourceFactory, threat_class
from tests.support import lock_timeout, run_threads, second_connection

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(queueing, "_publish", lambda task, args, what: None)


@pytest.fixture(autouse=True)
def gate_open(settings):
    """The batches here overlap, as they do with the intake gate off or wider than the batches in flight
    (the gate's own tests set it)."""
    settings.DOCKET = {**settings.DOCKET, "INTAKE_CONCURRENCY": 0}


def run_together(jobs):
    """Run each job in its own thread (its own connection), started at once; results in order."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def worker(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except Exception as e:  # surfaced by the assertion below
            results[i] = e
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    return results


def report(n, subject):
    return {
        "source": "user-reports",
        "external_id": f"r-{n}",
        "threat_class": "harassment",
        "subject": {"kind": "account", "external_id": subject, "reach": 10},
        "reporter": f"rep-{n}",
    }


def test_concurrent_duplicate_requests_store_each_signal_once(platform):
    batch = [report(n, subject=f"u-{n % 4}") for n in range(20)]

    results = run_together([lambda: signals_ingest(items=batch, actor=platform) for _ in range(6)])

    assert Signal.objects.count() == 20
    assert sum(r.created for r in results) == 20
    assert all(r.body == results[0].body for r in results)
    assert Case.objects.count() == 4
    for case in Case.objects.all():
        assert (case.signal_count, case.reporter_count) == (5, 5)
        assert case.events.filter(kind="opened").count() == 1
    assert sum(e.detail["signals"] for e in CaseEvent.objects.filter(kind="signals_added")) == 20


def test_concurrent_single_duplicates_answer_the_same_signal(platform):
    results = run_together([lambda: signals_ingest(items=report(1, "u-1"), actor=platform) for _ in range(8)])

    signal = Signal.objects.get()
    assert sorted(r.status for r in results) == [200] * 7 + [201]
    assert {r.body["id"] for r in results} == {signal.id}
    assert Case.objects.get().signal_count == 1


def test_concurrent_signals_on_one_subject_fold_into_one_case(platform):
    batches = [[report(t * 10 + n, "victim") for n in range(10)] for t in range(6)]

    run_together([lambda b=b: signals_ingest(items=b, actor=platform) for b in batches])

    case = Case.objects.get()
    assert (case.signal_count, case.reporter_count) == (60, 60)
    assert Subject.objects.count() == 1
    assert case.events.filter(kind="opened").count() == 1


def test_concurrent_duplicates_leave_nothing_of_the_discarded_payloads(platform):
    """One signal sent 8 times at once, each copy naming another subject, attribute and reporter:
    only the stored copy's subject, attribute values and reporter exist afterwards."""

    def copy(i):
        return {
            "source": "user-reports",
            "external_id": "r-dup",
            "threat_class": "harassment",
            "subject": {"kind": "account", "external_id": f"u-{i}", "reach": 10, "attributes": {"ip": [f"10.0.0.{i}"]}},
            "reporter": f"rep-{i}",
        }

    results = run_threads(8, lambda i: signals_ingest(items=copy(i), actor=platform))

    signal = Signal.objects.select_related("subject", "reporter").get()
    assert sorted(r.status for r in results) == [200] * 7 + [201]
    assert {r.body["id"] for r in results} == {signal.id}
    assert list(Subject.objects.values_list("external_id", flat=True)) == [signal.subject.external_id]
    winner = signal.subject.external_id.removeprefix("u-")
    assert list(SubjectAttribute.objects.values_list("kind", "value")) == [("ip", f"10.0.0.{winner}")]
    assert list(Reporter.objects.values_list("external_id", flat=True)) == [f"rep-{winner}"]


def test_a_case_opened_while_a_batch_folds_is_joined_and_automation_leaves_it_to_its_reviewer(
    platform, settings, monkeypatch
):
    """Between the fold's look-up and the insert of its new case, another connection opens the subject's spam
    case and a reviewer holds it: the batch's signal moves to that case, queued, and nothing else is opened."""
    settings.DOCKET = {**settings.DOCKET, "HOLDOUT_RATE": 0.0}
    source = SourceFactory(slug="spam-classifier", kind="classifier")
    Threshold.objects.create(source=source, threat_class=threat_class("spam"), review_at=0.5, auto_action_at=0.9)
    signals_ingest(items=report(1, "u-1") | {"threat_class": "spam"}, actor=platform)
    earlier = Case.objects.get()
    Case.objects.update(status="decided", decided_at=earlier.created_at)
    settle, winner = store.cases_settle, []

    def open_meanwhile(fold, items, *, now):
        winner.extend(run_threads(1, lambda _: CaseFactory(subject=earlier.subject, status="in_review").pk))
        return settle(fold, items, now=now)

    monkeypatch.setattr(store, "cases_settle", open_meanwhile)
    item = report(2, "u-1") | {"source": "spam-classifier", "threat_class": "spam", "score": 0.99}
    del item["reporter"]
    result = signals_ingest(items=item, actor=platform)

    signal = Signal.objects.get(external_id="r-2")
    assert result.body == {"id": signal.id, "external_id": "r-2", "case": winner[0], "disposition": "queued"}
    assert (signal.case_id, signal.disposition) == (winner[0], "queued")
    case = Case.objects.get(pk=winner[0])
    assert (case.status, case.signal_count) == ("in_review", 1)
    assert Case.objects.count() == 2 and Decision.objects.count() == 0
    assert list(case.events.values_list("kind", flat=True)) == ["signals_added"]


# --- the intake gate: INTAKE_CONCURRENCY batches write at once ---------------------------------------


@contextmanager
def _batch_in_flight(platform, n):
    """A batch of intake written on a connection of its own, its transaction held open for the block."""
    written, release, errors = threading.Event(), threading.Event(), []

    def ingest():
        try:
            with transaction.atomic():
                signals_ingest(items=[report(n, f"u-{n}")], actor=platform)
                written.set()
                release.wait(20)
        except Exception as e:  # surfaced below
            errors.append(e)
        finally:
            written.set()
            connection.close()

    thread = threading.Thread(target=ingest)
    thread.start()
    written.wait(20)
    try:
        assert errors == []
        yield
    finally:
        release.set()
        thread.join(20)
    assert errors == []


def _gate_waiters(pid):
    with second_connection(autocommit=True) as other:
        return other.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND NOT granted"
            " AND classid = %s AND objsubid = 2",
            [pid, store.GATE_LOCK],
        ).fetchone()[0]


def _ingest_waiting_at_the_gate(platform, n):
    """Start a batch on a connection of its own; return its thread and result once it waits at the gate."""
    out = {}

    def ingest():
        connection.ensure_connection()
        out["pid"] = connection.connection.info.backend_pid
        try:
            out["result"] = signals_ingest(items=[report(n, f"u-{n}")], actor=platform)
        except Exception as e:  # surfaced by the caller's assertion
            out["result"] = e
        finally:
            connection.close()

    thread = threading.Thread(target=ingest)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not ("pid" in out and _gate_waiters(out["pid"])):
        time.sleep(0.05)
    assert "pid" in out and _gate_waiters(out["pid"]) == 1, "the batch did not queue at the gate"
    return thread, out


def test_with_one_slot_a_batch_waits_at_the_gate_for_the_batch_in_flight_then_writes(platform, settings):
    settings.DOCKET = {**settings.DOCKET, "INTAKE_CONCURRENCY": 1}
    with _batch_in_flight(platform, 1):
        thread, out = _ingest_waiting_at_the_gate(platform, 2)
        time.sleep(0.3)
        assert thread.is_alive() and "result" not in out  # still waiting while the other batch writes
    thread.join(10)

    assert out["result"].created == 1
    assert set(Signal.objects.values_list("external_id", flat=True)) == {"r-1", "r-2"}
    assert Case.objects.count() == 2


def test_a_free_slot_is_taken_at_once_and_with_every_slot_taken_a_batch_queues(platform, settings):
    settings.DOCKET = {**settings.DOCKET, "INTAKE_CONCURRENCY": 2}
    with _batch_in_flight(platform, 1):
        with lock_timeout("2s"):  # a wait at the gate would fail here, not hang
            for n in range(2, 6):  # each takes the free slot (never queues for one picked at random)
                assert signals_ingest(items=[report(n, f"u-{n}")], actor=platform).created == 1
        with _batch_in_flight(platform, 6):
            thread, out = _ingest_waiting_at_the_gate(platform, 7)
    thread.join(10)

    assert out["result"].created == 1
    assert Signal.objects.count() == 7


def test_concurrency_0_lets_every_batch_write_at_once(platform, settings):
    settings.DOCKET = {**settings.DOCKET, "INTAKE_CONCURRENCY": 1}
    with _batch_in_flight(platform, 1):
        settings.DOCKET = {**settings.DOCKET, "INTAKE_CONCURRENCY": 0}
        with lock_timeout("2s"):
            assert signals_ingest(items=[report(2, "u-2")], actor=platform).created == 1
