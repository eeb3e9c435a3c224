"""Guard metrics at production volume: time to compute the snapshot and to serve ``GET /api/v1/metrics/``.

    python -m bench.metrics [--cases 1000000] [--runs 5] [--scale S]

Seeds (set-based SQL) a dedicated database, ``docket_bench_metrics`` on the
configured PostgreSQL server (``bench.common.setup``), with ``--cases`` cases spread over the last 90
days across the six shipped threat classes, ids in time order as appends
make them: a fifth of the last two weeks' cases and 0.5% of older ones still
open, in review or escalated (about 6%), the rest decided, a fifth of those
automated on the classes that allow automation, 2% of human decisions holdout
samples; 3% of violation decisions appealed, 5% of human decisions
QA-reviewed, the last 50,000 violation decisions delivered (0.5% failed).
The seed is kept between runs (re-seeded when the size differs). Then it
times, separately:

- ``compute_snapshot`` (no cache): the aggregate queries themselves, cleared and
  restricted views;
- the endpoint through the full Django/DRF stack, cold (cache miss) and warm
  (cache hit), as a moderator.
"""

import statistics
import sys
import time

from bench import common

import psycopg
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from casework.models import Case
from docket.accounts import token_for
from oversight import metrics
from oversight.metrics import compute_snapshot
from reviews.accounts import user_upsert

DB_NAME = "docket_bench_metrics"
REVIEWERS = 50


