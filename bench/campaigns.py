"""Campaign detection over many recent subjects with realistic attribute overlap: time, memory, row locks.

    python -m bench.campaigns [--subjects 200000] [--scale S]

Seeds (set-based SQL) a dedicated database, ``docket_bench_campaigns`` on the
configured PostgreSQL server (``bench.common.setup``), then runs ``campaigns_detect`` twice: the first
run finds and writes every campaign, the second finds nothing new (the steady
state of the 10-minute beat job). For each run it prints how long the detection's
longest transaction was open, how long it held case rows and subject rows (from the
first statement that locked or wrote one until the transaction ended), and the
longest wait of a writer that meanwhile locks member cases one at a time, as a
decision does (a second connection, a case every few milliseconds). The population:

- every subject has a device and a payment fingerprint of its own;
- households of two share an IP address (components of 2: below the minimum size);
- 5% sit behind 7 carrier-grade NAT addresses and 30% link to 50 popular domains
  (values shared by far more than ``CAMPAIGN_MAX_VALUE_SHARE`` subjects: ignored);
- 4% share a referral code with about one other random subject (a sparse random graph
  over households, so some small chance clusters appear, as in real data);
- 2% belong to rings of 20 sharing a device and a link domain, rings paired by a
  shared payment fingerprint (so 100 campaigns of 40 to find, by union);
- 1% carry a media hash that only csam signals brought, shared by about 20 subjects each (the
  restricted class's detection, walked from those values through the unrestricted ones they reach);
- a fifth of the subjects have an open case.
"""

import random
import re
import sys
import threading
import time
import tracemalloc

from bench import common

import psutil
import psycopg
from django.conf import settings
from django.db import connection
from django.utils import timezone

from casework.campaigns import _GROUPS_SQL, _groups, campaigns_detect, components, groups_params
from casework.models import Campaign, Case, Queue
from policies.models import ThreatClass

DB_NAME = "docket_bench_campaigns"
_RING_SUBJECTS: list[int] = []


SEED_SQL = """
INSERT INTO casework_subject (id, kind, external_id, reach, attributes, created_at, updated_at)
SELECT i, 'account', 'bench-u-' || i, 100, '{}'::jsonb, now(), now() FROM generate_series(1, %(n)s) i;

SELECT setval(pg_get_serial_sequence('casework_subject', 'id'), %(n)s);

INSERT INTO casework_subjectattribute (subject_id, kind, value, seen_at, seen_by)
SELECT i, a.kind, a.value, t.seen_at,
       jsonb_build_object(%(spam)s::text, floor(extract(epoch FROM t.seen_at))::bigint)  -- brought by spam signals
FROM generate_series(1, %(n)s) i
CROSS JOIN LATERAL (SELECT now() - (i %% 240) * interval '1 hour' AS seen_at) t
CROSS JOIN LATERAL (VALUES
    ('device', CASE WHEN i %% 50 = 0 THEN 'ring-dev-' || (i / 50) %% %(rings)s ELSE 'dev-' || i END),
    ('payment', CASE WHEN i %% 50 = 0 THEN 'ring-pay-' || ((i / 50) %% %(rings)s) / 2 ELSE 'pay-' || i END),
    ('ip', CASE WHEN i %% 20 = 1 THEN 'cgnat-' || i %% 7 ELSE 'ip-' || i / 2 END),
    ('link_domain', CASE WHEN i %% 50 = 0 THEN 'ring-' || (i / 50) %% %(rings)s || '.example'
                         WHEN i %% 10 < 3 THEN 'popular-' || i %% 50 || '.example' END),
    ('referral', CASE WHEN i %% 25 = 7 THEN 'ref-' || abs(hashtext(i::text)) %% (%(n)s / 50) END)
) AS a(kind, value)
WHERE a.value IS NOT NULL;

INSERT INTO casework_subjectattribute (subject_id, kind, value, seen_at, seen_by)
SELECT i, 'media_hash', 'csam-hash-' || (i / 100) %% greatest(1, %(n)s / 2000), now(),
       jsonb_build_object(%(csam)s::text, floor(extract(epoch FROM now()))::bigint)  -- brought by csam signals
FROM generate_series(1, %(n)s) i WHERE i %% 100 = 3;

ANALYZE casework_subject;
ANALYZE casework_subjectattribute;
"""


