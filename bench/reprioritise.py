"""Periodic re-ranking at scale: the first ranking of a seeded backlog, then the steady state with no new signals.

    python -m bench.reprioritise [--cases 1000000] [--minutes 2] [--full] [--scale S]

On the shared seed (``bench.common.scale_setup``: open cases over the six
classes with their subjects, reporters and signals):

- ``backfill``: cases never ranked are due at once; ``cases_reprioritise_due``
  (the periodic job) ranks them in short batches. Printed: cases/s and the
  longest batch (the longest any case row is held).
- ``steady``: with no new signals, the job runs every 15 s (as beat fires it)
  for ``--minutes``; beside it, the same span with no job. Printed: cases
  re-ranked per minute (SLA breaches and velocity windows only) and WAL bytes
  per minute with and without the job (``pg_current_wal_lsn``; the server is
  shared, so the span without the job is the noise floor).
- ``reporters``: a decision changes its reporters' records, and each one's
  other active cases must re-rank on the new accuracy. ``--reporters`` reporters
  with active cases are marked as a decision marks them, then one run of the
  job: printed are its time, the cases re-ranked, the case row versions
  written (PostgreSQL's count in the run's transaction, rolled back after, so
  the seed stays as it was) and its WAL.
- ``--full``: also ``cases_reprioritise_all`` (every active case, in batches),
  the work a change of formula costs, with its WAL.

The queue order does not move with time (``casework.priority``), so the steady
state writes only the cases whose order changed by itself. Target: WAL per
minute under 1% of the former full sweep (one UPDATE of every active case each
minute: about 12 GB per sweep at 1,000,000 cases on the reference machine).
"""

import sys
import time

from bench import common

from django.db import connection, transaction
from django.utils import timezone

from casework import priority

JOB_PERIOD_SECONDS = 15


# Each batch of the job is one call of these (its own transaction): the due, reporters' and marks' batches,
# and the full re-rank's.
_BATCHES = ("_batch_rerank", "_refresh")


def _timed_batches(fn):
    """Run ``fn`` with each batch of ``casework.priority`` (``_BATCHES``) timed; returns (result, batch ms)."""
    originals = {name: getattr(priority, name) for name in _BATCHES}
    times = []

    def timing(original):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times.append((time.perf_counter() - started) * 1000)

        return timed

    for name, original in originals.items():
        setattr(priority, name, timing(original))
    try:
        return fn(), times
    finally:
        for name, original in originals.items():
            setattr(priority, name, original)


_ROWS_WRITTEN_SQL = "SELECT pg_stat_get_xact_tuples_updated('casework_case'::regclass)"


