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

from django.db import connection
from django.utils import timezone

from casework import priority

JOB_PERIOD_SECONDS = 15


def _timed_batches(fn):
    """Run ``fn`` with ``casework.priority._refresh`` timed per batch; returns (result, batch milliseconds)."""
    original = priority._refresh
    times = []

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times.append((time.perf_counter() - started) * 1000)

    priority._refresh = timed
    try:
        return fn(), times
    finally:
        priority._refresh = original


def main(argv=None):
    p = common.parser(__doc__, cases=1_000_000, minutes=2.0)
    p.add_argument("--full", action="store_true", help="also time cases_reprioritise_all and its WAL")
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
    figures.update(
        {
            "steady cases re-ranked per minute": round(reranked / minutes, 1),
            "steady longest batch ms": round(max(steady_ms, default=0), 1),
            "steady WAL MB/min with the job (shared server)": round(job_wal / minutes / 1e6, 2),
            "steady WAL MB/min without it (noise floor)": round(idle_wal / minutes / 1e6, 2),
        }
    )

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
    common.explain(
        "the periodic job's batch (due cases)",
        priority._REFRESH_SQL.format(extra="AND c.rank_due_at <= %(now)s ORDER BY c.rank_due_at LIMIT %(batch)s"),
        {**priority._params(timezone.now()), "batch": priority.BATCH},
    )
    common.report("reprioritise", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
