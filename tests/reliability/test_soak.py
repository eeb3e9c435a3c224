"""Soak: 64 reviewers and the platform hammering a live server, then an audit of what happened.

A real gunicorn (``-w 4 --threads 8``) serves Docket on the test database with 4-second leases.
For ``DOCKET_SOAK_SECONDS`` (default 60; CI may set minutes) 64 reviewer clients, one thread and one
HTTP session each, claim from the spam and harassment queues and then decide, release, skip, or walk
away and let the lease expire; two platform clients push signal batches (and resend some: the
idempotency path); a sweeper ends expired leases every half second, as beat would.

The audit afterwards, from the database alone:

* no double assignment: at most one active assignment per case (the constraint), and, walking each
  case's timeline in event-id order, no assignment starts while another is open. Event ids are a
  sequence drawn while the case row is locked, so their order is the order in which the claims,
  releases, expiries and decisions really happened, whatever the clocks of the processes said;
* capacity never exceeded: walking all events in id order, no reviewer ever holds more than
  ``max_active`` (claims lock the reviewer row and count committed assignments, so an end that
  committed before a claim's count has a smaller id than the claim);
* every signal accounted for: stored = distinct signals sent, every intake answer a 200 or 201;
* the timeline complete: every assignment has its start event and, once ended, its end event; every
  decision its ``decided`` event;
* no answer was a 5xx, and every path (decide, release, skip, expiry, capacity refusal) was taken.
"""

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.db.models import Count

from casework.intake import signals_ingest
from casework.models import CaseEvent, Signal
from docket.accounts import token_for
from reviews.accounts import user_upsert
from reviews.models import Assignment, Decision
from reviews.services import leases_expire
from tests.support import process_env, process_stop

from .conftest import rule_of, violation_of
from .test_faults import free_port, wait_for

