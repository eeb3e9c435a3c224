"""Claim-and-decide throughput over a large open queue: service layer, HTTP API and bare SQL.

    python -m bench.claim [--cases 1000000] [--reviewers 1,16,64] [--seconds 10] [--no-api] [--scale S]
    python -m bench.claim --only costs [--rounds 100] [--profile-top 25]

On the shared seed (``bench.common.scale_setup``: ``--cases`` open cases over
the six classes, 60% of them in the ``spam`` queue), for each reviewer count
runs, for ``--seconds`` each:

- ``sql``: a bare ``SELECT ... FOR UPDATE SKIP LOCKED`` + ``UPDATE`` claim
  transaction and an ``UPDATE`` decide transaction per cycle (psycopg, no
  Django): the floor the database itself sets. It picks in the claim's own
  order (``rank_tier``, ``rank``, id over the open-queue index), so the twin
  walks the index the service walks;
- ``sqlrows``: bare SQL writing the rows Docket writes (assignment, the two case
  moves and their events, decision, strike, enforcement), a plain statement each;
- ``service``: ``queue_claim`` then ``decision_make`` (every check, event,
  strike, enforcement row and after-commit enqueue of the real path);
- ``api``: ``POST /queues/spam/claim/`` then ``POST /cases/{id}/decision/``
  against gunicorn (gthread) started on 127.0.0.1 for the run.

Reviewers are spread over up to ``--processes`` processes, threads inside,
each thread with its own connection. Printed: cycles/s, claim latency p50/p99
(ms), double assignments (cases claimed twice: must be 0) and the ratio of
service to bare SQL at each reviewer count. Delivery tasks go to a separate
Redis database (``--redis-db``) whose queue is emptied afterwards.

``--only costs`` prices one moderator's API round instead (``--rounds`` of
them, one request at a time, after a few warm ones): the claim and the
decision each go through Django's WSGI handler in this process, as gunicorn
calls it (middleware, token auth, the view, the serializer, the JSON body),
without a socket or a test client. Per request, the median of the rounds: the
queries, the CPU the PostgreSQL backend used (``bench.pages``' meter) and the
CPU this process used; then profiled rounds split the Python CPU by the code
that spent it, and ``--profile-top`` lists the functions that spent most of it.
"""

import cProfile
import io
import json
import multiprocessing
import os
import pstats
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

from bench import common, pages
from bench.gunicorn_hooks import STATS_DIR_ENV

import psycopg
import redis
import requests
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.utils import timezone

from casework.models import Queue
from docket.accounts import token_for
from docket.run import web_serving_args
from policies.models import PolicyVersion
from reviews.accounts import user_upsert
from reviews.services import claims, decision_make, queue_claim

QUEUE = "spam"


def _seed(n_cases, n_reviewers):
    common.scale_setup(n_cases)

    users = common.reviewers(n_reviewers, prefix="bench-r", queues=[QUEUE], max_active=3)
    tokens = [token_for(u) for u in users]
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM casework_case WHERE status = 'open'")
        (open_cases,) = cur.fetchone()
    return [u.username for u in users], tokens, Queue.objects.get(slug=QUEUE).pk, open_cases


# --- the three cycles: one claim + one decision each ---------------------------------


def _sql_worker(conninfo, queue_id):
    conn = psycopg.connect(conninfo, autocommit=False)
    cur = conn.cursor()

    def cycle():
        t0 = time.perf_counter()
        cur.execute(
            "SELECT id FROM casework_case WHERE queue_id = %s AND status = 'open' "
            "ORDER BY rank_tier DESC, rank DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            [queue_id],
        )
        row = cur.fetchone()
        if row is None:
            conn.rollback()
            return None, None
        cur.execute("UPDATE casework_case SET status = 'in_review', updated_at = now() WHERE id = %s", row)
        conn.commit()
        latency = time.perf_counter() - t0
        cur.execute(
            "UPDATE casework_case SET status = 'decided', decided_at = now(), updated_at = now() WHERE id = %s", row
        )
        conn.commit()
        return row[0], latency

    return cycle, conn.close