def _seed(n):
    rings = max(2, n // 50 // 20)  # rings of ~20 members
    spam, csam = ThreatClass.objects.get(slug="spam"), ThreatClass.objects.get(slug="csam")
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE casework_caseevent, casework_case, casework_campaign, casework_subjectattribute,"
            " casework_signal, casework_subject, casework_queuetally RESTART IDENTITY CASCADE"
        )
        for statement in SEED_SQL.split(";\n"):
            if statement.strip():
                cur.execute(statement, {"n": n, "rings": rings, "spam": spam.pk, "csam": csam.pk})
        cur.execute("SELECT count(*) FROM casework_subjectattribute")
        (attribute_rows,) = cur.fetchone()
    queue = Queue.objects.get(slug="spam")
    now = timezone.now()
    cases = (
        Case(
            subject_id=i,
            threat_class=spam,
            queue=queue,
            severity=spam.severity,
            harm_weight=spam.harm_weight,
            first_signal_at=now,
            last_signal_at=now,
            sla_due_at=now,
            created_at=now,
            signal_count=1,
        )
        for i in range(5, n + 1, 5)
    )
    Case.objects.bulk_create(cases, batch_size=5000)
    return attribute_rows


class _PeakRSS:
    """Samples the process's resident memory every 10 ms; ``peak`` above the level at start."""

    def __init__(self):
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.stop = threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth_mb(self):
        return (self.peak - self.start) / 2**20


# Statements that lock or write case rows (or subject rows): an UPDATE of the table, or a SELECT ... FOR UPDATE of it.
_CASE_ROWS = re.compile(r'UPDATE\s+"?casework_case"?\s|FOR\s+(NO\s+KEY\s+)?UPDATE\s+OF\s+"?casework_case"?\b', re.I)
_SUBJECT_ROWS = re.compile(
    r'UPDATE\s+"?casework_subject"?\s|FOR\s+(NO\s+KEY\s+)?UPDATE\s+OF\s+"?casework_subject"?\b', re.I
)

_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.I)


class _Transactions:
    """The transactions Django's connection runs meanwhile: how long each was open, and how long it held rows.

    A transaction is open from its first statement to its commit or rollback (a statement outside a
    transaction is one of its own); it holds case rows from the start of the first statement locking or
    writing one to that end, as no other transaction can lock them before.
    """

    def __init__(self):
        self.longest = self.longest_writing = self.longest_case_rows = self.longest_subject_rows = 0.0
        self.transactions = self.holding_case_rows = 0
        self._open_at = self._case_at = self._subject_at = None
        self._writes = False

    def __enter__(self):
        self.db = connection
        self.db.ensure_connection()
        self._commit, self._rollback = self.db.commit, self.db.rollback
        self.db.commit = lambda: self._ended(self._commit)
        self.db.rollback = lambda: self._ended(self._rollback)
        self._wrapper = self.db.execute_wrapper(self._execute)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)
        del self.db.commit, self.db.rollback

    def _execute(self, execute, sql, params, many, context):
        started = time.perf_counter()
        inside = self.db.in_atomic_block
        if inside and self._open_at is None:
            self._open_at = started
        at = self._open_at if inside else started
        case_at = (self._case_at or started) if _CASE_ROWS.search(sql) else self._case_at
        subject_at = (self._subject_at or started) if _SUBJECT_ROWS.search(sql) else self._subject_at
        writes = bool(_WRITES.search(sql))
        try:
            return execute(sql, params, many, context)
        finally:
            if inside:
                self._case_at, self._subject_at = case_at, subject_at
                self._writes = self._writes or writes
            else:  # autocommit: the statement was its own transaction
                self._close(at, case_at, subject_at, writes)

    def _ended(self, end):
        try:
            return end()
        finally:
            if self._open_at is not None:
                self._close(self._open_at, self._case_at, self._subject_at, self._writes)
            self._open_at = self._case_at = self._subject_at = None
            self._writes = False

    def _close(self, opened, case_at, subject_at, writes):
        now = time.perf_counter()
        self.transactions += 1
        self.longest = max(self.longest, now - opened)
        if writes:
            self.longest_writing = max(self.longest_writing, now - opened)
        if case_at is not None:
            self.holding_case_rows += 1
            self.longest_case_rows = max(self.longest_case_rows, now - case_at)
        if subject_at is not None:
            self.longest_subject_rows = max(self.longest_subject_rows, now - subject_at)

    def figures(self, prefix):
        return {
            f"{prefix} transactions": self.transactions,
            f"{prefix} transactions holding case rows": self.holding_case_rows,
            f"{prefix} longest transaction s": round(self.longest, 3),
            f"{prefix} longest writing transaction s": round(self.longest_writing, 3),
            f"{prefix} longest case rows held s": round(self.longest_case_rows, 3),
            f"{prefix} longest subject rows held s": round(self.longest_subject_rows, 3),
        }


