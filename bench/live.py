"""The system under its own beat: reviewers, intake and every periodic job at once, on the 1M-case seed.

    python -m bench.live [--cases 1000000] [--seconds 90] [--reviewers 16] [--intake-rate 1000] [--idle 60]
                         [--think 0 | --think 4 | --think 2-6] [--web-workers 2] [--web-threads 8]
                         [--intake-server shared | own]

On the shared seed (``bench.common.scale_setup``), starts gunicorn (gthread),
a Celery worker with beat (every periodic job on its schedule) and, halfway
through, ``manage.py docket_tick`` (every periodic job once more, the rarely
scheduled ones included). Meanwhile ``--reviewers`` moderators claim and
decide through the API in the spam queue (``--think``: each reviewer reads
the case for a random pause between the claim's answer and the decision, as
moderators do; 0, the default, is a closed loop with no pause, the most load
the reviewers can make) and the platform posts
``--intake-rate`` signals per second (batches of 100) through the intake API,
and a sampler reads ``pg_locks`` every 100 ms for the longest wait on a lock.
Each reviewer makes one untimed round first (the server's threads open their
database connections then, a cost of the server's start, not of its steady
state); the clock starts once all have, and with think time each reviewer
then waits a random part of it before its first claim, so the reviewers'
rounds are spread as a working team's are, not fired at one instant.
Printed: claim p50/p99 (also apart for the claims that overlapped the
synchronous ``docket_tick``, and for those that overlapped a run of the
re-ranking job on the beat, and the slowest five with their moment),
decision p99, both also as the server timed them (its wall time, and for the
slowest 1% where it went: the thread's and its PostgreSQL backend's CPU and
waits for a core, ``bench.gunicorn_hooks``), intake batch p99 and the rate achieved,
the longest lock wait seen (and what waited; intake batches queued for a slot
of the intake gate, ``DOCKET_INTAKE_CONCURRENCY``, are counted apart: they wait
by design, on no row), claims answered 204 while
claimable cases existed (must be 0: each 204 is checked at once, on a
connection of its own, for an open case of the queue), each reviewer's rate
and the CPU the bench's processes used (per round of claim and decision),
and each web worker's requests and garbage collections (``bench.gunicorn_hooks``).
Then, with traffic stopped and the worker and beat still running: how long
the periodic jobs took to finish what the traffic left them (the reporters
whose record a decision changed, the cases whose rank came due) and the WAL
of that catch-up; after it, WAL bytes per minute for ``--idle`` seconds
(``pg_current_wal_lsn``; the server is shared with other work, so this is an
upper bound of what the periodic jobs write). That minute still re-ranks the
seed's own moments as they come due: its signals were spread over the hours
before it was built, so for two hours after a build their velocity windows
close in bursts, and every run's intake makes more an hour and two later.
``bench.idle`` measures the periodic work with nothing due but the clock.

Targets (issue 14): 0 claims answered 204 while work waits; claim p99 < 50 ms
with 16 reviewers; no case-row lock wait over 200 ms.

With no think time, 16 closed-loop reviewers on two cores queue for the CPU:
by Little's law each claim then takes about 16 rounds' CPU divided by the
cores, whatever the locks do, so that run shows the throughput (rounds per
core-second) and a paced run (``--think 2-6``) the latency a reviewer sees.

``--intake-server own`` posts the platform's signals to a gunicorn of their own
(one process, niced), as a deployment that serves the intake API apart from
the moderators would: a flood's Python then waits for the CPU behind the
reviewers' requests and never holds the GIL of a process serving them.
"""

import itertools
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

from bench import common
from bench.claim import _start_gunicorn
from bench.gunicorn_hooks import worker_stats

import psycopg
import requests
from django.db import connection

from casework.hygiene import source_confirm
from casework.intake.store import GATE_LOCK
from casework.models import ACTIVE_STATUSES_SQL, Signal
from docket.accounts import token_for
from docket.conf import setting
from policies.models import SignalSource
from reviews.accounts import user_upsert

QUEUE = "spam"
BATCH = 100


