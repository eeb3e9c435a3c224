"""The system under its own beat: reviewers, intake and every periodic job at once, on the 1M-case seed.

    python -m bench.live [--cases 1000000] [--seconds 90] [--reviewers 16] [--intake-rate 1000] [--idle 60]

On the shared seed (``bench.common.scale_setup``), starts gunicorn (gthread),
a Celery worker with beat (every periodic job on its schedule) and, halfway
through, ``manage.py docket_tick`` (every periodic job once more, the rarely
scheduled ones included). Meanwhile ``--reviewers`` moderators claim and
decide through the API in the spam queue and the platform posts
``--intake-rate`` signals per second (batches of 100) through the intake API,
and a sampler reads ``pg_locks`` every 100 ms for the longest wait on a lock.
Printed: claim p50/p99, decision p99, intake batch p99 and the rate achieved,
the longest lock wait seen (and what waited), claims answered 204 while
claimable cases existed (must be 0). Then, with traffic stopped and the worker
and beat still running, WAL bytes per minute for ``--idle`` seconds
(``pg_current_wal_lsn``; the server is shared with other work, so this is an
upper bound of what the periodic jobs write).

Targets (issue 14): 0 claims answered 204 while work waits; claim p99 < 50 ms
with 16 reviewers; no case-row lock wait over 200 ms.
"""

import os
import random
import subprocess
import sys
import tempfile
import threading
import time

from bench import common
from bench.claim import _start_gunicorn

QUEUE = "spam"
BATCH = 100


def _start_worker(redis_db):
    env = {
        **os.environ,
        "DATABASE_URL": common.conninfo(),
        "REDIS_URL": common.redis_url(redis_db) or "",
        "DJANGO_SETTINGS_MODULE": "docket.settings",
    }
    schedule = os.path.join(tempfile.mkdtemp(prefix="docket-bench-beat-"), "schedule")
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    return subprocess.Popen(
        [celery, "-A", "docket", "worker", "-B", "-s", schedule, "--concurrency", "2", "-l", "warning"],
        env=env,
    )


def _sampler(stop, out):
    import psycopg

    conn = psycopg.connect(common.conninfo(), autocommit=True)
    longest, what = 0.0, ""
    while not stop.is_set():
        row = conn.execute(
            """
            SELECT extract(epoch FROM clock_timestamp() - l.waitstart), l.locktype, left(a.query, 100)
              FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE NOT l.granted AND a.datname = current_database() AND l.waitstart IS NOT NULL
             ORDER BY l.waitstart LIMIT 1
            """
        ).fetchone()
        if row and row[0] and row[0] > longest:
            longest, what = float(row[0]), f"{row[1]}: {' '.join(row[2].split())}"
        time.sleep(0.1)
    conn.close()
    out["longest_lock_wait_ms"] = longest * 1000
    out["longest_lock_wait_what"] = what


def _reviewer(base, token, stop, out):
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    claims, decisions, empty, errors = [], [], 0, []
    while not stop.is_set():
        t0 = time.perf_counter()
        r = session.post(f"{base}/api/v1/queues/{QUEUE}/claim/")
        claims.append((time.perf_counter() - t0) * 1000)
        if r.status_code == 204:
            empty += 1
            continue
        if r.status_code != 201:
            errors.append(f"claim {r.status_code}: {r.text[:120]}")
            time.sleep(0.5)
            continue
        case_id = r.json()["case"]["id"]
        t0 = time.perf_counter()
        d = session.post(f"{base}/api/v1/cases/{case_id}/decision/", json={"action": "remove", "rule": "SP-1"})
        decisions.append((time.perf_counter() - t0) * 1000)
        if d.status_code != 201:
            errors.append(f"decision {d.status_code}: {d.text[:120]}")
    out.append({"claims": claims, "decisions": decisions, "empty": empty, "errors": errors})


def _intake(base, token, rate, subjects, stop, out, seq):
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    period = BATCH / rate
    batches, sent, errors = [], 0, []
    next_at = time.perf_counter()
    while not stop.is_set():
        items = []
        for _ in range(BATCH):
            n = next(seq)
            subject = f"bench-u-{random.randint(1, subjects)}" if n % 2 else f"bench-live-{n}"
            items.append(
                {
                    "source": "spam-classifier",
                    "external_id": f"live-{n}",
                    "threat_class": "spam",
                    "subject": {"kind": "account", "external_id": subject, "reach": 10},
                    "score": 0.6,
                }
            )
        t0 = time.perf_counter()
        r = session.post(f"{base}/api/v1/signals/", json=items)
        batches.append((time.perf_counter() - t0) * 1000)
        if r.status_code not in (200, 201):
            errors.append(f"intake {r.status_code}: {r.text[:120]}")
        else:
            sent += BATCH
        next_at += period
        time.sleep(max(0.0, next_at - time.perf_counter()))
    out.append({"batches": batches, "sent": sent, "errors": errors})