SEED_SQL = """
TRUNCATE casework_subject, casework_case, reviews_decision, appeals_appeal, reviews_qualityreview,
         reviews_enforcement, reviews_strike, reviews_relabelitem, casework_queuetally CASCADE;

INSERT INTO casework_subject (id, kind, external_id, reach, attributes, created_at, updated_at)
SELECT i, 'account', 'bench-u-' || i, 100, '{}'::jsonb, now(), now() FROM generate_series(1, %(n)s) i;
SELECT setval(pg_get_serial_sequence('casework_subject', 'id'), %(n)s);

-- classes[k]: (id, queue id, sla seconds, severity, harm, automated action or NULL)
CREATE TEMP TABLE bench_class AS
SELECT row_number() OVER (ORDER BY tc.slug) - 1 AS k, tc.id, q.id AS queue_id, tc.sla_seconds, tc.severity,
       tc.harm_weight, NULLIF(tc.auto_action, '') AS auto_action, pv.id AS version_id
FROM policies_threatclass tc
JOIN casework_queue_threat_classes qt ON qt.threatclass_id = tc.id
JOIN casework_queue q ON q.id = qt.queue_id
JOIN policies_policy p ON p.threat_class_id = tc.id
JOIN policies_policyversion pv ON pv.policy_id = p.id AND pv.status = 'active';

-- Ids follow time, as appends do; the backlog is mostly recent (a fifth of the last two weeks, a few stragglers).
CREATE TEMP TABLE bench_seed AS
SELECT row_number() OVER (ORDER BY t.created_at) AS i, c.id AS class_id, c.queue_id, c.sla_seconds, c.severity,
       c.harm_weight, c.auto_action, c.version_id, t.created_at, t.r,
       t.created_at + random() * 1.3 * c.sla_seconds * interval '1 second' AS acted_at,
       (t.created_at > now() - interval '14 days' AND t.r < 0.2) OR t.r < 0.005 AS active
FROM (SELECT g, now() - random() * interval '90 days' AS created_at, random() AS r
        FROM generate_series(1, %(n)s) g) t
JOIN bench_class c ON c.k = t.g %% 6;

INSERT INTO casework_case (id, subject_id, threat_class_id, queue_id, status, severity, harm_weight, reach,
    signal_count, reporter_count, signal_strength, reporter_weight, velocity, brigading, holdout, legal_hold,
    first_signal_at, last_signal_at, sla_due_at, priority, priority_breakdown, created_at, first_action_at,
    decided_at, closed_at, updated_at)
SELECT i, i, class_id, queue_id,
       CASE WHEN active AND i %% 10 < 7 THEN 'open' WHEN active AND i %% 10 < 9 THEN 'in_review'
            WHEN active THEN 'escalated' WHEN i %% 5 < 3 THEN 'decided' ELSE 'closed' END,
       severity, harm_weight, 100, 1, 1, 0.5, 0.5, 0, false, false, false,
       created_at, created_at, created_at + sla_seconds * interval '1 second', random(), '{}'::jsonb, created_at,
       CASE WHEN NOT active OR i %% 10 = 9 THEN least(acted_at, now()) END,
       CASE WHEN NOT active THEN least(acted_at, now()) END,
       CASE WHEN NOT active AND i %% 5 >= 3 THEN now() END,
       now()
FROM bench_seed ORDER BY i;
SELECT setval(pg_get_serial_sequence('casework_case', 'id'), %(n)s);

INSERT INTO reviews_decision (id, case_id, reviewer_id, action, rule, policy_version_id, rationale, automated, holdout,
    qa_sampled, relabel, overturned, overturned_at, created_at)
SELECT s.i, s.i, CASE WHEN s.automated THEN NULL ELSE rv.id END,
       CASE WHEN s.automated THEN s.auto_action WHEN s.h %% 10 < 8 THEN 'remove' ELSE 'no_violation' END,
       'R-1', s.version_id, '', s.automated, NOT s.automated AND s.h %% 50 = 7, false, false, s.h %% 100 = 3,
       CASE WHEN s.h %% 100 = 3 THEN c.decided_at END, c.decided_at
FROM (SELECT *, auto_action IS NOT NULL AND r >= 0.8 AS automated, abs(hashtext(i::text)) AS h FROM bench_seed
       WHERE NOT active) s
JOIN casework_case c ON c.id = s.i
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM reviews_reviewer) rv ON rv.k = s.i %% %(reviewers)s
ORDER BY s.i;
SELECT setval(pg_get_serial_sequence('reviews_decision', 'id'), %(n)s);

INSERT INTO appeals_appeal (decision_id, appellant, statement, language, received_at, deadline, status, outcome,
    new_action, rationale, resolved_by_id, resolved_at)
SELECT d.id, 'appellant-' || d.id, '', 'en', d.created_at + interval '1 hour', d.created_at + interval '4 days',
       CASE WHEN d.id %% 5 < 2 THEN 'resolved' ELSE 'received' END,
       CASE WHEN d.id %% 5 = 0 THEN 'overturned' WHEN d.id %% 5 = 1 THEN 'upheld' ELSE '' END,
       '', '', CASE WHEN d.id %% 5 < 2 THEN (SELECT max(id) FROM reviews_reviewer) END,
       CASE WHEN d.id %% 5 < 2 THEN d.created_at + interval '2 hours' END
FROM reviews_decision d WHERE d.id %% 100 < 3 AND d.action <> 'no_violation';

INSERT INTO reviews_qualityreview (decision_id, reviewer_id, status, action, rule, agrees, created_at, completed_at)
SELECT d.id, (SELECT max(id) FROM reviews_reviewer), 'done', d.action, d.rule, d.id %% 10 <> 0, d.created_at,
       d.created_at + interval '1 hour'
FROM reviews_decision d WHERE NOT d.automated AND d.id %% 20 = 3;

INSERT INTO reviews_enforcement (public_id, decision_id, kind, action, payload, status, attempts, next_attempt_at,
    last_error, created_at, delivered_at)
SELECT gen_random_uuid(), d.id, 'enforce', d.action, '{}'::jsonb,
       CASE WHEN d.id %% 200 = 0 THEN 'failed' WHEN d.id %% 50 = 1 THEN 'pending' ELSE 'delivered' END,
       CASE WHEN d.id %% 200 = 0 THEN 8 ELSE 1 END, d.created_at, '', d.created_at,
       CASE WHEN d.id %% 200 <> 0 AND d.id %% 50 <> 1 THEN d.created_at END
FROM (SELECT * FROM reviews_decision WHERE action <> 'no_violation' ORDER BY id DESC LIMIT 50000) d;

ANALYZE;
"""