def _reporters_fan_out(reporters):
    """One run of the job after ``reporters`` reporters' records changed, in a transaction rolled back after."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "UPDATE casework_reporter SET rerank_pending_at = now() WHERE id IN ("
            " SELECT DISTINCT s.reporter_id FROM casework_signal s JOIN casework_case c ON c.id = s.case_id"
            " WHERE c.status = 'open' AND s.reporter_id IS NOT NULL ORDER BY s.reporter_id LIMIT %s)",
            [reporters],
        )
        marked = cur.rowcount
        cur.execute(_ROWS_WRITTEN_SQL)
        (rows_before,) = cur.fetchone()
        start = common.wal_lsn(cur)
        started = time.perf_counter()
        done, times = 0, []
        while True:  # a run takes a hundred reporters: as many runs as they need
            ranked, batch_ms = _timed_batches(lambda: priority.cases_reprioritise_due(budget_seconds=600))
            done, times = done + ranked, times + batch_ms
            cur.execute("SELECT EXISTS (SELECT 1 FROM casework_reporter WHERE rerank_pending_at IS NOT NULL)")
            if not cur.fetchone()[0]:
                break
        took = time.perf_counter() - started
        cur.execute(_ROWS_WRITTEN_SQL)
        (rows_after,) = cur.fetchone()
        wal = common.wal_since(cur, start)
        transaction.set_rollback(True)
    print(f"  reporters: {marked} records changed, {done:,} cases re-ranked in {took:.1f} s", flush=True)
    return {
        "reporters whose record changed": marked,
        "reporters: cases re-ranked": done,
        "reporters: run s": round(took, 2),
        "reporters: ms per case re-ranked": round(took * 1000 / max(done, 1), 2),
        "reporters: case row versions written": rows_after - rows_before,
        "reporters: WAL MB": round(wal / 1e6, 1),
        "reporters: longest batch ms": round(max(times, default=0), 1),
    }


def _steady(span):
    """The job every JOB_PERIOD_SECONDS for ``span`` seconds with no new signals, beside the same span without it."""
    with connection.cursor() as cur:
        start = common.wal_lsn(cur)
    time.sleep(span)
    with connection.cursor() as cur:
        idle_wal = common.wal_since(cur, start)
        start = common.wal_lsn(cur)
    steady_started = time.perf_counter()
    reranked, steady_ms = 0, []
    while time.perf_counter() - steady_started < span:
        fired = time.perf_counter()
        done, times = _timed_batches(priority.cases_reprioritise_due)
        reranked += done
        steady_ms += times
        time.sleep(max(0.0, JOB_PERIOD_SECONDS - (time.perf_counter() - fired)))
    with connection.cursor() as cur:
        job_wal = common.wal_since(cur, start)
    minutes = span / 60
    return {
        "steady cases re-ranked per minute": round(reranked / minutes, 1),
        "steady longest batch ms": round(max(steady_ms, default=0), 1),
        "steady WAL MB/min with the job (shared server)": round(job_wal / minutes / 1e6, 2),
        "steady WAL MB/min without it (noise floor)": round(idle_wal / minutes / 1e6, 2),
    }


def main(argv=None):
    p = common.parser(__doc__, cases=1_000_000, minutes=2.0)
    p.add_argument("--full", action="store_true", help="also time cases_reprioritise_all and its WAL")
    p.add_argument("--reporters", type=int, default=200, help="reporters whose record changed (0: skip)")
    args = p.parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    common.scale_setup(cases)

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM casework_case WHERE status IN ('open', 'in_review', 'escalated')")
        (active,) = cur.fetchone()
        cur.execute(
            "SELECT count(*) FROM casework_case WHERE status IN ('open', 'in_review', 'escalated')"
            " AND rank_due_at <= now()"
        )
        (due,) = cur.fetchone()
    print(f"{active:,} active cases, {due:,} due for ranking", flush=True)
    figures = {"active cases": active}

    if args.reporters:
        figures.update(_reporters_fan_out(args.reporters))

    # Backfill: every due case, batch after batch, until none is due.
    with connection.cursor() as cur:
        start = common.wal_lsn(cur)
    started = time.perf_counter()
    ranked, batch_ms = 0, []
    while True:
        done, times = _timed_batches(priority.cases_reprioritise_due)
        ranked += done
        batch_ms += times
        if done == 0 or done < priority.BATCH:
            break
        print(f"  backfill: {ranked:,} ranked ({time.perf_counter() - started:.0f} s)", flush=True)
    took = time.perf_counter() - started
    with connection.cursor() as cur:
        wal = common.wal_since(cur, start)
    figures.update(
        {
            "backfill cases ranked": ranked,
            "backfill s": round(took, 1),
            "backfill cases/s": round(ranked / took, 1) if took else 0,
            "backfill batch p50 ms": round(common.pct(batch_ms, 50), 1),
            "backfill longest batch ms (longest row hold)": round(max(batch_ms, default=0), 1),
            "backfill WAL MB": round(wal / 1e6, 1),
        }
    )

    # Steady state, no new signals: the same span without the job (noise floor), then with it.
    span = args.minutes * 60
    if span:
        figures.update(_steady(span))

    if args.full:
        with connection.cursor() as cur:
            start = common.wal_lsn(cur)
        full_started = time.perf_counter()
        done, times = _timed_batches(lambda: priority.cases_reprioritise_all(now=timezone.now()))
        full = time.perf_counter() - full_started
        with connection.cursor() as cur:
            wal = common.wal_since(cur, start)
        figures.update(
            {
                "full re-rank cases": done,
                "full re-rank s": round(full, 1),
                "full re-rank longest batch ms": round(max(times, default=0), 1),
                "full re-rank WAL MB": round(wal / 1e6, 1),
            }
        )
    now = timezone.now()
    due_params = {"now": now, "batch": priority.BATCH}
    common.explain("the periodic job's batch: its due cases", priority._DUE_SQL, due_params)
    with connection.cursor() as cur:
        cur.execute(priority._DUE_SQL, due_params)
        due = [row[0] for row in cur.fetchall()]
    common.explain(
        "the periodic job's batch: their re-rank",
        priority._REFRESH_BY_IDS_SQL,
        {**priority._params(now), "ids": priority._id_array(due)},
    )
    common.report("reprioritise", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