class _CaseWriter:
    """A second connection that locks one member case at a time (``FOR NO KEY UPDATE``, as a decision or an
    intake fold does), every few milliseconds while detection runs: the longest it waited for one."""

    def __init__(self, case_ids):
        self.case_ids = case_ids
        self.longest_wait = 0.0
        self.locks = 0
        self.stop = threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.thread.start()
        return self

    def _write(self):
        pick = random.Random(14)
        with psycopg.connect(common.conninfo()) as conn:
            while not self.stop.wait(0.005) and self.case_ids:
                with conn.transaction():
                    case_id = pick.choice(self.case_ids)
                    started = time.perf_counter()  # the lock alone: its commit's flush is no wait for a row
                    conn.execute("SELECT id FROM casework_case WHERE id = %s FOR NO KEY UPDATE", [case_id])
                    self.longest_wait = max(self.longest_wait, time.perf_counter() - started)
                self.locks += 1

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def figures(self, prefix):
        wait = round(self.longest_wait, 3)
        return {f"{prefix} case writer locks": self.locks, f"{prefix} case writer longest wait s": wait}


def _detect_watched(prefix):
    """Run detection with its transactions and a concurrent case writer watched; returns (result, s, figures)."""
    ring_cases = list(Case.objects.filter(subject_id__in=_RING_SUBJECTS).values_list("pk", flat=True))
    with _Transactions() as transactions, _CaseWriter(ring_cases) as writer:
        started = time.perf_counter()
        result = campaigns_detect()
        elapsed = time.perf_counter() - started
    return result, elapsed, {**transactions.figures(prefix), **writer.figures(prefix)}


def run(subjects=200_000):
    """Seed, detect twice, and return the figures."""
    common.setup(database=DB_NAME)

    started = time.perf_counter()
    attribute_rows = _seed(subjects)
    seed_s = time.perf_counter() - started

    _RING_SUBJECTS[:] = range(50, subjects + 1, 50)  # the planted rings' members (each has a case)
    with _PeakRSS() as rss:
        first, first_s, first_locks = _detect_watched("first run")
    second, second_s, second_locks = _detect_watched("steady run")

    # The in-memory part alone, under tracemalloc (slower, so timed separately above).
    config = settings.DOCKET
    params = groups_params(now=timezone.now())
    with connection.cursor() as cur:
        started = time.perf_counter()
        cur.execute(_GROUPS_SQL, params)
        rows = cur.fetchall()
        query_s = time.perf_counter() - started
    groups, _ = _groups(rows, max_share=params["max_share"])
    tracemalloc.start()
    started = time.perf_counter()
    found = components(groups, min_size=config["CAMPAIGN_MIN_SIZE"])
    union_find_s = time.perf_counter() - started
    _, union_find_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    sizes = sorted((c.size for c in Campaign.objects.all()), reverse=True)
    return {
        "subjects": subjects,
        "attribute_rows": attribute_rows,
        "shared_values": len(groups),
        "components": len(found),
        "campaigns": len(sizes),
        "largest_campaign": sizes[0] if sizes else 0,
        "planted_rings_found": sum(1 for size in sizes if size >= 40),
        "cases_in_campaigns": Case.objects.filter(campaign__isnull=False).count(),
        "seed_s": round(seed_s, 2),
        "detect_first_s": round(first_s, 2),
        "detect_steady_s": round(second_s, 2),
        "groups_query_s": round(query_s, 2),
        "union_find_traced_s": round(union_find_s, 2),  # under tracemalloc, which slows Python down
        "union_find_peak_mb": round(union_find_peak / 2**20, 1),
        "detect_peak_rss_growth_mb": round(rss.growth_mb, 1),
        "detect_peak_rss_mb": round(rss.peak / 2**20, 1),
        **{f"first run {k}": v for k, v in first.items()},
        **first_locks,
        **{f"steady run {k}": v for k, v in second.items()},
        **second_locks,
    }


def main(argv=None):
    args = common.parser(__doc__, subjects=200_000).parse_args(argv)
    result = run(subjects=common.scaled(args.subjects, args.scale, minimum=2000))
    common.compare(
        f"campaign detection, {result['subjects']:,} subjects (first run)",
        docket=result["detect_first_s"],
        bare=result["groups_query_s"],
        unit="s",
        higher_is_better=False,
        note="bare = the shared-value grouping query alone (the SQL floor of the detection); "
        f"steady-state run {result['detect_steady_s']} s; planted rings found: {result['planted_rings_found']}; "
        f"longest transaction {result['first run longest transaction s']} s, case rows held at most "
        f"{result['first run longest case rows held s']} s, a case writer waited at most "
        f"{result['first run case writer longest wait s']} s",
    )
    common.report("campaigns", result)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
