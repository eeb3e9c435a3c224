"""Periodic jobs with no new signals: what the worker and beat write while nothing happens, on the 1M-case seed.

    python -m bench.idle [--cases 1000000] [--seconds 120] [--runs 3] [--scale S]

On the shared seed (``bench.common.scale_setup``), after the re-ranking job has
caught up with the moments that came due while the seed sat, and the SLA
escalation with the seed's high-severity cases already past their SLA (one
move each, as beat keeps both caught up in production; up to
``--catch-up-seconds``, what is left is printed):

- ``per job``: every periodic job (``docket.periodic.jobs``) is run in this
  process ``--runs`` times back to back after a first run. Each idle run's WAL
  is read from the WAL itself: ``pg_waldump`` over the run's LSN range, summing
  the records of the transactions that touched this database (its relations'
  blocks), so other databases on a shared server do not count (where
  ``pg_waldump`` or the WAL directory cannot be read, the smallest
  ``pg_current_wal_lsn`` delta of the runs stands in, an upper bound). Also the
  rows it inserted, updated or deleted in this database
  (``pg_stat_user_tables``, which only Docket's processes touch). Weighted by
  each job's firings per minute, the sum is the periodic work's WAL per
  minute, the rare jobs included (a run whose WAL range a busy server has
  recycled already is priced as its rows times a re-ranked case's WAL). The case rows written per minute, as a share of
  the active cases, say the same without WAL: a sweep writes every one.
- ``live``: a Celery worker with beat (every job on its schedule, no traffic)
  for ``--seconds``, and the same span with neither: WAL per minute of both
  (the span without them is the shared server's noise floor) and the rows
  written per table in this database while they ran (attributable to them).
- ``full sweep``: WAL of re-ranking every active case once (``cases_reprioritise_all``,
  the work the former one-minute sweep did), from ``EXPLAIN (ANALYZE, WAL)`` of
  its first batches (rolled back) times the active cases.

Target (issue 14): periodic work with no new signals writes under 1% of a full
sweep's WAL per minute.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

from bench import common

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from casework import priority
from casework.models import ACTIVE_STATUSES_SQL
from casework.priority import cases_reprioritise_due
from docket.periodic import job_run, jobs
from reviews.sla import cases_escalate_sla_breaches

SAMPLE_BATCHES = 4
TABLES_SQL = """
SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE schemaname = 'public'
"""


def _rows_written(conn):
    """Rows inserted + updated + deleted per table of this database, as the statistics collector has them."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return dict(conn.execute(TABLES_SQL).fetchall())


def _delta(before, after):
    return {t: n - before.get(t, 0) for t, n in after.items() if n - before.get(t, 0)}


_RECORD = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*(\d+),")
_REL = re.compile(r"rel \d+/(\d+)/\d+")