def _start_worker(redis_db, log_file):
    env = {
        **os.environ,
        "DATABASE_URL": common.conninfo(),
        "REDIS_URL": common.redis_url(redis_db) or "",
        "DJANGO_SETTINGS_MODULE": "docket.settings",
        "DOCKET_LOG_LEVEL": "INFO",  # each periodic job's duration, read back from the log
    }
    schedule = os.path.join(tempfile.mkdtemp(prefix="docket-bench-beat-"), "schedule")
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    return subprocess.Popen(
        [celery, "-A", "docket", "worker", "-B", "-s", schedule, "--concurrency", "2", "-l", "info", "-f", log_file],
        env=env,
    )


_JOB_LINE = re.compile(r"^\[([\d-]+ [\d:]+),(\d+):.*periodic job (\S+) done in (\d+) ms: (.*)$")


def _job_runs(log_file):
    """(job, ms, result, (start, end) in epoch seconds) of every periodic job the worker ran, from its log
    (``docket.periodic``: the line is written when the run ends, stamped in this machine's local time)."""
    runs = []
    try:
        with open(log_file) as f:
            for line in f:
                m = _JOB_LINE.search(line.strip())
                if m:
                    ended = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
                    ms = int(m.group(4))
                    runs.append((m.group(3).rsplit(".", 1)[-1], ms, m.group(5)[:80], (ended - ms / 1000, ended)))
    except OSError:
        pass
    return runs


def _overlapping(timed, windows):
    """The times (ms) of the requests ``(sent at, ms)`` that overlapped any ``(start, end)`` window."""
    return [ms for at, ms in timed if any(at < end and at + ms / 1000 > start for start, end in windows)]


# Every lock wait in the bench database, with what waits and what holds it: the holder's current
# statement, its state and how long its transaction has been open (a holder idle in transaction, or
# one blocked at COMMIT on a foreign-key check, shows here as itself, not only through its waiter).
_WAITS_SQL = """
SELECT l.pid, extract(epoch FROM clock_timestamp() - l.waitstart),
       -- a batch queued for a slot of the intake gate (casework.intake.store) waits by design, on no row
       CASE WHEN l.locktype = 'advisory' AND l.classid = %(gate)s AND l.objsubid = 2 THEN 'intake gate'
            ELSE l.locktype END,
       l.relation::regclass::text,
       left(a.query, 100),
       (SELECT string_agg(format('pid %%s %%s %%s s into its transaction: %%s', b.pid, b.state,
                                 round(extract(epoch FROM clock_timestamp() - b.xact_start)::numeric, 1),
                                 left(b.query, 100)), ' | ')
          FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(l.pid))),
       -- the row waited for: a row-lock waiter holds the tuple lock of the row it queues for
       (SELECT string_agg(format('%%s (%%s,%%s)', t.relation::regclass, t.page, t.tuple), ', ')
          FROM pg_locks t WHERE t.pid = l.pid AND t.locktype = 'tuple' AND t.granted)
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE NOT l.granted AND a.datname = current_database() AND l.waitstart IS NOT NULL
"""

# The bench's own backends (for their CPU time) and their process ids.
_BACKENDS_SQL = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


def _cpu_seconds(pid):
    """User + system CPU seconds of a process (Linux ``/proc``), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _tree_cpu_seconds(pid):
    """CPU seconds of a process and its live children (gunicorn's or the worker's processes)."""
    total, seen, todo = 0.0, set(), [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _cpu_seconds(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return total


def _machine_busy_seconds():
    """Core-seconds the whole machine spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _sampler(stop, out):
    conn = psycopg.connect(common.conninfo(), autocommit=True)
    waits = {}  # (waiter pid, lock) -> longest wait seen and what it was
    backends = {}  # pid -> (CPU seconds when first seen, last seen)
    ticks = 0
    while not stop.is_set():
        for pid, seconds, locktype, relation, query, blockers, row in conn.execute(
            _WAITS_SQL, {"gate": GATE_LOCK}
        ).fetchall():
            key = (pid, locktype, relation, query)
            if seconds and seconds > waits.get(key, (0.0,))[0]:
                waits[key] = (
                    float(seconds),
                    locktype,
                    relation or row or "",
                    " ".join((query or "").split()),
                    blockers or "",
                )
        if ticks % 10 == 0:
            for (pid,) in conn.execute(_BACKENDS_SQL).fetchall():
                cpu = _cpu_seconds(pid)
                first, _ = backends.get(pid, (cpu, cpu))
                backends[pid] = (first, cpu)
        ticks += 1
        time.sleep(0.1)
    conn.close()
    worst = sorted(waits.values(), reverse=True)
    out["waits"] = worst
    out["backend_cpu_seconds"] = sum(last - first for first, last in backends.values())