pytestmark = [pytest.mark.soak, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(__file__).resolve().parents[2]
SOAK_SECONDS = float(os.environ.get("DOCKET_SOAK_SECONDS", "60"))
REVIEWERS = 64
MAX_ACTIVE = 2
LEASE_SECONDS = 4
QUEUES = ("spam", "harassment")
STARTS = {"claimed", "assigned"}
ENDS = {"released", "skipped", "lease_expired", "unassigned", "escalated"}


def _server_env(port):
    return process_env(
        DOCKET_LEASE_SECONDS=str(LEASE_SECONDS),
        DOCKET_SKIP_COOLDOWN_SECONDS="5",
        DOCKET_INTAKE_RATE="1000000/min",
        # Deferred work runs in the request: no task is left in the shared broker for somebody's worker.
        CELERY_TASK_ALWAYS_EAGER="1",
        DOCKET_CACHE_PREFIX=f"soak-{uuid.uuid4().hex[:8]}",
        PLATFORM_WEBHOOK_URL="",
        DOCKET_LOG_LEVEL="ERROR",
    )


class Server:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "gunicorn", "docket.wsgi", "-w", "4", "--threads", "8"]
        command += ["-b", f"127.0.0.1:{self.port}", "--timeout", "120", "--log-level", "warning"]
        # Keep idle keep-alive connections longer than any client pauses: with gunicorn's 2 s
        # default, a client reusing a connection as the server closes it sees a reset.
        command += ["--keep-alive", "300"]
        # The server's log goes to a file: an unread pipe fills up and blocks every worker thread.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=_server_env(self.port), stdout=subprocess.DEVNULL, stderr=self.log
        )
        wait_for(self._answers, 90, "gunicorn to answer")

    def _answers(self):
        if self.process.poll() is not None:
            self.log.seek(0)
            raise AssertionError(self.log.read().decode(errors="replace")[-4000:])
        try:
            return requests.get(f"{self.url}/login/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        process_stop(self.process, grace=30)
        self.log.close()


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = Counter()
        self.server_errors = []
        self.client_errors = []
        self.sent = set()
        self.intake_statuses = Counter()

    def guarded(self, loop):
        """Run a client loop; an exception (a timeout, a dropped connection) is recorded, not lost."""

        def run(*args):
            try:
                loop(*args)
            except Exception as e:
                with self.lock:
                    self.client_errors.append(f"{loop.__name__}: {e!r}"[:300])

        return run

    def add(self, what, response):
        with self.lock:
            self.counts[(what, response.status_code)] += 1
            if response.status_code >= 500:
                self.server_errors.append(f"{what}: {response.status_code} {response.text[:200]}")


def reviewer_loop(server, token, seed, deadline, tally, decisions):
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    while time.monotonic() < deadline:
        queue = rng.choice(QUEUES)
        claim = session.post(f"{server.url}/api/v1/queues/{queue}/claim/", timeout=60)
        tally.add("claim", claim)
        if claim.status_code == 204:
            time.sleep(0.05)
            continue
        if claim.status_code == 409:
            time.sleep(0.2)  # at capacity: an abandoned lease has to expire first
            continue
        if claim.status_code != 201:
            continue
        body = claim.json()
        assignment, case = body["assignment"], body["case"]
        time.sleep(rng.uniform(0, 0.05))  # reading the case
        roll = rng.random()
        if roll < 0.55:
            kind = case["threat_class"]
            answer = session.post(f"{server.url}/api/v1/cases/{case['id']}/decision/", json=decisions[kind], timeout=60)
            tally.add("decide", answer)
        elif roll < 0.7:
            tally.add("release", session.post(f"{server.url}/api/v1/assignments/{assignment}/release/", timeout=60))
        elif roll < 0.8:
            tally.add("skip", session.post(f"{server.url}/api/v1/assignments/{assignment}/skip/", timeout=60))
        # else: walk away; the lease expires and the sweeper returns the case


def intake_loop(server, token, seed, deadline, tally):
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    n, previous = 0, None
    while time.monotonic() < deadline:
        if previous is not None and rng.random() < 0.2:
            batch = previous  # a resend: stores nothing new, answers 200
        else:
            batch = []
            for _ in range(10):
                n += 1
                batch.append(
                    {
                        "source": "user-reports",
                        "external_id": f"soak-{seed}-{n}",
                        "threat_class": rng.choice(QUEUES),
                        "subject": {"kind": "account", "external_id": f"u-soak-{rng.randrange(3000)}", "reach": 50},
                        "reporter": f"u-reporter-{rng.randrange(500)}",
                        "reason": "soak",
                    }
                )
        response = session.post(f"{server.url}/api/v1/signals/", json=batch, timeout=60)
        tally.add("intake", response)
        if response.status_code in (200, 201):
            with tally.lock:
                tally.sent.update(item["external_id"] for item in batch)
        previous = batch
        time.sleep(rng.uniform(0, 0.05))


def sweeper_loop(deadline, tally):
    try:
        while time.monotonic() < deadline:
            expired = leases_expire()
            with tally.lock:
                tally.counts[("sweep", "expired")] += expired
            time.sleep(0.5)
    finally:
        connection.close()


def audit_timeline():
    """Walk the events in id order; returns (problems, peak load per reviewer)."""
    assignments = {a.pk: a for a in Assignment.objects.all()}
    started, ended = {}, {}
    open_on_case = {}
    load, peak = Counter(), Counter()
    problems = []
    events = CaseEvent.objects.filter(kind__in=STARTS | ENDS | {"decided"}).order_by("id")
    for event in events.values("id", "case_id", "kind", "detail"):
        case = event["case_id"]
        aid = event["detail"].get("assignment")
        if event["kind"] in STARTS:
            if open_on_case.get(case) is not None:
                problems.append(f"case {case}: assignment {aid} started while {open_on_case[case]} was open")
            open_on_case[case] = aid
            started[aid] = event["id"]
            reviewer = assignments[aid].reviewer_id
            load[reviewer] += 1
            peak[reviewer] = max(peak[reviewer], load[reviewer])
            continue
        if event["kind"] == "decided":
            aid = open_on_case.get(case)
            if aid is None:
                continue  # an automated decision, or a case decided without a holder
            if assignments[aid].state != "completed":
                problems.append(f"case {case}: decided while assignment {aid} ({assignments[aid].state}) was open")
        elif aid is None or open_on_case.get(case) != aid:
            problems.append(f"case {case}: {event['kind']} of assignment {aid}, open is {open_on_case.get(case)}")
            continue
        open_on_case[case] = None
        ended[aid] = event["id"]
        load[assignments[aid].reviewer_id] -= 1
    for aid, a in assignments.items():
        if aid not in started:
            problems.append(f"assignment {aid}: no start event")
        if a.state != "active" and aid not in ended:
            problems.append(f"assignment {aid} ({a.state}): no end event")
        if a.state == "active" and aid in ended:
            problems.append(f"assignment {aid}: active but ended in the timeline")
    return problems, peak


def test_soak_64_reviewers_and_intake_against_a_live_server(capsys):
    reviewers = [
        user_upsert(username=f"soak-{i}", role_names=["moderator"], queues=list(QUEUES), max_active=MAX_ACTIVE)
        for i in range(REVIEWERS)
    ]
    platform = user_upsert(username="soak-platform", role_names=["platform"])
    decisions = {kind: {"action": violation_of(kind), "rule": rule_of(kind), "rationale": "soak"} for kind in QUEUES}
    seeded = [
        {
            "source": "user-reports",
            "external_id": f"soak-seed-{n}",
            "threat_class": QUEUES[n % 2],
            "subject": {"kind": "account", "external_id": f"u-soak-seed-{n}"},
            "reporter": f"u-reporter-{n}",
        }
        for n in range(300)
    ]
    signals_ingest(items=seeded, actor=platform)
    tokens = [token_for(user) for user in reviewers]
    platform_token = token_for(platform)

    tally = Tally()
    tally.sent.update(item["external_id"] for item in seeded)
    server = Server()
    try:
        began = time.monotonic()
        deadline = began + SOAK_SECONDS
        threads = [
            threading.Thread(
                target=tally.guarded(reviewer_loop), args=(server, tokens[i], i, deadline, tally, decisions)
            )
            for i in range(REVIEWERS)
        ]
        threads += [
            threading.Thread(
                target=tally.guarded(intake_loop), args=(server, platform_token, 1000 + i, deadline, tally)
            )
            for i in range(2)
        ]
        threads.append(threading.Thread(target=tally.guarded(sweeper_loop), args=(deadline, tally)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(SOAK_SECONDS + 180)
        assert not any(t.is_alive() for t in threads)
        elapsed = time.monotonic() - began
    finally:
        server.stop()

    counts = tally.counts
    assert tally.server_errors == []
    assert tally.client_errors == []  # no client gave up: no request waited out its timeout
    assert {status for (what, status) in counts if what == "intake"} <= {200, 201}

    # No double assignment, capacity never exceeded, the timeline complete.
    doubled = Assignment.objects.filter(state="active").values("case").annotate(n=Count("id")).filter(n__gt=1)
    assert list(doubled) == []
    problems, peak = audit_timeline()
    assert problems == []
    assert max(peak.values()) <= MAX_ACTIVE
    human = list(Decision.objects.filter(automated=False).values_list("pk", flat=True))
    assert CaseEvent.objects.filter(kind="decided", detail__decision__in=human).count() == len(human)

    # Every signal accounted for.
    assert Signal.objects.count() == len(tally.sent)

    # Every path was taken.
    expirations = CaseEvent.objects.filter(kind="lease_expired").count()
    assert counts[("claim", 201)] > 0 and counts[("decide", 201)] > 0
    assert counts[("release", 200)] > 0 and counts[("skip", 200)] > 0
    assert counts[("claim", 409)] > 0 and expirations > 0
    with capsys.disabled():
        claims = counts[("claim", 201)]
        print(
            f"\nsoak {elapsed:.0f} s, {REVIEWERS} reviewers: {claims} claims ({claims / elapsed:.1f}/s), "
            f"{counts[('decide', 201)]} decisions, {counts[('release', 200)]} releases, {counts[('skip', 200)]} skips, "
            f"{expirations} lease expiries, {counts[('claim', 409)]} capacity refusals, "
            f"{counts[('claim', 204)]} empty claims; {len(tally.sent)} signals stored = sent "
            f"({counts[('intake', 200)]} resent batches); peak load {max(peak.values())}/{MAX_ACTIVE}; 0 5xx"
        )