def main(argv=None):
    p = common.parser(__doc__, cases=1_000_000, seconds=90, reviewers=16, intake_rate=1000, idle=60)
    p.add_argument("--intake-threads", type=int, default=4)
    p.add_argument("--redis-db", type=int, default=common.BENCH_REDIS_DB)
    args = p.parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    os.environ["DOCKET_INTAKE_RATE"] = "10000000/min"  # the bench measures the server, not the throttle
    common.scale_setup(cases)
    import itertools

    from django.db import connection

    from docket.accounts import token_for
    from reviews.accounts import user_upsert

    users = common.reviewers(args.reviewers, prefix="bench-live-r", queues=[QUEUE], max_active=3)
    tokens = [token_for(u) for u in users]
    platform = user_upsert(username="bench-live-platform", role_names=["platform"])
    platform_token = token_for(platform)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM casework_case WHERE status IN ('open', 'in_review', 'escalated')")
        (active,) = cur.fetchone()
    print(f"{active:,} active cases; {args.reviewers} reviewers, intake {args.intake_rate}/s, {args.seconds} s")

    server, base = _start_gunicorn(4, 4, args.redis_db)
    worker = _start_worker(args.redis_db)
    stop, samples, reviewed, intaken = threading.Event(), {}, [], []
    seq = itertools.count(int(time.time() * 1000) * 1000)
    threads = [threading.Thread(target=_sampler, args=(stop, samples))]
    threads += [threading.Thread(target=_reviewer, args=(base, t, stop, reviewed)) for t in tokens]
    threads += [
        threading.Thread(
            target=_intake,
            args=(base, platform_token, args.intake_rate / args.intake_threads, cases, stop, intaken, seq),
        )
        for _ in range(args.intake_threads)
    ]
    try:
        time.sleep(5)  # the worker and beat up
        for t in threads:
            t.start()
        time.sleep(args.seconds / 2)
        tick = subprocess.run(
            [sys.executable, "manage.py", "docket_tick"],
            env={**os.environ, "DATABASE_URL": common.conninfo(), "REDIS_URL": common.redis_url(args.redis_db) or ""},
            capture_output=True,
            text=True,
        )
        print(tick.stdout.strip() or tick.stderr.strip()[-500:], flush=True)
        time.sleep(args.seconds / 2)
        stop.set()
        for t in threads:
            t.join(30)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM casework_case c JOIN reviews_queue q ON q.id = c.queue_id"
                " WHERE q.slug = %s AND c.status = 'open'",
                [QUEUE],
            )
            (claimable,) = cur.fetchone()
            cur.execute("SELECT pg_current_wal_lsn()")
            (start_lsn,) = cur.fetchone()
        time.sleep(args.idle)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [start_lsn])
            idle_wal = float(cur.fetchone()[0])
    finally:
        worker.terminate()
        server.terminate()
        worker.wait(30)
        server.wait(30)

    claims = [x for r in reviewed for x in r["claims"]]
    decisions = [x for r in reviewed for x in r["decisions"]]
    empty = sum(r["empty"] for r in reviewed)
    batches = [x for r in intaken for x in r["batches"]]
    sent = sum(r["sent"] for r in intaken)
    errors = [e for r in reviewed + intaken for e in r["errors"]]
    figures = {
        "active cases": active,
        "claims": len(claims),
        "claim p50 ms": round(common.pct(claims, 50), 1),
        "claim p99 ms": round(common.pct(claims, 99), 1),
        "decisions": len(decisions),
        "decision p99 ms": round(common.pct(decisions, 99), 1),
        "intake signals/s achieved": round(sent / args.seconds, 1),
        "intake batch (100) p50 ms": round(common.pct(batches, 50), 1),
        "intake batch (100) p99 ms": round(common.pct(batches, 99), 1),
        "longest lock wait ms": round(samples.get("longest_lock_wait_ms", 0), 1),
        "longest lock wait on": samples.get("longest_lock_wait_what", ""),
        "claims answered 204 while claimable work existed": empty if claimable else f"{empty} (queue empty)",
        "open cases left in the queue": claimable,
        "WAL MB/min, periodic jobs only, no traffic (shared server)": round(idle_wal / args.idle * 60 / 1e6, 2),
        "errors": len(errors),
    }
    for e in errors[:5]:
        print("  error:", e)
    common.compare(
        f"claim p99 @{args.reviewers} with intake and every periodic job",
        docket=figures["claim p99 ms"],
        bare=None,
        unit="ms",
        higher_is_better=False,
        target="< 50 ms",
        met=figures["claim p99 ms"] < 50,
    )
    common.report("live", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