def _waldump(cur):
    """(pg_waldump, WAL directory, this database's oid), or None when the server's WAL cannot be read here."""
    cur.execute(
        "SELECT (SELECT setting FROM pg_config WHERE name = 'BINDIR'), current_setting('data_directory'), "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    bindir, data, oid = cur.fetchone()
    tool, wal = os.path.join(bindir, "pg_waldump"), os.path.join(data, "pg_wal")
    if not (os.access(tool, os.X_OK) and os.access(wal, os.R_OK)):
        return None
    return tool, wal, str(oid)


def _wal_of_database(dump, start, end):
    """WAL bytes between two LSNs written by transactions that touched this database (pg_waldump).

    ``None`` when the range cannot be read (a busy server may have recycled its first segment already).
    """
    tool, wal, oid = dump
    if start == end:
        return 0
    done = subprocess.run([tool, "-p", wal, "-s", start, "-e", end], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    out = done.stdout
    by_tx, mine, loose = {}, set(), 0
    for line in out.splitlines():
        record = _RECORD.search(line)
        if not record:
            continue
        size, tx = int(record.group(1)), record.group(2)
        touched = oid in _REL.findall(line)
        if tx == "0":  # no transaction (e.g. a full-page image of a hint-bit change): by its block alone
            loose += size if touched else 0
            continue
        by_tx[tx] = by_tx.get(tx, 0) + size
        if touched:
            mine.add(tx)
    return loose + sum(by_tx[tx] for tx in mine)


def _stats_settled():
    """This process's table counters handed over to the statistics (else up to 10 s late), then a moment."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
    with connection.cursor() as cur:
        cur.execute("SELECT 1")  # the flush happens at the end of this (autocommit) statement
    time.sleep(0.5)


def _start_worker():
    env = {**os.environ, "DATABASE_URL": common.conninfo(), "DJANGO_SETTINGS_MODULE": "docket.settings"}
    schedule = os.path.join(tempfile.mkdtemp(prefix="docket-bench-idle-"), "schedule")
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    return subprocess.Popen(
        [celery, "-A", "docket", "worker", "-B", "-s", schedule, "--concurrency", "2", "-l", "warning"], env=env
    )


def _sweep_wal_per_case():
    """WAL bytes per case of re-ranking every active case, from EXPLAIN (ANALYZE, WAL) of its first batches."""

    class _Rollback(Exception):
        pass

    sql = priority._REFRESH_SQL.format(extra="AND c.id > %(after)s ORDER BY c.id LIMIT %(batch)s")
    params = priority._params(timezone.now())
    wal = rows = 0
    try:
        with transaction.atomic(), connection.cursor() as cur:
            after = 0
            for _ in range(SAMPLE_BATCHES):
                cur.execute(
                    f"EXPLAIN (ANALYZE, WAL, FORMAT JSON) {sql}", {**params, "after": after, "batch": priority.BATCH}
                )
                plan = cur.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                top = plan[0]["Plan"]
                wal += int(top.get("WAL Bytes", 0))
                rows += int(top.get("Actual Rows", 0))
                cur.execute(
                    "SELECT max(id) FROM (SELECT id FROM casework_case WHERE id > %s AND status IN "
                    f"({ACTIVE_STATUSES_SQL}) ORDER BY id LIMIT %s) b",
                    [after, priority.BATCH],
                )
                after = cur.fetchone()[0] or after
            raise _Rollback
    except _Rollback:
        pass
    return wal / max(rows, 1), rows


def main(argv=None):
    args = common.parser(__doc__, cases=1_000_000, seconds=120, runs=3, catch_up_seconds=900).parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    common.scale_setup(cases)
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM casework_case WHERE status IN ({ACTIVE_STATUSES_SQL})")
        (active,) = cur.fetchone()
    caught_up, started = 0, time.perf_counter()
    while True:  # the moments that came due while the seed sat (beat keeps this caught up in production)
        done = cases_reprioritise_due(budget_seconds=60)
        caught_up += done
        if done < 500:
            break
    print(f"{active:,} active cases; {caught_up:,} due cases re-ranked first in {time.perf_counter() - started:.0f} s")
    escalated, started = 0, time.perf_counter()
    while time.perf_counter() - started < args.catch_up_seconds:
        moved = cases_escalate_sla_breaches()
        escalated += moved
        if not moved:
            break
    print(f"{escalated:,} cases past their SLA escalated first in {time.perf_counter() - started:.0f} s")

    per_case, sampled = _sweep_wal_per_case()
    sweep = per_case * active
    print(f"full sweep: {per_case:,.0f} WAL bytes per case ({sampled:,} sampled) -> {sweep / 1e6:,.0f} MB per sweep")

    figures = {"active cases": active, "full sweep WAL MB (sampled)": round(sweep / 1e6, 1)}
    stats = psycopg.connect(common.conninfo(), autocommit=True)

    # Per job: the WAL of its idle runs, weighted by its firings per minute.
    per_minute = 0.0
    written_per_minute: dict = {}
    with connection.cursor() as cur:
        dump = _waldump(cur)
        print("WAL: pg_waldump, this database's transactions" if dump else "WAL: LSN deltas (an upper bound)")
        for job in jobs():
            job_run(job.name)  # the first run may still have work left from the catch-up or the seed
            _stats_settled()
            before = _rows_written(stats)
            deltas = []
            for _ in range(args.runs):
                start = common.wal_lsn(cur)
                job_run(job.name)
                if dump:
                    deltas.append(_wal_of_database(dump, start, common.wal_lsn(cur)))
                else:
                    deltas.append(common.wal_since(cur, start))
            _stats_settled()
            rows = _delta(before, _rows_written(stats))
            firings = 60 / job.seconds
            how = ""
            if dump and None not in deltas:
                wal = sum(deltas) / len(deltas)
            elif dump:  # unreadable range: every row written priced as a re-ranked case (an upper bound)
                wal, how = sum(rows.values()) / args.runs * per_case, " (estimated: rows x a case's re-rank WAL)"
            else:
                wal = min(deltas)
            per_minute += wal * firings
            for table, n in rows.items():
                written_per_minute[table] = written_per_minute.get(table, 0) + n / args.runs * firings
            shown = ", ".join(f"{t} {n / args.runs:g}" for t, n in sorted(rows.items())) or "no rows"
            print(f"  {job.name} (every {job.seconds:g} s): {wal:,.0f} WAL bytes per idle run{how}; rows: {shown}")
            figures[f"{job.name.rsplit('.', 1)[-1]} WAL bytes per idle run"] = round(wal)
    share = per_minute / sweep if sweep else None
    print(f"periodic jobs, idle: {per_minute / 1e3:,.1f} kB WAL per minute = {share:.4%} of a full sweep")
    figures["periodic jobs idle WAL kB/min (per job, weighted)"] = round(per_minute / 1e3, 1)
    figures["  as a share of a full sweep"] = f"{share:.4%}"
    case_rows = written_per_minute.get("casework_case", 0)
    print(f"case rows written per minute, idle: {case_rows:,.0f} = {case_rows / active:.4%} of the active cases")
    figures["case rows written per minute, idle (per job)"] = round(case_rows, 1)
    figures["  as a share of the active cases (a sweep writes 100%)"] = f"{case_rows / active:.4%}"

    # Live: worker and beat for a span, then the same span with neither (the shared server's floor).
    cur = stats.cursor()
    worker = _start_worker()
    try:
        time.sleep(10)  # up, and past the jobs' first firings
        before, start = _rows_written(stats), common.wal_lsn(cur)
        time.sleep(args.seconds)
        live_wal = common.wal_since(cur, start)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    time.sleep(2)  # the worker's backends hand their counters over as they exit
    live_rows = _delta(before, _rows_written(stats))
    time.sleep(5)
    start = common.wal_lsn(cur)
    time.sleep(args.seconds)
    floor_wal = common.wal_since(cur, start)
    minutes = args.seconds / 60
    shown = ", ".join(f"{t} {n}" for t, n in sorted(live_rows.items())) or "none"
    print(
        f"live, {args.seconds} s: WAL {live_wal / minutes / 1e6:,.2f} MB/min with worker and beat, "
        f"{floor_wal / minutes / 1e6:,.2f} MB/min without (shared server); rows written here: {shown}"
    )
    figures["live WAL MB/min, worker + beat (shared server)"] = round(live_wal / minutes / 1e6, 2)
    figures["live WAL MB/min, neither (noise floor)"] = round(floor_wal / minutes / 1e6, 2)
    figures["live case rows written per minute"] = round(live_rows.get("casework_case", 0) / minutes, 1)
    figures["live rows written per minute, every table"] = round(sum(live_rows.values()) / minutes, 1)
    common.compare(
        "periodic jobs idle WAL per minute",
        docket=round(per_minute / 1e3, 1),
        bare=round(sweep / 1e3),
        unit="kB (bare: one full sweep)",
        higher_is_better=True,  # so the ratio column reads as the share of a sweep
        target="< 1% of a full sweep",
        met=share is not None and share < 0.01,
    )
    stats.close()
    common.report("idle", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
