"""Full reprioritisation of every open case: ``cases_reprioritise_all`` beside one bare UPDATE of the same formula.

    python -m bench.reprioritise [--cases 1000000] [--runs 1] [--scale S]

On the shared seed (``bench.common.scale_setup``: open cases over the six
classes with their subjects, reporters and signals), at one fixed ``now``:

- ``bare``: a single ``UPDATE`` computing the same inputs from the signals and
  the same priority and breakdown (the formula of ``casework.priority``),
  without the sweep's ``ORDER BY id ... FOR UPDATE SKIP LOCKED`` target (which
  keeps it from overwriting cases intake is changing at that moment);
- ``docket``: ``casework.priority.cases_reprioritise_all``, the beat sweep.

Each run starts from a vacuumed table; the two results are compared row by
row (they must agree exactly). Target: Docket under 2x the bare UPDATE.
"""

import sys
import time

from bench import common


def _bare_sql():
    from casework import priority

    sql = priority._REFRESH_SQL.format(extra="")
    locking = "    ORDER BY c.id\n    FOR UPDATE OF c SKIP LOCKED\n"
    if locking not in sql:
        raise SystemExit("casework.priority's target CTE changed: update bench/reprioritise.py's bare statement")
    # MATERIALIZED keeps the plan shape; only the lock and its ordering go.
    return sql.replace(locking, "")


def _vacuum():
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE casework_case")


def main(argv=None):
    args = common.parser(__doc__, cases=1_000_000, runs=1).parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    common.scale_setup(cases)
    import psycopg
    from django.db import connection
    from django.utils import timezone

    from casework import priority

    now = timezone.now()
    params = priority._params(now)
    bare_sql = _bare_sql()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM casework_case WHERE status IN ('open', 'in_review', 'escalated')")
        (active,) = cur.fetchone()
        cur.execute("SELECT count(*) FROM casework_signal")
        (signals,) = cur.fetchone()
    print(f"{active:,} active cases, {signals:,} signals")
    common.explain(
        "reprioritise all (docket)", priority._REFRESH_SQL.format(extra=""), params, analyze=False, full_scan=True
    )

    bare_times, docket_times = [], []
    mismatched = None
    for run in range(args.runs):
        for side in ("bare", "docket") if run % 2 == 0 else ("docket", "bare"):
            _vacuum()
            if side == "bare":
                with psycopg.connect(common.conninfo()) as conn, conn.cursor() as cur:
                    started = time.perf_counter()
                    # Django's placeholders are psycopg's: the same statement, the same parameters.
                    cur.execute(bare_sql, params)
                    conn.commit()
                    bare_times.append(time.perf_counter() - started)
                    updated = cur.rowcount
                    cur.execute("DROP TABLE IF EXISTS bench_bare_priority")
                    cur.execute(
                        "CREATE TABLE bench_bare_priority AS SELECT id, priority, priority_breakdown FROM casework_case"
                        " WHERE status IN ('open', 'in_review', 'escalated')"
                    )
                    conn.commit()
            else:
                started = time.perf_counter()
                updated = priority.cases_reprioritise_all(now=now)
                docket_times.append(time.perf_counter() - started)
            took = (bare_times if side == "bare" else docket_times)[-1]
            print(f"run {run + 1} {side:<6} {updated:,} cases in {took:.2f} s", flush=True)
            if updated != active:
                raise SystemExit(f"{side} updated {updated:,} cases, expected {active:,}")
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM casework_case c JOIN bench_bare_priority b ON b.id = c.id"
                " WHERE c.priority <> b.priority OR c.priority_breakdown <> b.priority_breakdown"
            )
            mismatched = cur.fetchone()[0]
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_bare_priority")

    bare, docket = min(bare_times), min(docket_times)
    common.compare(
        f"reprioritise all {active:,} open cases",
        docket=round(docket, 2),
        bare=round(bare, 2),
        unit="s",
        higher_is_better=False,
        target="< 2x bare (>= 50%)",
        met=docket < 2 * bare,
    )
    common.report(
        "reprioritise",
        {
            "active cases": active,
            "signals": signals,
            "docket cases_reprioritise_all s": round(docket, 2),
            "bare UPDATE (same formula, no row locks) s": round(bare, 2),
            "docket / bare": round(docket / bare, 2),
            "docket cases/s": round(active / docket, 1),
            "rows where docket and bare disagree": mismatched,
        },
    )
    return 0 if mismatched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
