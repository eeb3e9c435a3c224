"""Shared benchmark plumbing: dedicated databases, the 1M-case seed, timing, EXPLAIN, reporting.

    from bench import common
    args = common.parser(__doc__, cases=1_000_000).parse_args(argv)   # --scale multiplies sizes
    common.scale_setup(common.scaled(args.cases, args.scale))          # the shared seeded database
    ...
    common.compare("claim + decide @16", docket=120.0, bare=200.0, unit="cycles/s", target=">= 50%")
    common.report("claim", {"service cycles/s @16": 120.0, ...})

Importing this module sets Django up for a benchmark (``bench.boot``: the
settings, and Redis database 15 so task messages never reach a development
worker), so a benchmark imports models and services at its top, after
``from bench import common``. ``setup`` then points Django at a database of its
own on the configured PostgreSQL server (``DATABASE_URL``, else the embedded
one), created and migrated if needed. Benchmarks never touch the ``docket``
database nor any test database.

``scale_setup`` is ``setup`` for ``docket_bench_scale``, the database the
claim, reprioritisation, lease and page benchmarks share: ``cases`` open cases
seeded with set-based SQL (subjects, reporters, signals, cases over the six
shipped classes), kept between runs and reset cheaply (reviews rows
truncated, decided cases reopened) when the size matches.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from contextlib import contextmanager
from urllib.parse import quote

from bench.boot import BENCH_REDIS_DB as BENCH_REDIS_DB  # first: sets Django up; both names used by benchmarks
from bench.boot import redis_url as redis_url

from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections, transaction

from appeals.services import appeal_file
from casework.priority import cases_reprioritise_due
from policies.models import SignalSource
from reviews.accounts import user_upsert
from reviews.services import decision_make, queue_claim
from reviews.sla import cases_escalate_sla_breaches

BENCH_DATABASE = os.environ.get("DOCKET_BENCH_DATABASE", "docket_bench")
SCALE_DATABASE = os.environ.get("DOCKET_BENCH_SCALE_DATABASE", "docket_bench_scale")
RESULT_FILE_ENV = "DOCKET_BENCH_RESULT"
COMPARE_KEY = "__compare__"
EXPLAIN_KEY = "__explain__"


# --- arguments ------------------------------------------------------------------------


def parser(doc: str, **sizes) -> argparse.ArgumentParser:
    """An argument parser with ``--scale`` plus one ``--<size>`` option per keyword (its full-scale default)."""
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="multiply every size (0.1 for a quick run)")
    for name, default in sizes.items():
        p.add_argument(
            f"--{name.replace('_', '-')}", type=type(default), default=default, help=f"at scale 1: {default}"
        )
    return p


def scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, int(round(n * scale)))


# --- databases ------------------------------------------------------------------------


def setup(*, database: str = BENCH_DATABASE, fresh: bool = False) -> None:
    """Point Django at the benchmark database ``database`` (``fresh`` drops it first) and migrate it."""
    if not database.startswith("docket_bench"):
        raise SystemExit(f"refusing to benchmark in {database!r}: bench databases are named docket_bench*")
    with connection.cursor() as cur:  # autocommit, as CREATE DATABASE needs
        if fresh:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{database}"')
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = database
    connections["default"].settings_dict["NAME"] = database
    os.environ["DATABASE_URL"] = conninfo()  # child processes (gunicorn, forked drivers) follow
    call_command("migrate", verbosity=0)


def conninfo() -> str:
    """A libpq URL of the benchmark database, for bare-SQL comparisons on their own connections."""

    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def insert_sql(model, explicit: dict) -> tuple[str, str, list]:
    """``INSERT ... SELECT`` columns for ``model``: explicit SQL expressions, else the fields' defaults."""

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


# --- the shared 1M-case seed ------------------------------------------------------------

SOURCES = [
    ("spam-classifier", "classifier", 0.8),
    ("ato-rules", "rule", 0.9),
    ("csam-hashes", "hash_match", 1.0),
]
# Case i belongs to the class of slot i % 20: spam 60%, harassment 15%, payment fraud 10%, the rest 5% each.
CLASS_SLOTS = ["spam"] * 12 + ["harassment"] * 3 + ["payment_fraud"] * 2 + ["ato", "cib", "csam"]