def think_range(text):
    """``--think``: "0" (no pause), "4" (uniformly 2 to 6 s: half to one and a half times it) or "2-6" (seconds)."""
    lo, sep, hi = str(text).partition("-")
    try:
        lo = float(lo)
        hi = float(hi) if sep else lo
    except ValueError:
        raise ValueError(f"think time {text!r}: SECONDS or LOW-HIGH") from None
    if not sep:
        lo, hi = lo / 2, lo * 3 / 2
    if lo < 0 or hi < lo:
        raise ValueError(f"think time {text!r}: 0 <= LOW <= HIGH")
    return lo, hi


def pace_shown(think):
    lo, hi = think
    if hi == 0:
        return "closed loop: no think time (each reviewer claims again as soon as its decision is answered)"
    return f"think time {lo:g}-{hi:g} s (uniform) between a claim's answer and its decision"


# Claimable work when a claim answered 204: an open case of the queue (the spam queue has no
# restricted class and the bench's reviewers skip nothing, so every open case is theirs to claim).
_CLAIMABLE_SQL = """
SELECT count(*) FROM (SELECT 1 FROM casework_case c JOIN casework_queue q ON q.id = c.queue_id
                       WHERE q.slug = %s AND c.status = 'open' LIMIT 100) w
"""


# What the traffic left for the periodic jobs: reporters whose record changed (their other cases re-rank on
# it), and cases marked (a signal on their subject) or whose rank came due (a velocity window, a breach),
# that waited past one firing of the re-rank job.
_LEFT_BY_TRAFFIC_SQL = f"""
SELECT EXISTS (SELECT 1 FROM casework_reporter WHERE rerank_pending_at IS NOT NULL)
    OR EXISTS (SELECT 1 FROM casework_rankmark WHERE marked_at < now() - interval '20 seconds')
    OR EXISTS (SELECT 1 FROM casework_case
                WHERE rank_due_at < now() - interval '20 seconds' AND status IN ({ACTIVE_STATUSES_SQL}))
"""


def _caught_up(cur, limit=120.0):
    """Seconds until the periodic jobs have done what the traffic left them (None: not within ``limit``),
    so that the idle WAL that follows is the jobs' own and not the tail of the traffic's effects."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        cur.execute(_LEFT_BY_TRAFFIC_SQL)
        if not cur.fetchone()[0]:
            return time.perf_counter() - started
        time.sleep(1)
    return None


def _server_side(web_workers, kind) -> dict:
    """The server's own timing of one kind of request (``bench.gunicorn_hooks``), all workers together: wall
    p50 / p99, and where the time of the slowest 1% went (means over the requests at or above the p99)."""
    timed = [x for w in web_workers for x in w.get("timed", {}).get(kind, [])]
    if not timed:
        return {}
    walls = [t[0] for t in timed]
    p99 = common.pct(walls, 99)
    tail = [t for t in timed if t[0] >= p99 and None not in t]

    def mean(i):
        return sum(t[i] for t in tail) / len(tail) if tail else float("nan")

    parts = [mean(i) for i in range(5)]
    labels = ("thread CPU", "thread waiting for a core", "PostgreSQL CPU", "PostgreSQL waiting for a core")
    spent = ", ".join(f"{label} {value:.1f}" for label, value in zip(labels, parts[1:], strict=True))
    return {
        f"{kind}s timed in the server: wall p50 / p99 ms": f"{common.pct(walls, 50):.1f} / {p99:.1f}",
        f"{kind}s timed in the server: the slowest 1%, mean ms": (
            f"{parts[0]:.1f} = {spent}, other waits (GIL, locks, round trips) {parts[0] - sum(parts[1:]):.1f}"
        ),
    }


def _work_waiting(conninfo, probe):
    """Open cases of the queue (up to 100) right after an empty claim, on the reviewer's probe connection."""
    if probe.get("conn") is None:
        probe["conn"] = psycopg.connect(conninfo, autocommit=True)
    return probe["conn"].execute(_CLAIMABLE_SQL, [QUEUE]).fetchone()[0]


