"""Docket's own infrastructure failing: Redis, a Celery worker, the platform's webhook, PostgreSQL.

What each test proves (docs/operations.md repeats it for operators):

* Redis down during intake: the broker and the cache point at a closed port; signals are still
  stored and answered 201 and cases can be claimed (state of record is PostgreSQL); the lost
  per-case task is made up by the beat sweep, run through ``docket_tick`` once Redis is back.
* A worker killed mid-task: a real ``celery worker`` subprocess (prefork, one child) consumes a
  delivery task against the test database and the system Redis; the test SIGKILLs the child while
  it is inside the webhook POST. With ``acks_late`` and ``reject_on_worker_lost`` the message is
  redelivered to a fresh child, which delivers again: the platform sees the same stable ``id``
  twice (at-least-once, deduplicated by id) and the outbox row records exactly one delivery.
* The platform's webhook down for an hour of simulated time: the delivery sweep runs every 30
  simulated seconds (its beat period) on a patched clock; while the receiver answers 503 nothing
  is lost, and once it is back every enforcement arrives exactly once by id.
* PostgreSQL connection dropped mid-request: ``pg_terminate_backend`` from another connection kills
  the request's backend in the middle of intake; the answer is the 503 ``unavailable`` envelope,
  nothing of the batch is stored, and the retried request stores it once.
* Every periodic task is ``acks_late`` and idempotent: ``docket_tick`` run twice at one instant
  leaves the database exactly as once.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from casework.intake import store as intake_store
from casework.models import Case, Queue, Signal, Subject
from casework.priority import case_reprioritise
from docket import queueing
from docket.celery import app as celery_app
from docket.periodic import jobs
from reviews.accounts import user_upsert
from reviews.models import Enforcement
from reviews.tasks import deliver_due_enforcements, deliver_enforcements
from tests.factories import threat_class
from tests.support import process_env, process_stop, second_connection

from .conftest import api_client, db_state, decide

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(n, *, kind="spam", subject=None):
    return {
        "source": "user-reports",
        "external_id": f"fault-{n}",
        "threat_class": kind,
        "subject": {"kind": "account", "external_id": subject or f"u-fault-{n}", "reach": 1000},
        "reporter": f"u-reporter-{n}",
        "reason": "spam",
    }


# --- Redis down during intake -------------------------------------------------------------------------------------


@contextmanager
def redis_down():
    """Broker and cache both at a port nobody listens on (connections are refused at once)."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    caches = {"default": {**settings.CACHES["default"], "LOCATION": dead}}
    old = celery_app.conf.broker_url
    _celery_broker(dead)
    try:
        with override_settings(CACHES=caches):
            yield
    finally:
        _celery_broker(old)


def _celery_broker(url):
    # Celery keeps a connection pool and a producer pool for the URL it started with.
    celery_app.conf.broker_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.mark.django_db