def _sqlrows_worker(conninfo, queue_id, reviewer_id, user_id, version_id):
    """Bare SQL writing the rows Docket writes, one plain statement at a time: the assignment, the case
    moves and their events, the decision, the strike and the enforcement (no checks, no QA, no task)."""

    conn = psycopg.connect(conninfo, autocommit=False)
    cur = conn.cursor()

    def cycle():
        t0 = time.perf_counter()
        cur.execute(
            "SELECT id FROM casework_case WHERE queue_id = %s AND status = 'open' "
            "ORDER BY rank_tier DESC, rank DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            [queue_id],
        )
        row = cur.fetchone()
        if row is None:
            conn.rollback()
            return None, None
        case_id = row[0]
        cur.execute(
            "INSERT INTO reviews_assignment (case_id, reviewer_id, state, graphic, claimed_at, lease_expires_at) "
            "VALUES (%s, %s, 'active', false, now(), now() + interval '15 minutes') RETURNING id",
            [case_id, reviewer_id],
        )
        cur.execute("UPDATE casework_case SET status = 'in_review', updated_at = now() WHERE id = %s", [case_id])
        cur.execute(
            "INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail) "
            "VALUES (%s, now(), %s, 'bench', 'claimed', '{}')",
            [case_id, user_id],
        )
        conn.commit()
        latency = time.perf_counter() - t0
        cur.execute(
            "UPDATE reviews_assignment SET state = 'completed', ended_at = now() "
            "WHERE case_id = %s AND state = 'active'",
            [case_id],
        )
        cur.execute(
            "INSERT INTO reviews_decision (case_id, reviewer_id, action, rule, policy_version_id, rationale, automated,"
            " holdout, qa_sampled, relabel, overturned, created_at)"
            " VALUES (%s, %s, 'remove', 'SP-1', %s, '', false, false, false, false, false, now()) RETURNING id",
            [case_id, reviewer_id, version_id],
        )
        (decision_id,) = cur.fetchone()
        cur.execute(
            "UPDATE casework_case SET status = 'decided', decided_at = now(), first_action_at = now(), "
            "updated_at = now() WHERE id = %s",
            [case_id],
        )
        cur.execute(
            "INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail) "
            "VALUES (%s, now(), %s, 'bench', 'decided', '{}')",
            [case_id, user_id],
        )
        cur.execute(
            "INSERT INTO reviews_strike (account_id, decision_id, weight, created_at, expires_at) "
            "SELECT subject_id, %s, 1, now(), now() + interval '90 days' FROM casework_case WHERE id = %s",
            [decision_id, case_id],
        )
        cur.execute(
            "INSERT INTO reviews_enforcement (public_id, decision_id, kind, action, payload, status, attempts,"
            " next_attempt_at, last_error, created_at) VALUES (gen_random_uuid(), %s, 'enforce', 'remove', '{}',"
            " 'pending', 0, now(), '', now())",
            [decision_id],
        )
        conn.commit()
        return case_id, latency

    return cycle, conn.close


def _service_worker(username):
    user = get_user_model().objects.get(username=username)
    reviewer = user.reviewer

    def cycle():
        t0 = time.perf_counter()
        assignment = queue_claim(reviewer=reviewer, queue_slug=QUEUE)
        latency = time.perf_counter() - t0
        if assignment is None:
            return None, None
        decision_make(case_id=assignment.case_id, reviewer=reviewer, action="remove", rule="SP-1")
        return assignment.case_id, latency

    return cycle, connection.close


def _api_worker(base_url, token):
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"

    def cycle():
        t0 = time.perf_counter()
        response = session.post(f"{base_url}/api/v1/queues/{QUEUE}/claim/")
        latency = time.perf_counter() - t0
        if response.status_code == 204:
            return None, None
        if response.status_code != 201:
            raise RuntimeError(f"claim answered {response.status_code}: {response.text[:200]}")
        case_id = response.json()["case"]["id"]
        decided = session.post(
            f"{base_url}/api/v1/cases/{case_id}/decision/", json={"action": "remove", "rule": "SP-1"}
        )
        if decided.status_code != 201:
            raise RuntimeError(f"decision answered {decided.status_code}: {decided.text[:200]}")
        return case_id, latency

    return cycle, session.close