def _reviewer(base, token, stop, out, think=(0.0, 0.0), conninfo=None, ready=None):
    """Claim and decide until ``stop``; with think time, pause a random ``think`` seconds before each decision.

    First one untimed round (a server's threads open their connections then, a cost of its start, not of
    its steady state), then ``ready`` is awaited (every reviewer warm, the clock starts), then with think
    time a random pause within it: reviewers at work are spread over their rounds, not all at one instant.

    Every 204 is checked at once for claimable work (``_work_waiting``): with think time a run makes
    few claims, and the queue's state at the end says nothing of the moment the 204 was answered.
    A case claimed when ``stop`` comes is still decided (a case left in review would come back to its
    queue by the lease sweep during the idle WAL measurement), but not timed.
    """
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    claims, decisions, empty, empty_with_work, errors, probe = [], [], 0, 0, [], {}
    lo, hi = think
    untimed = {"X-Bench-Warm": "1"}  # not timed by the server's hooks either
    warm = session.post(f"{base}/api/v1/queues/{QUEUE}/claim/", headers=untimed)
    if warm.status_code == 201:
        session.post(
            f"{base}/api/v1/cases/{warm.json()['case']['id']}/decision/",
            json={"action": "remove", "rule": "SP-1"},
            headers=untimed,
        )
    if ready is not None:
        ready.wait()
    if hi:
        stop.wait(random.uniform(0, hi))
    while not stop.is_set():
        t0 = time.perf_counter()
        r = session.post(f"{base}/api/v1/queues/{QUEUE}/claim/")
        claims.append((t0, (time.perf_counter() - t0) * 1000))  # when it was sent, how long it took
        if r.status_code == 204:
            empty += 1
            if conninfo and _work_waiting(conninfo, probe):
                empty_with_work += 1
            if hi:
                stop.wait(random.uniform(lo, hi))  # a reviewer finding nothing looks again later
            continue
        if r.status_code != 201:
            errors.append(f"claim {r.status_code}: {r.text[:120]}")
            stop.wait(0.5)
            continue
        case_id = r.json()["case"]["id"]
        if hi:
            stop.wait(random.uniform(lo, hi))  # reading the case
        timed = not stop.is_set()
        t0 = time.perf_counter()
        d = session.post(f"{base}/api/v1/cases/{case_id}/decision/", json={"action": "remove", "rule": "SP-1"})
        if timed:
            decisions.append((time.perf_counter() - t0) * 1000)
        if d.status_code != 201:
            errors.append(f"decision {d.status_code}: {d.text[:120]}")
    if probe.get("conn") is not None:
        probe["conn"].close()
    out.append(
        {
            "claims": claims,
            "decisions": decisions,
            "empty": empty,
            "empty_with_work": empty_with_work,
            "errors": errors,
        }
    )