def test_redis_down_intake_still_stores_ranks_and_answers_201_and_the_periodic_jobs_catch_up(
    cast, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    monkeypatch.setattr(queueing, "_down_until", 0.0)
    platform, moderator = api_client(cast["platform"]), api_client(cast["moderator"])
    with redis_down():
        with django_capture_on_commit_callbacks(execute=True):
            one = platform.post("/api/v1/signals/", report(1), format="json")
        with django_capture_on_commit_callbacks(execute=True):
            batch = platform.post("/api/v1/signals/", [report(2), report(3)], format="json")
        claim = moderator.post("/api/v1/queues/spam/claim/")
    assert (one.status_code, batch.status_code, claim.status_code) == (201, 201, 201)
    assert Signal.objects.count() == 3
    assert Case.objects.filter(status__in=["open", "in_review"]).count() == 3
    # The cases were ranked in intake's transaction: nothing had to reach the broker for them.
    assert all(c.priority > 0 and "merit" in c.priority_breakdown for c in Case.objects.all())
    assert not queueing.broker_down()
    assert "could not enqueue" not in caplog.text

    # Redis is back; two hours pass before the beat sweep runs (docket_tick runs every periodic job).
    cases = list(Case.objects.order_by("pk"))
    later = timezone.now() + timedelta(hours=2)
    with mock.patch("django.utils.timezone.now", return_value=later):
        call_command("docket_tick", stdout=open(os.devnull, "w"))  # noqa: SIM115
    swept = {c.pk: c.priority for c in Case.objects.all()}
    aged = {c.pk: c.priority_breakdown["aging_factor"] for c in Case.objects.all()}
    # The sweep re-ranked every active case at the new time (aging moved on; velocity decayed) ...
    assert all(aged[c.pk] > c.priority_breakdown["aging_factor"] for c in cases)
    # ... to exactly what the lost per-case task would have computed.
    case_reprioritise(case_ids=list(swept), now=later)
    assert {c.pk: c.priority for c in Case.objects.all()} == swept


# --- a worker killed mid-task -------------------------------------------------------------------------------------


class Platform:
    """The platform's webhook receiver: records each delivery's id; scripted to block, fail or answer."""

    def __init__(self):
        self.ids = []
        self.down = False
        self.block_first = False
        self.first_arrived = threading.Event()
        self.release_first = threading.Event()
        self.lock = threading.Lock()
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with platform.lock:
                    first = not platform.first_arrived.is_set()
                    platform.first_arrived.set()
                    if platform.down:
                        status = 503
                    else:
                        status = 200
                        platform.ids.append(body["id"])
                if first and platform.block_first:
                    platform.release_first.wait(60)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender was killed while we held the request
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/enforcement"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release_first.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    platform = Platform()
    settings.PLATFORM_WEBHOOK_URL = platform.url
    yield platform
    platform.close()


def children_of(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def celery_worker(queue, webhook_url):
    """A real worker process on the test database, consuming only ``queue`` (its own), one child."""
    env = process_env(
        PLATFORM_WEBHOOK_URL=webhook_url, DOCKET_WEBHOOK_TIMEOUT_SECONDS="60", CELERY_TASK_ALWAYS_EAGER="0"
    )
    command = [sys.executable, "-m", "celery", "-A", "docket", "worker", "-Q", queue, "-c", "1", "-P", "prefork"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
    command += ["-n", f"{queue}@%h"]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield worker
    finally:
        process_stop(worker)

        redis.Redis.from_url(settings.REDIS_URL).delete(queue)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_delivery_redelivers_and_the_effect_happens_once(cast, receiver):
    case = Case.objects.create(**_open_case_fields("spam"))
    decision = decide(case, _decider(), cast["senior"])
    enforcement = Enforcement.objects.get(decision=decision)
    assert enforcement.status == "pending"
    receiver.block_first = True
    queue = f"reliability-{uuid.uuid4().hex[:8]}"

    with celery_worker(queue, receiver.url) as worker:
        deliver_enforcements.apply_async(args=[[enforcement.pk]], queue=queue)
        wait_for(receiver.first_arrived.is_set, 90, "the worker's first delivery attempt")
        child = children_of(worker.pid)
        assert len(child) == 1, child
        os.kill(child[0], signal.SIGKILL)  # mid-task: the POST is in flight, the row lock held
        receiver.release_first.set()
        try:
            wait_for(lambda: Enforcement.objects.get(pk=enforcement.pk).status == "delivered", 60, "redelivery")
        except AssertionError:
            # The redelivered task found the row still locked by the dying backend and left it (SKIP
            # LOCKED): the beat sweep is the designed backstop. Run it as beat would.
            deliver_due_enforcements()
        assert worker.poll() is None  # the worker survived its child

    enforcement.refresh_from_db()
    assert (enforcement.status, enforcement.attempts) == ("delivered", 1)  # the killed attempt rolled back
    assert Enforcement.objects.filter(decision=decision).count() == 1
    # The platform saw the same stable id twice: at-least-once delivery, deduplicated by id.
    assert receiver.ids == [str(enforcement.public_id)] * 2


def _decider():
    return user_upsert(username="r-decider", role_names=["moderator"], clearances=["csam", "cib"], max_active=50)


def _open_case_fields(kind):
    tc = threat_class(kind)
    now = timezone.now()
    subject = Subject.objects.create(kind="account", external_id=f"u-{uuid.uuid4().hex[:10]}", reach=10)

    return dict(
        subject=subject,
        threat_class=tc,
        queue=Queue.objects.get(slug=kind),
        severity=tc.severity,
        harm_weight=tc.harm_weight,
        first_signal_at=now,
        last_signal_at=now,
        created_at=now,
        sla_due_at=now + timedelta(seconds=tc.sla_seconds),
        signal_count=1,
        reporter_count=1,
    )


# --- the platform's webhook down for an hour ----------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_down_for_an_hour_every_enforcement_arrives_once_it_returns(cast, receiver):
    decider = _decider()
    start = timezone.now()
    clock = {"now": start}

    def decide_some(n, kind="spam"):
        for _ in range(n):
            decide(Case.objects.create(**_open_case_fields(kind)), decider, cast["senior"])

    receiver.down = True
    with mock.patch("django.utils.timezone.now", side_effect=lambda: clock["now"]):
        decide_some(4)
        decide_some(1, kind="csam")  # a violation also files a legal report: two outbox rows
        step = timedelta(seconds=30)  # the sweep's beat period
        while clock["now"] < start + timedelta(hours=3):
            if clock["now"] == start + timedelta(minutes=30):
                decide_some(3)  # decisions keep coming during the outage
            if clock["now"] >= start + timedelta(hours=1):
                receiver.down = False
            deliver_due_enforcements()
            clock["now"] += step
            if not receiver.down and not Enforcement.objects.filter(status="pending").exists():
                break

    rows = list(Enforcement.objects.all())
    assert len(rows) == 4 + 2 + 3
    assert {r.status for r in rows} == {"delivered"}
    assert all(r.delivered_at >= start + timedelta(hours=1) for r in rows)  # nothing got through while down
    counts = Counter(receiver.ids)
    assert set(counts) == {str(r.public_id) for r in rows}
    assert set(counts.values()) == {1}  # none delivered twice


# --- PostgreSQL connection dropped mid-request -------------------------------------------------------------------


def _kill_my_backend():
    """From a second connection, terminate the backend serving Django's connection."""
    pid = connection.connection.info.backend_pid
    with second_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_for(lambda: not _backend_alive(pid), 10, "the backend to go")


def _backend_alive(pid):
    with second_connection() as other:
        return other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is not None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_connection_dropped_mid_intake_is_a_clean_503_and_nothing_half_written(cast):
    platform = api_client(cast["platform"])
    batch = [report(n) for n in range(1, 6)] + [report(6, subject="u-fault-1")]
    before = db_state()
    real = intake_store._attributes_upsert

    def dropped_after_the_inserts(*args, **kwargs):
        _kill_my_backend()  # signals, subjects and the ranked cases are written, not yet committed
        return real(*args, **kwargs)

    with mock.patch.object(intake_store, "_attributes_upsert", side_effect=dropped_after_the_inserts):
        response = platform.post("/api/v1/signals/", batch, format="json")
    assert response.status_code == 503
    assert response.json() == {"code": "unavailable", "detail": "The database is unavailable; nothing was changed."}
    connection.close()  # what the request's end does for a broken connection in a real server
    assert db_state() == before

    retry = platform.post("/api/v1/signals/", batch, format="json")
    assert retry.status_code == 201
    assert Signal.objects.count() == 6
    assert Case.objects.count() == 5
    assert Signal.objects.filter(case__isnull=False).count() == 6


# --- periodic tasks: acks_late and idempotent --------------------------------------------------------------------


def test_every_periodic_task_and_deferred_task_acks_late_and_requeues_on_worker_loss():
    tasks = [job.task for job in jobs()] + [deliver_enforcements, celery_app.tasks["casework.tasks.reprioritise_cases"]]
    assert len(tasks) >= 8
    assert [t.name for t in tasks if not t.acks_late] == []
    assert celery_app.conf.task_reject_on_worker_lost is True
    assert celery_app.conf.worker_prefetch_multiplier == 1


@pytest.mark.django_db
def test_docket_tick_twice_at_one_instant_leaves_the_database_as_once(world):
    devnull = open(os.devnull, "w")  # noqa: SIM115
    at = timezone.now() + timedelta(days=4)  # past SLAs, leases expired: every job has work
    with mock.patch("django.utils.timezone.now", return_value=at):
        call_command("docket_tick", stdout=devnull)
        once = db_state()
        call_command("docket_tick", stdout=devnull)
        twice = db_state()
    assert once == twice
