"""Claim-and-decide throughput over a large open queue: service layer, HTTP API and bare SQL.

    python -m bench.claim [--cases 1000000] [--reviewers 1,16,64] [--seconds 10] [--no-api]

Seeds (set-based SQL, ``generate_series``) a dedicated database,
``docket_bench_claim`` on the configured PostgreSQL server, with ``--cases``
open spam cases of random priority, then for each reviewer count runs, for
``--seconds`` each:

- ``sql``: a bare ``SELECT ... FOR UPDATE SKIP LOCKED`` + ``UPDATE`` claim
  transaction and an ``UPDATE`` decide transaction per cycle (psycopg, no
  Django): the floor the database itself sets;
- ``service``: ``queue_claim`` then ``decision_make`` (every check, event,
  strike, enforcement row and after-commit enqueue of the real path);
- ``api``: ``POST /queues/spam/claim/`` then ``POST /cases/{id}/decision/``
  against gunicorn (gthread) started on 127.0.0.1 for the run.

Reviewers are spread over up to ``--processes`` processes, threads inside,
each thread with its own connection. Printed: cycles/s, claim latency p50/p99
(ms), double assignments (cases claimed twice: must be 0) and the ratio of
service to bare SQL at each reviewer count. Delivery tasks go to a separate
Redis database (``--redis-db``) whose queue is emptied afterwards.
"""

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import quote, urlsplit, urlunsplit

DB_NAME = "docket_bench_claim"
QUEUE = "spam"


def _redis_url(db):
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _setup(redis_db):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docket.settings")
    os.environ["REDIS_URL"] = _redis_url(redis_db)
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, connections

    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME])
        exists = cur.fetchone() is not None
    if not exists:
        with connection.cursor() as cur:  # autocommit, as CREATE DATABASE needs
            cur.execute(f'CREATE DATABASE "{DB_NAME}"')
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = DB_NAME
    connections["default"].settings_dict["NAME"] = DB_NAME
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _database_url():
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _insert_sql(model, explicit):
    """``INSERT ... SELECT`` columns for ``model``: explicit SQL expressions, else field defaults."""
    from django.db import connection

    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.name not in explicit:
            continue
        if field.name in explicit:
            columns.append(field.column)
            values.append(explicit[field.name])
        elif not field.null:
            columns.append(field.column)
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    return ", ".join(f'"{c}"' for c in columns), ", ".join(values), params


def _seed(n_cases, n_reviewers):
    from django.db import connection

    from casework.models import Case, Subject
    from docket.accounts import token_for, user_upsert
    from policies.models import ThreatClass
    from reviews.models import Queue

    started = time.perf_counter()
    spam = ThreatClass.objects.get(slug="spam")
    queue = Queue.objects.get(slug=QUEUE)
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE casework_caseevent, reviews_qualityreview, reviews_strike, reviews_enforcement, "
            "reviews_decision, reviews_assignment, casework_signal, casework_case, casework_subjectattribute, "
            "casework_subject CASCADE"
        )
        cols, vals, params = _insert_sql(
            Subject,
            {
                "id": "i",
                "kind": "'account'",
                "external_id": "'bench-u-' || i",
                "reach": "100",
                "created_at": "now()",
                "updated_at": "now()",
            },
        )
        cur.execute(
            f"INSERT INTO casework_subject ({cols}) SELECT {vals} FROM generate_series(1, %s) i", [*params, n_cases]
        )
        cur.execute("SELECT setval(pg_get_serial_sequence('casework_subject', 'id'), %s)", [n_cases])
        cols, vals, params = _insert_sql(
            Case,
            {
                "subject": "i",
                "threat_class": str(spam.pk),
                "queue": str(queue.pk),
                "status": "'open'",
                "severity": str(spam.severity),
                "harm_weight": str(spam.harm_weight),
                "reach": "100",
                "signal_count": "1",
                "reporter_count": "0",
                "first_signal_at": "now() - interval '1 hour'",
                "last_signal_at": "now() - interval '1 hour'",
                "sla_due_at": "now() + interval '71 hours'",
                "priority": "round((random() * 100)::numeric, 3)",
                "created_at": "now() - interval '1 hour'",
                "updated_at": "now()",
            },
        )
        cur.execute(
            f"INSERT INTO casework_case ({cols}) SELECT {vals} FROM generate_series(1, %s) i", [*params, n_cases]
        )
        cur.execute("VACUUM ANALYZE casework_case")  # Django's connection autocommits here, as VACUUM needs
        cur.execute("ANALYZE casework_subject")
    users = [
        user_upsert(username=f"bench-r{i}", role_names=["moderator"], queues=[QUEUE], max_active=3)
        for i in range(n_reviewers)
    ]
    tokens = [token_for(u) for u in users]
    print(f"seeded {n_cases:,} open cases in {time.perf_counter() - started:.1f} s", flush=True)
    return [u.username for u in users], tokens, queue.pk