def _process_main(mode, specs, start_at, seconds, out):
    """One process: a thread per reviewer, each looping cycles until the deadline."""
    results, errors = [], []

    def run(spec):
        try:
            if mode == "sql":
                cycle, close = _sql_worker(*spec)
            elif mode == "sqlrows":
                cycle, close = _sqlrows_worker(*spec)
            elif mode == "service":
                cycle, close = _service_worker(spec)
            else:
                cycle, close = _api_worker(*spec)
            ids, latencies = [], []
            time.sleep(max(0.0, start_at - time.time()))
            deadline = start_at + seconds
            try:
                while time.time() < deadline:
                    case_id, latency = cycle()
                    if case_id is None:
                        break
                    ids.append(case_id)
                    latencies.append(latency)
            finally:
                close()
            results.append((ids, latencies))
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(spec,)) for spec in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((results, errors))


def _run(mode, specs, processes, seconds):
    connections.close_all()  # children must not share the parent's socket
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    n = min(processes, len(specs))
    groups = [specs[i::n] for i in range(n)]
    start_at = time.time() + 1.5
    procs = [ctx.Process(target=_process_main, args=(mode, g, start_at, seconds, out)) for g in groups]
    for p in procs:
        p.start()
    gathered = [out.get() for _ in procs]
    for p in procs:
        p.join()
    errors = [e for _, errs in gathered for e in errs]
    if errors:  # reported with the figures (e.g. the server's connection limit), not lost with them
        print(f"{mode}: {len(errors)} of {len(specs)} worker(s) failed, first: {errors[0]}", flush=True)
    ids = [i for results, _ in gathered for got, _ in results for i in got]
    latencies = sorted(v for results, _ in gathered for _, lat in results for v in lat)
    return ids, latencies, len(errors)


def _double_assignments(mode, ids):
    """Cases handed out twice: by the driver's own record, and for Docket's paths by the database."""
    doubles = len(ids) - len(set(ids))
    if mode != "sql":
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM (SELECT case_id FROM reviews_assignment GROUP BY case_id HAVING count(*) > 1) d"
            )
            doubles += cur.fetchone()[0]
            cur.execute(
                "SELECT count(*) FROM (SELECT case_id FROM reviews_decision GROUP BY case_id HAVING count(*) > 1) d"
            )
            doubles += cur.fetchone()[0]
    return doubles


def _pct(values, p):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_gunicorn(workers, threads, redis_db, *, nice=0, stats_dir=None):
    """gunicorn serving Docket as ``make run`` does; ``nice``: the processes' CPU niceness (Linux);
    ``stats_dir``: where each worker writes what it did when it exits (``bench.gunicorn_hooks``)."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": common.conninfo(),
        "REDIS_URL": common.redis_url(redis_db) or "",
        "DJANGO_SETTINGS_MODULE": "docket.settings",
    }
    hooks = []
    if stats_dir is not None:
        env[STATS_DIR_ENV] = str(stats_dir)
        project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [project, env.get("PYTHONPATH")]))
        hooks = ["--config", "python:bench.gunicorn_hooks"]
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = subprocess.Popen(
        [
            gunicorn,
            "docket.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            *web_serving_args(workers, threads),  # as `make run` serves
            *hooks,
            "--log-level",
            "warning",
        ],
        env=env,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(f"{base}/login/", timeout=1)  # a page that logs nothing
            return proc, base
        except requests.RequestException:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def _sqlrows_ids(usernames):
    """(reviewer id, user id, spam's active version id) per bench reviewer, for the same-rows bare loop."""

    version = PolicyVersion.objects.get(policy__threat_class__slug=QUEUE, status="active").pk
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames).select_related("reviewer")}
    return [(users[n].reviewer.pk, users[n].pk, version) for n in usernames]


