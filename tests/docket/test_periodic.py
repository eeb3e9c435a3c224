import threading

import pytest
from celery import shared_task
from django.core.management import call_command
from django.db import connection

from docket.batches import batches
from docket.celery import app
from docket.periodic import _JOBS, SKIPPED, beat_schedule, job_run, jobs, periodic, run_periodic_job
from tests.support import second_connection

# Every periodic job and its period in seconds, pinned: a job that stops being registered (say, its
# tasks module is no longer imported) or changes period fails here, not silently in production.
EXPECTED_JOBS = {
    "policies.tasks.refresh_metrics": 60,
    "casework.tasks.reprioritise_open_cases": 15,
    "casework.tasks.compact_queue_tallies": 30,
    "casework.tasks.check_source_health": 300,
    "casework.tasks.detect_campaigns": 600,
    "casework.tasks.purge_personal_data": 3600,
    "reviews.tasks.deliver_due_enforcements": 30,
    "reviews.tasks.expire_leases": 30,
    "reviews.tasks.escalate_sla_breaches": 60,
    "reviews.tasks.deliver_due_notices": 30,
    "reviews.tasks.submit_statements": 60,
    "appeals.tasks.release_stale_appeal_claims": 300,
    "docket.tasks.record_expired_tokens": 300,
}


def test_the_periodic_jobs_and_their_periods_are_exactly_the_expected_ones():
    assert {job.name: job.seconds for job in jobs()} == EXPECTED_JOBS
    assert {name: entry["schedule"] for name, entry in beat_schedule().items()} == EXPECTED_JOBS


def test_beat_schedule_matches_registered_jobs():
    schedule = beat_schedule()
    assert set(schedule) == {job.name for job in jobs()}
    for job in jobs():
        assert job.name in app.tasks or app.tasks.get(job.name) is not None
        assert schedule[job.name]["schedule"] == job.seconds


@pytest.mark.django_db
def test_docket_tick_runs_every_job(capsys):
    call_command("docket_tick")
    out = capsys.readouterr().out
    for job in jobs():
        assert f"{job.name}: ok" in out


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_overlapping_firings_of_a_job_run_it_once():
    """Beat fires again while the previous run is still going (on another connection): skipped, not doubled."""
    started, release, runs = threading.Event(), threading.Event(), []

    @shared_task(name="tests.docket.slow_job")
    def slow_job():
        runs.append(threading.get_ident())
        started.set()
        release.wait(10)
        return "done"

    periodic(seconds=60)(slow_job)
    results = {}

    def fire(key):
        try:
            results[key] = run_periodic_job.apply(args=[slow_job.name]).get()
        finally:
            connection.close()

    try:
        first = threading.Thread(target=fire, args=["first"])
        first.start()
        assert started.wait(10)
        fire("second")  # this thread, its own connection, while the first run holds the job
        release.set()
        first.join(10)
        assert results == {"first": "done", "second": SKIPPED}
        assert len(runs) == 1
        assert job_run(slow_job.name) == "done"  # once the first run ended, the next firing runs it
        assert len(runs) == 2
    finally:
        release.set()
        _JOBS.pop(slow_job.name, None)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_firings_on_separate_connections_run_the_job_once():
    """Four firings released at one barrier, each on its own connection: one runs, three are skipped, not doubled.

    The run holds until every other firing has answered, so they all overlap it, whichever reaches
    PostgreSQL first.
    """
    n = 4
    barrier, answered, runs = threading.Barrier(n), threading.Semaphore(0), []
    others_answered = threading.Event()

    @shared_task(name="tests.docket.contended_job")
    def contended_job():
        runs.append(threading.get_ident())
        others_answered.wait(20)
        return "done"

    periodic(seconds=60)(contended_job)
    results = [None] * n

    def fire(i):
        try:
            barrier.wait(10)
            results[i] = run_periodic_job.apply(args=[contended_job.name]).get()
        finally:
            answered.release()
            connection.close()

    threads = [threading.Thread(target=fire, args=[i]) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for _ in range(n - 1):
            assert answered.acquire(timeout=20)  # the skipped firings answer while the run still holds the job
        others_answered.set()
        for t in threads:
            t.join(20)
        assert sorted(results, key=str) == ["done", *[SKIPPED] * (n - 1)]
        assert len(runs) == 1
    finally:
        others_answered.set()
        _JOBS.pop(contended_job.name, None)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_job_whose_worker_died_mid_run_runs_again_at_the_next_firing():
    """The guard is the run's session: when its connection dies (a killed worker), the job is free at once."""
    started, runs = threading.Event(), []

    @shared_task(name="tests.docket.killed_job")
    def killed_job():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            runs.append(cur.fetchone()[0])
        started.set()
        with connection.cursor() as cur:
            cur.execute("SELECT pg_sleep(20)")  # ended by the kill below
        return "done"

    periodic(seconds=60)(killed_job)
    outcome = {}

    def fire():
        try:
            outcome["result"] = run_periodic_job.apply(args=[killed_job.name]).get()
        except Exception as e:  # the killed run's connection error
            outcome["error"] = e
        finally:
            connection.close()

    try:
        dying = threading.Thread(target=fire)
        dying.start()
        assert started.wait(10)
        assert job_run(killed_job.name) == SKIPPED  # while it runs
        with second_connection(autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [runs[0]])
        dying.join(20)
        assert "error" in outcome
        started.clear()
        fire_again = threading.Thread(target=fire)
        fire_again.start()
        assert started.wait(10)  # the next firing runs it
        assert len(runs) == 2
        with second_connection(autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [runs[1]])
        fire_again.join(20)
    finally:
        _JOBS.pop(killed_job.name, None)


def test_beat_fires_every_job_through_the_once_at_a_time_wrapper():
    for name, entry in beat_schedule().items():
        assert entry["task"] == run_periodic_job.name
        assert entry["args"] == (name,)


@pytest.mark.django_db
def test_each_batch_runs_without_jit_and_a_job_logs_its_duration(caplog):
    """A batch statement's cost estimate must not buy a JIT compile longer than the batch (rows held meanwhile)."""
    seen = []

    def step(size):
        with connection.cursor() as cur:
            cur.execute("SELECT current_setting('jit'), current_setting('synchronous_commit')")
            seen.append(cur.fetchone())
        return 0

    batches(step, size=10)
    assert seen == [("off", "off")]  # and a batch's rows are released without waiting for its WAL flush

    @shared_task(name="tests.docket.quick_job")
    def quick_job():
        return 7

    periodic(seconds=60)(quick_job)
    try:
        with caplog.at_level("INFO", logger="docket.periodic"):
            assert job_run(quick_job.name) == 7
        assert any("periodic job tests.docket.quick_job done in" in r.getMessage() for r in caplog.records)
    finally:
        _JOBS.pop(quick_job.name, None)