_SEED_SQL = """
TRUNCATE casework_caseevent, reviews_qualityreview, reviews_strike, reviews_enforcement, reviews_decision,
         reviews_assignment, appeals_appeal, casework_signal, casework_case, casework_subjectattribute,
         casework_subject, casework_reporter, casework_campaign, casework_queuetally RESTART IDENTITY CASCADE;

CREATE TEMP TABLE bench_slot AS
SELECT s.slot1 - 1 AS slot, tc.id AS class_id, tc.slug, q.queue_id, tc.severity, tc.harm_weight, tc.sla_seconds,
       tc.restricted OR tc.legal_escalation AS restricted
  FROM unnest(%(slots)s::text[]) WITH ORDINALITY AS s(slug, slot1)
  JOIN policies_threatclass tc ON tc.slug = s.slug
  JOIN LATERAL (SELECT min(queue_id) AS queue_id FROM casework_queue_threat_classes qt
                 WHERE qt.threatclass_id = tc.id) q ON true;

INSERT INTO casework_reporter (id, external_id, first_seen_at, reports_decided, reports_upheld)
SELECT i, 'bench-rep-' || i, now() - (i %% 90) * interval '1 day' - interval '1 hour', i %% 23, (i %% 23) * (i %% 7) / 7
  FROM generate_series(1, %(reporters)s) i;
SELECT setval(pg_get_serial_sequence('casework_reporter', 'id'), %(reporters)s);
-- Each reporter's record lies on one unrestricted class, so it weighs every case they report.
INSERT INTO casework_reporterclassrecord (reporter_id, threat_class_id, reports_decided, reports_upheld)
SELECT id, (SELECT min(id) FROM policies_threatclass WHERE NOT restricted), reports_decided, reports_upheld
  FROM casework_reporter;

INSERT INTO casework_subject (id, kind, external_id, reach, attributes, created_at, updated_at)
SELECT i, 'account', 'bench-u-' || i, floor(exp(random() * 14))::bigint, '{}'::jsonb, now(), now()
  FROM generate_series(1, %(n)s) i;
SELECT setval(pg_get_serial_sequence('casework_subject', 'id'), %(n)s);

-- A case's signals: one first signal (a user report for harassment, payment fraud, CIB and half the
-- spam, else its class's machine source) and, for every fourth case, two more user reports.
CREATE TEMP TABLE bench_plan AS
SELECT g.i, b.*, g.t,
       b.slug IN ('harassment', 'payment_fraud', 'cib') OR (b.slug = 'spam' AND g.i %% 2 = 0) AS first_is_report,
       CASE WHEN g.i %% 4 = 0 THEN 2 ELSE 0 END AS extra
  FROM (SELECT i, now() - interval '5 minutes' - random() * interval '48 hours' AS t
          FROM generate_series(1, %(n)s) i) g
  JOIN bench_slot b ON b.slot = g.i %% 20;

INSERT INTO casework_case (id, subject_id, threat_class_id, queue_id, status, severity, harm_weight, reach,
    signal_count, reporter_count, signal_strength, reporter_weight, velocity, brigading, holdout, legal_hold,
    first_signal_at, last_signal_at, sla_due_at, priority, priority_breakdown, created_at, updated_at,
    rank, rank_tier, rank_due_at)
SELECT p.i, p.i, p.class_id, p.queue_id, 'open', p.severity, p.harm_weight, s.reach,
       1 + p.extra, p.first_is_report::int + p.extra, 0, 0, 0, false, false, false,
       p.t, p.t + p.extra * interval '1 minute', p.sla_due_at,
       p.priority, '{}'::jsonb, p.t, now(),
       -- ranked as the seed's random priority, in its tier; due again at its SLA (casework.priority)
       ln(1 + p.priority), CASE WHEN p.restricted THEN 2 ELSE 0 END + CASE WHEN p.sla_due_at <= now() THEN 1 ELSE 0 END,
       CASE WHEN p.sla_due_at > now() THEN p.sla_due_at END
  FROM (SELECT *, t + sla_seconds * interval '1 second' AS sla_due_at,
               round((random() * 100)::numeric, 3)::float8 AS priority FROM bench_plan) p
  JOIN casework_subject s ON s.id = p.i
 ORDER BY p.i;
SELECT setval(pg_get_serial_sequence('casework_case', 'id'), %(n)s);

INSERT INTO casework_signal (source_id, external_id, subject_id, threat_class_id, score, reporter_id, reason,
    occurred_at, received_at, disposition, case_id, holdout)
SELECT src.id, 'bench-s-' || p.i || '-' || j, p.i, p.class_id,
       CASE WHEN src.kind = 'user_report' THEN NULL ELSE round(random()::numeric, 3)::float8 END,
       CASE WHEN src.kind = 'user_report' THEN 1 + (p.i * 7 + j * 13) %% %(reporters)s END,
       '', p.t + j * interval '1 minute', p.t + j * interval '1 minute', 'queued', p.i, false
  FROM bench_plan p
 CROSS JOIN LATERAL generate_series(0, p.extra) j
  JOIN policies_signalsource src ON src.slug = CASE
       WHEN j > 0 OR p.first_is_report THEN 'user-reports'
       WHEN p.slug = 'spam' THEN 'spam-classifier'
       WHEN p.slug = 'ato' THEN 'ato-rules'
       ELSE 'csam-hashes' END
 ORDER BY p.i, j;

DROP TABLE bench_plan;
DROP TABLE bench_slot;
CREATE TABLE IF NOT EXISTS bench_seed (cases bigint NOT NULL, seeded_at timestamptz NOT NULL);
TRUNCATE bench_seed;
INSERT INTO bench_seed VALUES (%(n)s, now());
"""