def _explain_claim(queue_id, username):
    """The plans of the claim: the service's one-statement CTE and the bare pick (both rolled back)."""

    user = get_user_model().objects.get(username=username)
    now = timezone.now()
    common.explain(
        "claim: service CTE (pick, assignment, in_review, event)",
        claims._CLAIM_SQL,
        {
            "reviewer": user.reviewer.pk,
            "user": user.pk,
            "username": username,
            "queue": queue_id,
            "hidden": [],
            "escalated_claimable": True,
            "open_claimable": True,
            "day": now,
            "skipped_since": now,
            "now": now,
            "lease": now + timedelta(minutes=15),
            "kind": "claimed",
            "detail": "{}",
        },
    )
    common.explain(
        "claim: bare SKIP LOCKED pick",
        "SELECT id FROM casework_case WHERE queue_id = %s AND status = 'open' "
        "ORDER BY rank_tier DESC, rank DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        [queue_id],
    )


# --- what one moderator's API round costs ----------------------------------------------------

ROUND = ("API claim", "API decision")


class _Wsgi:
    """Requests handed to Django's WSGI handler as gunicorn hands them (no socket, no test client)."""

    def __init__(self, token):
        self.handler = WSGIHandler()
        self.token = token

    def post(self, path, body=None):
        raw = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_AUTHORIZATION": f"Token {self.token}",
            "HTTP_ACCEPT": "*/*",
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": io.BytesIO(raw),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body is not None:
            environ["CONTENT_TYPE"] = "application/json"
        started = []
        chunks = self.handler(environ, lambda status, headers, exc_info=None: started.append(status))
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()  # request_finished, as the server sends it
        return _Answer(int(started[0].split()[0]), content)


class _Answer:
    def __init__(self, status_code, content):
        self.status_code, self.content = status_code, content

    def json(self):
        return json.loads(self.content)


def round_costs(rounds, *, top=0):
    """Each request of the moderator's API round: queries and CPU (median of ``rounds``); printed and returned."""

    moderator = user_upsert(username="bench-round-mod", role_names=["moderator"], queues=[QUEUE], max_active=3)
    client = _Wsgi(token_for(moderator))
    meter = pages._Meter()
    everything = cProfile.Profile(time.process_time)

    def one_round():
        claimed = meter("API claim", lambda: client.post(f"/api/v1/queues/{QUEUE}/claim/"))
        if claimed.status_code != 201:
            raise SystemExit(f"the claim answered {claimed.status_code}: {claimed.content[:300]!r}")
        case_id = claimed.json()["case"]["id"]
        meter(
            "API decision",
            lambda: client.post(f"/api/v1/cases/{case_id}/decision/", {"action": "remove", "rule": "SP-1"}),
        )

    for _ in range(5):  # warm: connection, caches, plans, imports
        one_round()
    meter.samples.clear()
    for _ in range(rounds):
        one_round()
    meter.profiling = True
    for _ in range(10):
        one_round()
    if top:
        meter.profiling = False
        meter.samples.clear()
        everything.enable()
        for _ in range(10):
            one_round()
        everything.disable()

    load = os.getloadavg()
    print(
        f"\nAPI round costs, median of {rounds} rounds (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f};"
        " CPU figures hold under load, wall ms does not)"
    )
    head = f"{'request':<14} {'queries':>7} {'SQL ms':>7} {'PG CPU ms':>9} {'Python CPU ms':>13} {'wall ms':>8}"
    print(head)
    print("-" * len(head))
    figures, total = {}, 0.0
    for page in ROUND:
        keys = ("queries", "db_ms", "pg_cpu_ms", "py_cpu_ms", "wall_ms")
        q, sql, pg, py, wall = (meter.figure(page, k) for k in keys)
        pg_shown = f"{pg:>9.1f}" if pg is not None else f"{'-':>9}"
        print(f"{page:<14} {q:>7.0f} {sql:>7.1f} {pg_shown} {py:>13.1f} {wall:>8.1f}")
        figures[f"{page}: queries"] = int(q)
        figures[f"{page}: PG CPU / Python CPU ms"] = f"{pg or 0:.1f} / {py:.1f}"
        total += py + (pg or 0)
    print(f"one round: {total:.1f} ms of CPU (Python + PostgreSQL)")
    pages.cpu_shares_print(meter, ROUND, what="request", width=14)
    if top:
        print(f"\nThe {top} functions that spent most of 10 rounds' Python CPU (cumulative, then own)")
        stats = pstats.Stats(everything, stream=sys.stdout).strip_dirs()
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
    common.compare(
        "API round (claim + decision) CPU, one reviewer",
        docket=round(total, 1),
        bare=None,
        unit="ms",
        higher_is_better=False,
    )
    figures["API round CPU ms (Python + PostgreSQL)"] = round(total, 1)
    figures["load average (1 min) during the round costs"] = round(load[0], 1)
    figures.update(_new_connection_claims(client, min(rounds, 40)))
    return figures