def _seed(n):
    if Case.objects.count() == n:
        print(f"seed: reusing {n:,} cases in {DB_NAME}")
        return
    for k in range(REVIEWERS):
        user_upsert(username=f"bench-mod-{k}", role_names=["moderator"])
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(SEED_SQL, {"n": n, "reviewers": REVIEWERS})
    print(f"seed: {n:,} cases and their decisions, appeals, QA and deliveries in {time.perf_counter() - started:.1f} s")


def _report(label, times):
    print(f"{label:<48} median {statistics.median(times):8.1f} ms   min {min(times):8.1f}   max {max(times):8.1f}")


def _replay(queries, runs):
    """Milliseconds to run the snapshot's own queries on a bare psycopg connection."""

    times = []
    with psycopg.connect(common.conninfo(), autocommit=True) as conn, conn.cursor() as cur:
        for _ in range(runs):
            started = time.perf_counter()
            for sql in queries:
                cur.execute(sql.encode())
                if cur.description:
                    cur.fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv=None):
    args = common.parser(__doc__, cases=1_000_000, runs=5).parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=10_000)
    common.setup(database=DB_NAME)
    _seed(cases)

    open_cases = Case.objects.filter(status__in=("open", "in_review", "escalated")).count()
    print(f"data: {Case.objects.count():,} cases ({open_cases:,} awaiting a decision)")

    uncleared = common.timed(lambda: compute_snapshot(clearances=frozenset()), args.runs)
    _report("compute_snapshot, no clearances (uncached)", uncleared)
    cleared = frozenset({"csam", "cib"})
    _report(
        "compute_snapshot, csam+cib clearances (uncached)",
        common.timed(lambda: compute_snapshot(clearances=cleared), args.runs),
    )
    with CaptureQueriesContext(connection) as queries:
        compute_snapshot(clearances=frozenset())
    n_queries = len(queries)  # now: a request resets the connection's query log
    print(f"queries per snapshot: {n_queries}")
    for q in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:2]:
        common.explain(f"metrics aggregate ({float(q['time']) * 1000:.0f} ms)", q["sql"], full_scan=True)
    bare = _replay([q["sql"] for q in queries.captured_queries], args.runs)
    _report("the same queries on a bare connection", bare)

    user = user_upsert(username="bench-viewer", role_names=["moderator"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")

    def cold():
        # Only this snapshot's key: the cache shares its Redis with the broker.
        cache.delete(metrics._cache_key(frozenset()))
        assert client.get("/api/v1/metrics/").status_code == 200

    def warm():
        assert client.get("/api/v1/metrics/").status_code == 200

    cold_times = common.timed(cold, args.runs)
    _report("GET /api/v1/metrics/ cold (cache miss)", cold_times)
    warm()
    warm_times = common.timed(warm, max(args.runs, 20))
    _report("GET /api/v1/metrics/ warm (cache hit)", warm_times)
    common.compare(
        f"metrics endpoint, {cases:,} cases (cache miss)",
        docket=round(common.median(cold_times), 1),
        bare=round(common.median(bare), 1),
        unit="ms",
        higher_is_better=False,
        note=f"cache hit: {common.median(warm_times):.1f} ms median; bare = the snapshot's "
        f"{n_queries} queries replayed on a plain connection",
    )
    common.report(
        "metrics",
        {
            "cases": cases,
            "awaiting a decision": open_cases,
            "compute_snapshot ms (median)": round(common.median(uncleared), 1),
            "queries per snapshot": n_queries,
            "bare replay of those queries ms (median)": round(common.median(bare), 1),
            "GET /api/v1/metrics/ cold ms (median)": round(common.median(cold_times), 1),
            "GET /api/v1/metrics/ warm ms (median)": round(common.median(warm_times), 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