def _intake(base, token, rate, subjects, stop, out, seq):
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
    p.add_argument(
        "--think",
        type=think_range,
        default=(0.0, 0.0),
        metavar="SECONDS|LOW-HIGH",
        help="each reviewer's pause between a claim's answer and its decision: 0 (default, a closed loop), "
        "4 (uniform 2-6 s) or 2-6",
    )
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn gthread processes (default 2)")
    p.add_argument("--web-threads", type=int, default=8, help="threads per gunicorn process (default 8)")
    p.add_argument(
        "--intake-server",
        choices=("shared", "own"),
        default="shared",
        help="shared (default): the platform posts to the reviewers' gunicorn; own: to a gunicorn of its own "
        "(1 process, --intake-threads threads, nice 10), so a flood's Python queues behind the reviewers' "
        "requests for the CPU and never holds their process's GIL",
    )
    p.add_argument("--redis-db", type=int, default=common.BENCH_REDIS_DB)
    args = p.parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    os.environ["DOCKET_INTAKE_RATE"] = "10000000/min"  # the bench measures the server, not the throttle
    common.scale_setup(cases)

    users = common.reviewers(args.reviewers, prefix="bench-live-r", queues=[QUEUE], max_active=3)
    tokens = [token_for(u) for u in users]
    platform = user_upsert(username="bench-live-platform", role_names=["platform"])
    platform_token = token_for(platform)
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM casework_case WHERE status IN ({ACTIVE_STATUSES_SQL})")
        (active,) = cur.fetchone()
    print(f"{active:,} active cases; {args.reviewers} reviewers, intake {args.intake_rate}/s, {args.seconds} s")
    print(f"reviewer pace: {pace_shown(args.think)}")

    # The bench's flood is expected: an admin confirms the source, as one would before a known wave,
    # so the health check opens an incident rather than holding the bench's own signals (held signals
    # fold into no case, and intake would measure less than it should). Printed at the end.

    SignalSource.objects.filter(slug="spam-classifier").update(status=SignalSource.Status.SUSPECT)
    source_confirm(source_slug="spam-classifier", actor=platform)  # healthy again, confirmed now
    held_before = Signal.objects.filter(disposition=Signal.Disposition.HELD).count()

    log_file = os.path.join(tempfile.mkdtemp(prefix="docket-bench-worker-"), "worker.log")
    web_stats = tempfile.mkdtemp(prefix="docket-bench-web-")
    server, base = _start_gunicorn(args.web_workers, args.web_threads, args.redis_db, stats_dir=web_stats)
    servers = [server]
    intake_base = base
    if args.intake_server == "own":
        intake_server, intake_base = _start_gunicorn(1, args.intake_threads, args.redis_db, nice=10)
        servers.append(intake_server)
    print(f"intake server: {args.intake_server}")
    worker = _start_worker(args.redis_db, log_file)
    stop, samples, reviewed, intaken = threading.Event(), {}, [], []
    seq = itertools.count(int(time.time() * 1000) * 1000)
    ready = threading.Barrier(len(tokens) + 1)
    reviewers = [
        threading.Thread(target=_reviewer, args=(base, t, stop, reviewed, args.think, common.conninfo(), ready))
        for t in tokens
    ]
    threads = [threading.Thread(target=_sampler, args=(stop, samples))]
    threads += [
        threading.Thread(
            target=_intake,
            args=(intake_base, platform_token, args.intake_rate / args.intake_threads, cases, stop, intaken, seq),
        )
        for _ in range(args.intake_threads if args.intake_rate else 0)  # --intake-rate 0: reviewers and jobs only
    ]
    try:
        for t in reviewers:
            t.start()
        time.sleep(5)  # the worker and beat up
        ready.wait(120)  # every reviewer through its untimed first round: the clock starts
        load_before, started, started_epoch = os.getloadavg(), time.perf_counter(), time.time()
        busy_before = _machine_busy_seconds()
        web_before = sum(_tree_cpu_seconds(s.pid) for s in servers)
        client_before = time.process_time()
        worker_before = _tree_cpu_seconds(worker.pid)
        for t in threads:
            t.start()
        time.sleep(args.seconds / 2)
        tick_started = time.perf_counter()
        tick = subprocess.run(
            [sys.executable, "manage.py", "docket_tick"],
            env={**os.environ, "DATABASE_URL": common.conninfo(), "REDIS_URL": common.redis_url(args.redis_db) or ""},
            capture_output=True,
            text=True,
        )
        tick_window = (tick_started, time.perf_counter())
        print(tick.stdout.strip() or tick.stderr.strip()[-500:], flush=True)
        time.sleep(args.seconds / 2)
        stop.set()
        elapsed = time.perf_counter() - started
        busy = _machine_busy_seconds() - busy_before
        web_cpu = sum(_tree_cpu_seconds(s.pid) for s in servers) - web_before
        client_cpu = time.process_time() - client_before
        worker_cpu = _tree_cpu_seconds(worker.pid) - worker_before
        own = web_cpu + worker_cpu
        load_after = os.getloadavg()
        for t in threads + reviewers:
            t.join(30)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM casework_case c JOIN casework_queue q ON q.id = c.queue_id"
                " WHERE q.slug = %s AND c.status = 'open'",
                [QUEUE],
            )
            (claimable,) = cur.fetchone()
            stopped_lsn = common.wal_lsn(cur)
            catch_up = _caught_up(cur)
            catch_up_wal = float(common.wal_since(cur, stopped_lsn))
            start_lsn = common.wal_lsn(cur)
        time.sleep(args.idle)
        with connection.cursor() as cur:
            idle_wal = float(common.wal_since(cur, start_lsn))
    finally:
        worker.terminate()
        for s in servers:
            s.terminate()
        worker.wait(30)
        for s in servers:
            s.wait(30)

    timed_claims = sorted((x for r in reviewed for x in r["claims"]), key=lambda c: c[1])
    claims = [ms for _, ms in timed_claims]
    # A claim overlapping the synchronous docket_tick (every periodic job at once, a moment the beat
    # never makes) apart from the rest: where the slow claims fall says where their time goes.
    during_tick = _overlapping(timed_claims, [tick_window])
    off_tick = [ms for at, ms in timed_claims if not _overlapping([(at, ms)], [tick_window])]
    # The same for the re-ranking job's runs on the beat (the worker's clock, mapped onto this one's).
    job_runs = _job_runs(log_file)
    reranks = [
        (start - started_epoch + started, end - started_epoch + started)
        for job, _, _, (start, end) in job_runs
        if job == "reprioritise_open_cases"
    ]
    during_rerank = _overlapping(timed_claims, reranks)
    slowest = ", ".join(
        f"{ms:,.0f} ms at {at - started:.1f} s" for at, ms in sorted(timed_claims, key=lambda c: -c[1])[:5]
    )
    decisions = [x for r in reviewed for x in r["decisions"]]
    empty = sum(r["empty"] for r in reviewed)
    empty_with_work = sum(r["empty_with_work"] for r in reviewed)
    rates = sorted(len(r["decisions"]) / elapsed for r in reviewed)
    batches = [x for r in intaken for x in r["batches"]]
    sent = sum(r["sent"] for r in intaken)
    errors = [e for r in reviewed + intaken for e in r["errors"]]
    all_waits = samples.get("waits", [])
    waits = [w for w in all_waits if w[1] != "intake gate"]
    gate_waits = [w[0] * 1000 for w in all_waits if w[1] == "intake gate"]
    longest = waits[0] if waits else (0.0, "", "", "", "")
    backend_cpu = samples.get("backend_cpu_seconds", 0.0)
    spam = SignalSource.objects.get(slug="spam-classifier")
    web_workers = worker_stats(web_stats)
    held = Signal.objects.filter(disposition=Signal.Disposition.HELD).count() - held_before
    bench_cpu = own + backend_cpu
    figures = {
        "active cases": active,
        "reviewer pace": pace_shown(args.think),
        "intake server": args.intake_server,
        "claims": len(claims),
        "claim p50 ms": round(common.pct(claims, 50), 1),
        "claim p99 ms": round(common.pct(claims, 99), 1),
        "docket_tick (every periodic job, synchronously) from / to s": (
            f"{tick_window[0] - started:.1f} / {tick_window[1] - started:.1f}"
        ),
        "claims overlapping docket_tick; their p99 ms": f"{len(during_tick)}; {common.pct(during_tick, 99):.1f}",
        "claims outside it; their p50 / p99 ms": (
            f"{len(off_tick)}; {common.pct(off_tick, 50):.1f} / {common.pct(off_tick, 99):.1f}"
        ),
        "claims overlapping a run of the re-ranking job (beat); their p99 ms": (
            f"{len(during_rerank)} of {len(claims)} ({len(reranks)} runs, "
            f"{sum(e - s for s, e in reranks):.1f} s); {common.pct(during_rerank, 99):.1f}"
        ),
        "slowest claims (when sent, from the start)": slowest,
        **_server_side(web_workers, "claim"),
        "decisions": len(decisions),
        "decision p99 ms": round(common.pct(decisions, 99), 1),
        **_server_side(web_workers, "decision"),
        "rounds (claim + decision) per reviewer per second, mean (min-max)": (
            f"{sum(rates) / max(len(rates), 1):.2f} ({rates[0]:.2f}-{rates[-1]:.2f})" if rates else "-"
        ),
        "rounds per second, all reviewers": round(len(decisions) / elapsed, 1),
        "traffic seconds (the synchronous docket_tick included)": round(elapsed, 1),
        "intake signals/s achieved": round(sent / elapsed, 1),
        "intake batch (100) p50 ms": round(common.pct(batches, 50), 1),
        "intake batch (100) p99 ms": round(common.pct(batches, 99), 1),
        "longest lock wait ms": round(longest[0] * 1000, 1),
        "longest lock wait on": f"{longest[1]} {longest[2] or ''}: {longest[3]}".strip(),
        "longest lock wait held by": longest[4],
        "lock waits over 200 ms": sum(1 for w in waits if w[0] > 0.2),
        "intake batches queued at the gate (not a lock on data), longest ms": (
            f"{len(gate_waits)}, {max(gate_waits, default=0):.1f} (INTAKE_CONCURRENCY {setting('INTAKE_CONCURRENCY')})"
        ),
        "claims answered 204 while claimable work existed (checked at each 204)": empty_with_work,
        "claims answered 204 in all": empty if claimable else f"{empty} (queue empty at the end)",
        "open cases left in the queue": claimable,
        "after the traffic, the periodic jobs' catch-up: s, WAL MB": (
            f"{catch_up:.1f}, {catch_up_wal / 1e6:.1f}" if catch_up is not None else "not within 120 s"
        ),
        "WAL MB/min, periodic jobs only, no traffic (shared server)": round(idle_wal / args.idle * 60 / 1e6, 2),
        "web workers: requests served by each": " / ".join(str(w["requests"]) for w in web_workers),
        "web workers: garbage collections (full ones), their CPU s, longest ms": ", ".join(
            f"{sum(n for n, _, _ in w['gc'].values())} ({w['gc']['2'][0]}),"
            f" {sum(c for _, c, _ in w['gc'].values()):.2f} s, {max(m for _, _, m in w['gc'].values()) * 1000:.1f} ms"
            for w in web_workers
        ),
        "errors": len(errors),
        "spam-classifier status at the end": spam.status,
        "bench signals held (folded into no case)": held,
        "load average (1 min) before / after": f"{load_before[0]:.1f} / {load_after[0]:.1f}",
        "machine busy core-seconds during the run": round(busy, 1),
        "machine cores busy (of 2), all processes": round(busy / elapsed, 2),
        "bench web + worker core-seconds": round(own, 1),
        "bench PostgreSQL backends core-seconds (about)": round(backend_cpu, 1),
        "bench cores used: web / worker + beat / PostgreSQL": (
            f"{web_cpu / elapsed:.2f} / {worker_cpu / elapsed:.2f} / {backend_cpu / elapsed:.2f}"
        ),
        "bench core-ms per round (intake and periodic jobs included)": round(
            bench_cpu * 1000 / max(len(decisions), 1), 1
        ),
        "claims + decisions per bench core-second": round((len(claims) + len(decisions)) / max(bench_cpu, 0.001), 1),
        "signals per bench core-second": round(sent / max(bench_cpu, 0.001), 1),
        "share of the machine's busy time that was the bench": f"{bench_cpu / max(busy, 0.001):.0%}",
        # The reviewers' and the platform's HTTP clients, on the same two cores as the server they time.
        "load generator (this process) cores": round(client_cpu / elapsed, 2),
    }
    for seconds, locktype, relation, query, blockers in waits[:5]:
        print(f"  lock wait {seconds * 1000:,.0f} ms on {locktype} {relation or ''}: {query}")
        print(f"      held by: {blockers or '(gone)'}")
    for job, ms, result, _ in sorted(job_runs, key=lambda r: -r[1])[:12]:
        print(f"  periodic job {job}: {ms:,} ms -> {result}")
    for e in errors[:5]:
        print("  error:", e)
    pace = "no think time" if not args.think[1] else f"think {args.think[0]:g}-{args.think[1]:g} s"
    common.compare(
        f"claim p99 @{args.reviewers} ({pace}) with intake and every periodic job",
        docket=figures["claim p99 ms"],
        bare=None,
        unit="ms",
        higher_is_better=False,
        target="< 50 ms",
        met=figures["claim p99 ms"] < 50,
    )
    common.compare(
        f"claims answered 204 while work existed @{args.reviewers} ({pace})",
        docket=empty_with_work,
        bare=None,
        unit="claims",
        higher_is_better=False,
        target="0",
        met=empty_with_work == 0,
    )
    common.report("live", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