def _new_connection_claims(client, rounds):
    """A claim on the thread's reused connection beside one on a connection opened for it (median wall ms).

    A web thread opens a new connection when its last one is older than ``DB_CONN_MAX_AGE``: the server
    starts a backend, which then reads the catalogs and plans every statement afresh for its first requests.
    """

    def claim_ms(new_connection):
        if new_connection:
            connection.close()
        started = time.perf_counter()
        claimed = client.post(f"/api/v1/queues/{QUEUE}/claim/")
        took = (time.perf_counter() - started) * 1000
        client.post(f"/api/v1/cases/{claimed.json()['case']['id']}/decision/", {"action": "remove", "rule": "SP-1"})
        return took

    reused = [claim_ms(False) for _ in range(rounds)]
    new = [claim_ms(True) for _ in range(rounds)]
    figures = {
        "API claim wall ms, reused connection (median)": round(common.pct(reused, 50), 1),
        "API claim wall ms, new connection (median)": round(common.pct(new, 50), 1),
    }
    print(
        f"API claim, median of {rounds}: {figures['API claim wall ms, reused connection (median)']} ms on a reused"
        f" connection, {figures['API claim wall ms, new connection (median)']} ms on a new one"
    )
    return figures


def main(argv=None):
    parser = common.parser(__doc__, cases=1_000_000)
    parser.add_argument("--reviewers", default="1,16,64", help="comma-separated reviewer counts")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per mode and reviewer count (10; 5 below scale 0.5)"
    )
    parser.add_argument("--processes", type=int, default=4, help="driver processes (threads inside)")
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--redis-db", type=int, default=common.BENCH_REDIS_DB)
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument("--only", choices=("costs",), help="what one moderator's API round costs, nothing else")
    parser.add_argument("--rounds", type=int, default=100, help="measured API rounds (--only costs)")
    parser.add_argument("--profile-top", type=int, default=0, help="list the N costliest functions (--only costs)")
    args = parser.parse_args(argv)
    if args.only == "costs":
        common.scale_setup(common.scaled(args.cases, args.scale, minimum=1000))
        common.report("claim", round_costs(args.rounds, top=args.profile_top))
        return
    counts = [int(c) for c in args.reviewers.split(",")]
    seconds = args.seconds or (10.0 if args.scale >= 0.5 else 5.0)

    usernames, tokens, queue_id, open_cases = _seed(common.scaled(args.cases, args.scale, minimum=1000), max(counts))
    conninfo = common.conninfo()
    print(f"open cases: {open_cases:,}; {os.cpu_count()} CPU(s) shared by driver, server and PostgreSQL")
    _explain_claim(queue_id, usernames[0])

    server = None
    modes = ["sql", "sqlrows", "service"] + ([] if args.no_api else ["api"])
    rows_ids = _sqlrows_ids(usernames)
    rows, latency, doubles_by = {}, {}, {}
    failed = {}
    try:
        print(
            f"{'mode':<8} {'reviewers':>9} {'cycles':>8} {'cycles/s':>9} {'claim p50 ms':>13} "
            f"{'claim p99 ms':>13} {'double':>7}",
            flush=True,
        )
        for n in counts:
            for mode in modes:
                if mode == "sql":
                    specs = [(conninfo, queue_id)] * n
                elif mode == "sqlrows":
                    specs = [(conninfo, queue_id, *rows_ids[i]) for i in range(n)]
                elif mode == "service":
                    specs = usernames[:n]
                else:
                    # A server per reviewer count, stopped after: its pooled connections would otherwise
                    # hold PostgreSQL slots (max_connections is shared) through the next count's 64 clients.
                    server, base_url = _start_gunicorn(
                        args.gunicorn_workers, min(8, max(2, n // args.gunicorn_workers)), args.redis_db
                    )
                    specs = [(base_url, t) for t in tokens[:n]]
                try:
                    ids, latencies, failed[(mode, n)] = _run(mode, specs, args.processes, seconds)
                finally:
                    if server is not None:
                        server.terminate()
                        server.wait(timeout=30)
                        server = None
                rate = len(ids) / seconds
                doubles = _double_assignments(mode, ids)
                rows[(mode, n)] = rate
                latency[(mode, n)] = (_pct(latencies, 50), _pct(latencies, 99))
                doubles_by[(mode, n)] = doubles
                print(
                    f"{mode:<8} {n:>9} {len(ids):>8} {rate:>9.1f} {_pct(latencies, 50):>13.2f} "
                    f"{_pct(latencies, 99):>13.2f} {doubles:>7}",
                    flush=True,
                )
            if rows.get(("sql", n)):
                ratio = rows[("service", n)] / rows[("sql", n)]
                line = f"  service / bare SQL at {n} reviewer(s): {ratio:.0%}"
                if ("api", n) in rows:
                    line += f"; api / bare SQL: {rows[('api', n)] / rows[('sql', n)]:.0%}"
                print(line, flush=True)
        figures = {"open cases at start": open_cases}
        for (mode, n), rate in rows.items():
            figures[f"{mode} cycles/s @{n}"] = round(rate, 1)
            figures[f"{mode} claim p50/p99 ms @{n}"] = "{:.1f} / {:.1f}".format(*latency[(mode, n)])
            figures[f"{mode} double assignments @{n}"] = doubles_by[(mode, n)]
            if failed[(mode, n)]:
                figures[f"{mode} clients that could not run @{n}"] = failed[(mode, n)]
        for n in counts:
            sql_rate = rows.get(("sql", n))
            for mode in modes[1:]:
                doubles = doubles_by[(mode, n)]
                targeted = (mode, n) == ("service", 16)
                label = {"sqlrows": "bare SQL writing Docket's rows", "service": "service", "api": "HTTP API"}[mode]
                common.compare(
                    f"claim + decide, {label}, {n} reviewer(s)",
                    docket=round(rows[(mode, n)], 1),
                    bare=round(sql_rate, 1) if sql_rate else None,
                    unit="cycles/s",
                    target=">= 50%, 0 double" if targeted else "0 double",
                    met=(doubles == 0 and rows[(mode, n)] >= 0.5 * sql_rate) if targeted else doubles == 0,
                    note="; ".join(
                        part
                        for part in (
                            f"{doubles} double assignment(s)" if doubles else "",
                            f"{failed[(mode, n)]} of {n} clients could not run" if failed[(mode, n)] else "",
                        )
                        if part
                    ),
                )
            if ("sqlrows", n) in rows:
                common.compare(
                    f"claim + decide, service vs bare SQL of the same rows, {n} reviewer(s)",
                    docket=round(rows[("service", n)], 1),
                    bare=round(rows[("sqlrows", n)], 1),
                    unit="cycles/s",
                )
            common.compare(
                f"claim latency p99, {'API' if 'api' in modes else 'service'}, {n} reviewer(s)",
                docket=round(latency[(modes[-1], n)][1], 1),
                bare=round(latency[("sql", n)][1], 1),
                unit="ms",
                higher_is_better=False,
                target="< 50 ms" if modes[-1] == "api" else "",
                met=latency[(modes[-1], n)][1] < 50 if modes[-1] == "api" else None,
            )
        common.report("claim", figures)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        try:
            redis.Redis.from_url(common.redis_url(args.redis_db) or "redis://127.0.0.1:6379/15").delete("celery")
        except Exception as e:  # the bench's own queue only; nothing else to clean
            print(f"could not empty the bench Redis queue: {e!r}")


if __name__ == "__main__":
    main()
