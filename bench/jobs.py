"""Periodic jobs with work to do at scale: per job, its transactions, their durations, and how long case rows were held.

    python -m bench.jobs [--cases 1000000] [--expired 5000] [--purge 5000] [--scale S]

On the shared seed (``--cases`` open cases, a fifth of them high-severity and past
their SLA, so the SLA escalation has a backlog), ``--expired`` leases have run out
and ``--purge`` closed cases are past retention. Every registered periodic job
(but campaign detection, benchmarked by ``bench.campaigns``) then runs once,
as beat runs it (``job_run``), with each of its transactions watched from its
first statement to its COMMIT:

- ``transactions``: how many the job ran, and how many of them locked or wrote
  case rows (``casework_case`` taken for a row lock or a write, as ``pg_locks`` says
  just before the commit, or a statement outside a transaction writing cases);
- ``batch p50 / max ms``: the durations of those that held case rows;
- ``longest case-row hold ms``: the longest of them, first statement to COMMIT
  (an upper bound of how long a claim or a decision could have waited on a row).

The server-side time of one SLA escalation batch is also shown, from
``EXPLAIN (ANALYZE, BUFFERS)`` of its statement (rolled back), with the load
average at the time: timings on a shared machine are indications.
"""

import os
import re
import statistics
import sys
import time
from datetime import timedelta

from bench import common
from bench.leases import SEED_SQL as LEASES_SEED_SQL

from django.db import connection
from django.utils import timezone

from casework.models import Queue
from docket.batches import BATCH_SIZE
from docket.periodic import job_run, jobs
from reviews import sla

SKIPPED_JOBS = {"casework.tasks.detect_campaigns"}  # bench.campaigns; worked on apart

# Cases the escalation moved (or a reset reopened where they were) go back to their class's queue.
_REQUEUE_SQL = """
UPDATE casework_case c SET queue_id = q.queue_id
  FROM (SELECT threatclass_id, min(queue_id) AS queue_id FROM casework_queue_threat_classes GROUP BY 1) q
 WHERE c.threat_class_id = q.threatclass_id AND c.queue_id <> q.queue_id
"""

# Closed cases past retention, of classes without legal escalation: the purge's work.
_CLOSE_SQL = """
UPDATE casework_case SET status = 'closed', decided_at = now() - interval '400 days',
       closed_at = now() - interval '400 days', personal_data_purged_at = NULL
 WHERE id IN (SELECT c.id FROM casework_case c JOIN policies_threatclass tc ON tc.id = c.threat_class_id
               WHERE c.status = 'open' AND NOT tc.legal_escalation AND c.id %% 13 = 4 ORDER BY c.id LIMIT %(n)s)
"""

_HOLDS_CASES_SQL = """
SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'casework_case'::regclass
                  AND mode IN ('RowShareLock', 'RowExclusiveLock'))
"""
_WRITES_CASES = re.compile(r'(UPDATE|INSERT INTO|DELETE FROM)\s+"?casework_case"?\s', re.IGNORECASE)


class Watch:
    """Every transaction of Django's connection, first statement to COMMIT, and whether it held case rows."""

    def __init__(self):
        self.started = None
        self.transactions = []  # (ms, held case rows)
        self._commit, self._rollback = connection.commit, connection.rollback

    def __call__(self, execute, sql, params, many, context):
        if connection.get_autocommit() and not connection.in_atomic_block:
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                held = bool(_WRITES_CASES.search(sql))
                self.transactions.append(((time.perf_counter() - started) * 1000, held))
        if self.started is None:
            self.started = time.perf_counter()
        return execute(sql, params, many, context)

    def _end(self, finish):
        if self.started is None:
            return finish()
        with connection.cursor() as cur:
            cur.execute(_HOLDS_CASES_SQL)
            held = cur.fetchone()[0]
        finish()
        self.transactions.append(((time.perf_counter() - self.started) * 1000, held))
        self.started = None

    def commit(self):
        self._end(self._commit)

    def rollback(self):
        self._end(self._rollback)

    def __enter__(self):
        connection.commit, connection.rollback = self.commit, self.rollback
        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)
        connection.commit, connection.rollback = self._commit, self._rollback


def _load():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _escalation_explain():
    """EXPLAIN (ANALYZE, BUFFERS) of one SLA escalation batch, rolled back; its server-side time in ms."""
    now = timezone.now()
    target = Queue.objects.get(slug="escalations")
    excluded = list(Queue.objects.filter(slug__in=("escalations", "legal")).values_list("id", flat=True))
    if not hasattr(sla, "_ESCALATE_SQL"):  # the per-row form before issue 14: its batch is the job's own timing
        return None
    plan = common.explain(
        "SLA escalation batch",
        sla._ESCALATE_SQL,
        {
            "min_severity": 4,
            "severities": [4, 5],
            "cutoff": now,
            "excluded": excluded,
            "target": target.pk,
            "now": now,
            "system": "system",
            "kind": "sla_escalated",
            "detail": "{}",
            "after_at": now - timedelta(days=3650),
            "after_id": 0,
            "batch": BATCH_SIZE,
        },
    )
    found = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return float(found.group(1)) if found else None


def main(argv=None):
    args = common.parser(__doc__, cases=1_000_000, expired=5_000, purge=5_000).parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    expired = common.scaled(args.expired, args.scale, minimum=100)
    purge = common.scaled(args.purge, args.scale, minimum=100)
    common.scale_setup(cases)
    common.reviewers(50, prefix="bench-lease-", max_active=1000)
    with connection.cursor() as cur:
        cur.execute(_REQUEUE_SQL)
        cur.execute(LEASES_SEED_SQL, {"expired": expired, "total": expired, "history": 0})
        cur.execute(_CLOSE_SQL, {"n": purge})
        cur.execute("VACUUM ANALYZE reviews_assignment")
        cur.execute("VACUUM ANALYZE casework_case")
        cur.execute(
            "SELECT count(*) FILTER (WHERE status = 'open' AND severity >= 4 AND sla_due_at < now()),"
            " count(*) FILTER (WHERE status = 'closed') FROM casework_case"
        )
        breached, closed = cur.fetchone()
    print(f"work: {breached:,} high-severity breaches, {expired:,} expired leases, {closed:,} closed cases to purge")
    explain_ms = _escalation_explain()

    figures = {"load average at start": _load()}
    if explain_ms is not None:
        figures["SLA escalation: one batch, server ms (EXPLAIN)"] = explain_ms
    print(f"\n{'job':<48} {'txns':>6} {'case':>6} {'p50 ms':>8} {'max ms':>8} {'run s':>7}  result")
    for job in jobs():
        if job.name in SKIPPED_JOBS:
            continue
        with Watch() as watch:
            started = time.perf_counter()
            result = job_run(job.name)
            took = time.perf_counter() - started
        held = [ms for ms, holds in watch.transactions if holds]
        p50 = statistics.median(held) if held else 0.0
        worst = max(held) if held else 0.0
        short = job.name.rsplit(".", 1)[-1]
        print(
            f"{short:<48} {len(watch.transactions):>6} {len(held):>6} {p50:>8.1f} {worst:>8.1f} {took:>7.1f}  {result}"
        )
        figures[f"{short}: transactions / holding cases"] = f"{len(watch.transactions)} / {len(held)}"
        figures[f"{short}: batch p50 / max ms"] = f"{p50:.1f} / {worst:.1f}"
    figures["load average at end"] = _load()
    common.report("jobs", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