# Back to the seeded state after a benchmark ran: no reviews rows, every case open again.
_RESET_SQL = """
TRUNCATE casework_caseevent, casework_rankmark, reviews_qualityreview, reviews_strike, reviews_enforcement,
         reviews_decision, reviews_assignment, appeals_appeal CASCADE;
-- Every signal a benchmark's intake stored, the ones it folded into seeded cases too: those cases come due
-- for a re-rank from their seeded signals (the catch-up below does it), so a run starts from the seed and
-- not from the velocity windows of the last hours' runs coming due while it measures.
WITH gone AS (
    DELETE FROM casework_signal WHERE id > (SELECT max(id) FROM casework_signal WHERE external_id LIKE 'bench-s-%%')
    RETURNING case_id
)
UPDATE casework_case SET rank_due_at = now()
 WHERE id IN (SELECT DISTINCT case_id FROM gone) AND id <= (SELECT cases FROM bench_seed);
DELETE FROM casework_case WHERE id > (SELECT cases FROM bench_seed);  -- cases a benchmark's intake opened
-- Back to waiting: escalated in the escalations queue (where the SLA escalation left them), open elsewhere.
UPDATE casework_case c SET status = w.status, decided_at = NULL, first_action_at = NULL, closed_at = NULL
  FROM (SELECT id, CASE WHEN slug = 'escalations' THEN 'escalated' ELSE 'open' END AS status
          FROM casework_queue) w
 WHERE w.id = c.queue_id AND c.status <> w.status;
UPDATE casework_reporter SET reports_decided = id %% 23, reports_upheld = (id %% 23) * (id %% 7) / 7
 WHERE reports_decided <> id %% 23 OR reports_upheld <> (id %% 23) * (id %% 7) / 7;
TRUNCATE casework_reporterclassrecord;
-- Each reporter's record lies on one unrestricted class, so it weighs every case they report.
INSERT INTO casework_reporterclassrecord (reporter_id, threat_class_id, reports_decided, reports_upheld)
SELECT id, (SELECT min(id) FROM policies_threatclass WHERE NOT restricted), reports_decided, reports_upheld
  FROM casework_reporter;
"""


def _periodic_catch_up() -> str:
    """Do now what the periodic jobs would have done while the seed sat unused: its steady state.

    A seed's cases age between runs as a live backlog does: high-severity cases pass their SLA
    (escalated to the seniors by ``escalate_sla_breaches``) and cases come due for a re-rank. In
    production the beat does that a minute at a time; on a seed it piles up, and a benchmark's first
    minutes would measure the jobs catching up (200,000 escalations on a new 1M seed) instead of
    the load they put on a running system. Done here by the jobs' own functions, unbudgeted.
    """
    escalated = reranked = 0
    while moved := cases_escalate_sla_breaches(batch=5000):
        escalated += moved
    while done := cases_reprioritise_due(batch=1000):
        reranked += done
    return f"caught up: {escalated:,} SLA escalations, {reranked:,} re-ranks"


