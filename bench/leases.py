"""Lease expiry sweep: ``reviews.services.leases_expire`` beside one bare statement doing the same writes.

    python -m bench.leases [--cases 1000000] [--expired 20000] [--live 5000] [--history 250000] [--runs 5] [--scale S]

On the shared seed, ``--expired`` cases are in review under assignments whose
lease ran out and ``--live`` more under leases still running, beside
``--history`` completed assignments. Each run ends
every expired assignment, reopens its case and writes its ``lease_expired``
event, inside a transaction that is then rolled back, so every run (Docket's
and the bare statement's, alternating) sees the same rows:

- ``docket``: ``leases_expire`` (one statement: a locking SELECT ... SKIP LOCKED
  feeding two UPDATEs and the INSERT of events);
- ``bare``: one statement (UPDATE ... RETURNING into UPDATE into INSERT), no locks taken
  beyond the updates' own.
"""

import sys
import time

from bench import common

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from docket.batches import BATCH_SIZE
from reviews.services import claims, leases_expire

BARE_SQL = """
WITH expired AS (
    UPDATE reviews_assignment SET state = 'expired', ended_at = %(now)s
     WHERE state = 'active' AND lease_expires_at <= %(now)s
    RETURNING id, case_id
), reopened AS (
    UPDATE casework_case c SET status = 'open', updated_at = %(now)s
      FROM expired e WHERE c.id = e.case_id AND c.status = 'in_review'
    RETURNING c.id, e.id AS assignment_id
)
INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
SELECT id, %(now)s, NULL, 'system', 'lease_expired',
       jsonb_build_object('from', 'in_review', 'to', 'open', 'assignment', assignment_id)
  FROM reopened
"""

SEED_SQL = """
-- History: the assignments of cases already reviewed, which the sweep must not wade through.
INSERT INTO reviews_assignment (case_id, reviewer_id, state, graphic, claimed_at, lease_expires_at, ended_at)
SELECT c.id, r.ids[1 + c.id %% array_length(r.ids, 1)], 'completed', false, now() - interval '2 days',
       now() - interval '2 days' + interval '15 minutes', now() - interval '2 days' + interval '5 minutes'
  FROM (SELECT id FROM casework_case WHERE id %% 7 <> 3 ORDER BY id LIMIT %(history)s) c
 CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM reviews_reviewer
              WHERE user_id IN (SELECT id FROM auth_user WHERE username LIKE 'bench-lease-%%')) r;
INSERT INTO reviews_assignment (case_id, reviewer_id, state, graphic, claimed_at, lease_expires_at)
SELECT c.id, r.ids[1 + c.id %% array_length(r.ids, 1)], 'active', false,
       now() - interval '1 hour',
       CASE WHEN c.n <= %(expired)s THEN now() - interval '1 minute' * (1 + c.n %% 40)
            ELSE now() + interval '10 minutes' END
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM casework_case
         WHERE status = 'open' AND id %% 7 = 3 ORDER BY id LIMIT %(total)s) c
 CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM reviews_reviewer
              WHERE user_id IN (SELECT id FROM auth_user WHERE username LIKE 'bench-lease-%%')) r;
UPDATE casework_case SET status = 'in_review'
 WHERE id IN (SELECT case_id FROM reviews_assignment WHERE state = 'active');
"""


class _Rollback(Exception):
    pass


def main(argv=None):
    args = common.parser(__doc__, cases=1_000_000, expired=20_000, live=5_000, history=250_000, runs=5).parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    expired = common.scaled(args.expired, args.scale, minimum=100)
    live = common.scaled(args.live, args.scale, minimum=10)
    history = common.scaled(args.history, args.scale, minimum=100)
    common.scale_setup(cases)

    common.reviewers(50, prefix="bench-lease-", max_active=1000)
    with connection.cursor() as cur:
        cur.execute(SEED_SQL, {"expired": expired, "total": expired + live, "history": history})
        cur.execute("VACUUM ANALYZE reviews_assignment")
        cur.execute("VACUUM ANALYZE casework_case")
        cur.execute(
            "SELECT count(*) FILTER (WHERE lease_expires_at <= now()), count(*) FROM reviews_assignment"
            " WHERE state = 'active'"
        )
        due, active = cur.fetchone()
    print(f"{active:,} active assignments ({history:,} past ones), {due:,} past their lease, over {cases:,} cases")
    now = timezone.now()
    common.explain(
        "lease sweep (docket)",
        claims._LEASES_EXPIRE_SQL,
        {"now": now, "system": "system", "reopen": True, "kind": "lease_expired", "detail": "{}", "batch": BATCH_SIZE},
    )
    common.explain("lease sweep: bare statement", BARE_SQL, {"now": now})

    def docket_run():
        try:
            with transaction.atomic():
                started = time.perf_counter()
                n = leases_expire(now=now)
                took = time.perf_counter() - started
                raise _Rollback
        except _Rollback:
            pass
        return n, took

    bare_conn = psycopg.connect(common.conninfo())

    def bare_run():
        with bare_conn.cursor() as cur:
            started = time.perf_counter()
            cur.execute(BARE_SQL, {"now": now})
            took = time.perf_counter() - started
            n = cur.rowcount
        bare_conn.rollback()
        return n, took

    times = {"docket": [], "bare": []}
    for run in range(args.runs):
        for side in ("docket", "bare") if run % 2 == 0 else ("bare", "docket"):
            n, took = docket_run() if side == "docket" else bare_run()
            if n != due:
                raise SystemExit(f"{side} expired {n} leases, expected {due}")
            times[side].append(took * 1000)
        with connection.cursor() as cur:  # the rolled-back versions are dead rows: clear them between runs
            cur.execute("VACUUM reviews_assignment")
            cur.execute("VACUUM casework_case")
    bare_conn.close()
    docket_ms, bare_ms = common.median(times["docket"]), common.median(times["bare"])
    common.compare(
        f"lease expiry sweep ({due:,} expired)",
        docket=round(docket_ms, 1),
        bare=round(bare_ms, 1),
        unit="ms",
        higher_is_better=False,
    )
    common.report(
        "leases",
        {
            "active assignments": active,
            "expired leases per sweep": due,
            "docket leases_expire ms (median)": round(docket_ms, 1),
            "bare statement ms (median)": round(bare_ms, 1),
            "docket leases/s": round(due / docket_ms * 1000, 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