# --- the three cycles: one claim + one decision each ---------------------------------


def _sql_worker(conninfo, queue_id):
    import psycopg

    conn = psycopg.connect(conninfo, autocommit=False)
    cur = conn.cursor()

    def cycle():
        t0 = time.perf_counter()
        cur.execute(
            "SELECT id FROM casework_case WHERE queue_id = %s AND status = 'open' "
            "ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED",
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


def _service_worker(username):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from reviews.services import decision_make, queue_claim

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
    import requests

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
    from django.db import connections

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
    if errors:
        raise SystemExit(f"{mode}: {len(errors)} worker error(s), first: {errors[0]}")
    ids = [i for results, _ in gathered for got, _ in results for i in got]
    latencies = sorted(v for results, _ in gathered for _, lat in results for v in lat)
    return ids, latencies


def _double_assignments(mode, ids):
    """Cases handed out twice: by the driver's own record, and for Docket's paths by the database."""
    doubles = len(ids) - len(set(ids))
    if mode != "sql":
        from django.db import connection

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


def _start_gunicorn(workers, threads, redis_db):
    import requests

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": _redis_url(redis_db),
        "DJANGO_SETTINGS_MODULE": "docket.settings",
    }
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = subprocess.Popen(
        [
            gunicorn,
            "docket.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(f"{base}/api/v1/queues/", timeout=1)
            return proc, base
        except requests.RequestException:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--reviewers", default="1,16,64", help="comma-separated reviewer counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="per mode and reviewer count")
    parser.add_argument("--processes", type=int, default=4, help="driver processes (threads inside)")
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--no-api", action="store_true")
    parser.add_argument("--no-seed", action="store_true", help="reuse the cases left by the last run")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.reviewers.split(",")]

    _setup(args.redis_db)
    from django.db import connection

    if args.no_seed:
        from django.contrib.auth import get_user_model

        from docket.accounts import token_for
        from reviews.models import Queue

        users = list(get_user_model().objects.filter(username__startswith="bench-r").order_by("id"))
        usernames, tokens, queue_id = (
            [u.username for u in users],
            [token_for(u) for u in users],
            Queue.objects.get(slug=QUEUE).pk,
        )
    else:
        usernames, tokens, queue_id = _seed(args.cases, max(counts))
    conninfo = _database_url()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM casework_case WHERE status = 'open'")
        print(f"open cases: {cur.fetchone()[0]:,}; {os.cpu_count()} CPU(s) shared by driver, server and PostgreSQL")

    server = None
    modes = ["sql", "service"] + ([] if args.no_api else ["api"])
    rows, latency, doubles_by = {}, {}, {}
    try:
        if not args.no_api:
            server, base_url = _start_gunicorn(
                args.gunicorn_workers, max(2, max(counts) // args.gunicorn_workers), args.redis_db
            )
        print(
            f"{'mode':<8} {'reviewers':>9} {'cycles':>8} {'cycles/s':>9} {'claim p50 ms':>13} "
            f"{'claim p99 ms':>13} {'double':>7}",
            flush=True,
        )
        for n in counts:
            for mode in modes:
                if mode == "sql":
                    specs = [(conninfo, queue_id)] * n
                elif mode == "service":
                    specs = usernames[:n]
                else:
                    specs = [(base_url, t) for t in tokens[:n]]
                ids, latencies = _run(mode, specs, args.processes, args.seconds)
                rate = len(ids) / args.seconds
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
        figures = {}
        for (mode, n), rate in rows.items():
            figures[f"{mode} cycles/s @{n}"] = round(rate, 1)
            figures[f"{mode} claim p50/p99 ms @{n}"] = "{:.1f} / {:.1f}".format(*latency[(mode, n)])
            figures[f"{mode} double assignments @{n}"] = doubles_by[(mode, n)]
        for n in counts:
            if rows.get(("sql", n)):
                figures[f"service / bare SQL @{n}"] = f"{rows[('service', n)] / rows[('sql', n)]:.0%}"
        from bench import common

        common.report("claim", figures)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        try:
            import redis

            redis.Redis.from_url(_redis_url(args.redis_db)).delete("celery")
        except Exception as e:  # the bench's own queue only; nothing else to clean
            print(f"could not empty the bench Redis queue: {e!r}")


if __name__ == "__main__":
    main()