def _seeded_cases(cur):
    cur.execute("SELECT to_regclass('bench_seed') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT cases FROM bench_seed")
    row = cur.fetchone()
    return row[0] if row else None


def scale_setup(cases: int, *, reseed: bool = False, reset: bool = True, database: str = SCALE_DATABASE) -> None:
    """Django on ``docket_bench_scale`` (or ``database``) holding ``cases`` open cases (seeded once, reset per run)."""
    setup(database=database)

    for slug, kind, trust in SOURCES:
        SignalSource.objects.update_or_create(slug=slug, defaults={"kind": kind, "trust": trust, "status": "healthy"})
    SignalSource.objects.filter(slug="user-reports").update(status="healthy")
    with connection.cursor() as cur:
        if reseed or _seeded_cases(cur) != cases:
            started = time.perf_counter()
            cur.execute(_SEED_SQL, {"n": cases, "reporters": max(1000, cases // 20), "slots": CLASS_SLOTS})
            caught_up = _periodic_catch_up()
            cur.execute("VACUUM ANALYZE casework_case")  # Django's connection autocommits here, as VACUUM needs
            cur.execute("VACUUM ANALYZE casework_signal")
            cur.execute("VACUUM ANALYZE casework_subject")  # the case trigger wrote every subject's class ids
            cur.execute("ANALYZE casework_reporter")
            print(
                f"seed: {cases:,} open cases with their subjects and signals in {time.perf_counter() - started:.1f} s"
                f" ({caught_up})"
            )
        elif reset:
            started = time.perf_counter()
            cur.execute(_RESET_SQL, {})
            caught_up = _periodic_catch_up()
            cur.execute("VACUUM ANALYZE casework_case")
            print(f"seed: reusing {cases:,} cases (reset in {time.perf_counter() - started:.1f} s; {caught_up})")


def reviewers(n: int, *, prefix: str = "bench-r", queues=("spam",), **fields) -> list:
    """``n`` moderators working ``queues`` (created or updated), as users."""

    return [
        user_upsert(username=f"{prefix}{i}", role_names=["moderator"], queues=list(queues), **fields) for i in range(n)
    ]


def appeals_filed(n: int, *, prefix: str = "bench") -> list[int]:
    """``n`` appeals waiting for the appeals staff: spam cases decided by ``<prefix>-decider``, each appealed."""

    decider = user_upsert(username=f"{prefix}-decider", role_names=["moderator"], queues=["spam"])
    platform = user_upsert(username=f"{prefix}-appeals-platform", role_names=["platform"])
    filed = []
    for i in range(n):
        held = queue_claim(reviewer=decider, queue_slug="spam")
        decision = decision_make(case_id=held.case_id, reviewer=decider, action="remove", rule="SP-1")
        filed.append(
            appeal_file(decision_id=decision.pk, appellant=f"bench-u-{i}", statement="Not spam.", actor=platform).pk
        )
    return filed


# --- timing ------------------------------------------------------------------------------


@contextmanager
def stopwatch():
    """``with stopwatch() as t: ...`` then ``t()`` is the elapsed seconds (frozen at exit)."""
    start = time.perf_counter()
    end = None

    def elapsed():
        return (end or time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def pct(values, p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(fn, runs: int) -> list[float]:
    """Milliseconds of ``runs`` calls of ``fn``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


# --- EXPLAIN -------------------------------------------------------------------------------

_explained: list[dict] = []
# Tables that grow with the platform: a sequential scan of one on a hot path is a finding.
BIG_TABLES = re.compile(
    r"Seq Scan on (casework_case|casework_signal|casework_caseevent|reviews_assignment|reviews_decision)\b"
)


_ACTUAL = re.compile(r"actual rows=(\d+) loops=(\d+)")
_REMOVED = re.compile(r"Rows Removed by Filter: (\d+)")


def _big_seq_scans(lines, threshold=10_000):
    """Sequential scans of a growing table that read ``threshold`` rows or more (all of them without ANALYZE)."""
    found = []
    for i, line in enumerate(lines):
        if not BIG_TABLES.search(line):
            continue
        actual = _ACTUAL.search(line)
        if actual is None:
            found.append(line.strip())
            continue
        loops = int(actual.group(2))
        read = int(actual.group(1)) * loops
        for following in lines[i + 1 : i + 4]:
            removed = _REMOVED.search(following)
            if removed:
                read += int(removed.group(1)) * loops
        if read >= threshold:
            found.append(f"{line.strip()} ({read:,} rows read)")
    return found


def wal_lsn(cur):
    """The server's current WAL position (``pg_current_wal_lsn``), to measure what a piece of work writes."""
    cur.execute("SELECT pg_current_wal_lsn()")
    return cur.fetchone()[0]


def wal_since(cur, start) -> int:
    """Bytes of WAL written on the server since ``start`` (a ``wal_lsn``)."""
    cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [start])
    return int(cur.fetchone()[0])


def explain(label: str, sql: str, params=None, *, analyze: bool = True, full_scan: bool = False) -> str:
    """Print the plan of ``sql`` (``EXPLAIN ANALYZE`` rolled back when it writes) and note seq scans on big tables.

    The plan goes into the report, so the indexes a hot path relies on are shown, not assumed.
    ``full_scan``: the work reads every row by design (a sweep), so a sequential scan is no finding.
    """

    options = "ANALYZE, BUFFERS, COSTS OFF, TIMING OFF" if analyze else "COSTS OFF"

    class _Rollback(Exception):
        pass

    lines: list[str] = []
    try:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute(f"EXPLAIN ({options}) {sql}", params)
                lines = [row[0] for row in cur.fetchall()]
            raise _Rollback  # an EXPLAIN ANALYZE of a write must not write
    except _Rollback:
        pass
    big_seq = [] if full_scan else _big_seq_scans(lines)
    print(f"-- EXPLAIN {label}")
    for line in lines:
        print(f"   {line}")
    _explained.append({"label": label, "plan": lines, "seq_scans_on_big_tables": big_seq})
    return "\n".join(lines)


# --- reporting -------------------------------------------------------------------------------

_compared: list[dict] = []


def compare(path: str, *, docket, bare, unit: str, higher_is_better: bool = True, target: str = "", met=None, note=""):
    """One row of the suite's table: Docket's figure beside the bare-SQL figure of the same work.

    ``ratio`` is always "Docket as a share of bare SQL" (throughput: docket/bare; times: bare/docket),
    so 100% means as fast as PostgreSQL alone.
    """
    ratio = None
    if docket and bare:
        ratio = docket / bare if higher_is_better else bare / docket
    _compared.append(
        {
            "path": path,
            "docket": docket,
            "bare": bare,
            "unit": unit,
            "ratio": ratio,
            "target": target,
            "met": met,
            "note": note,
        }
    )


def _shown(value):
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def report(name: str, metrics: dict) -> None:
    """Print the figures and hand them (with the compared rows and plans) to the runner."""
    width = max(len(k) for k in metrics) if metrics else 0
    print(f"== {name}")
    for key, value in metrics.items():
        print(f"   {key:<{width}}  {_shown(value)}")
    for row in _compared:
        ratio = f"{row['ratio']:.0%}" if row["ratio"] is not None else "-"
        print(f"   [{row['path']}] docket {_shown(row['docket'])} vs bare {_shown(row['bare'])} {row['unit']}: {ratio}")
    path = os.environ.get(RESULT_FILE_ENV)
    if path:
        existing = {}
        if os.path.exists(path):
            with open(path) as f:
                existing = json.load(f)
        existing[name] = metrics
        existing[COMPARE_KEY] = existing.get(COMPARE_KEY, []) + list(_compared)
        existing[EXPLAIN_KEY] = existing.get(EXPLAIN_KEY, []) + list(_explained)
        with open(path, "w") as f:
            json.dump(existing, f, indent=2, default=str)
    _compared.clear()
    _explained.clear()
