"""Read paths at production size: the moderator's queue page and home, and the case list API with filters.

    python -m bench.pages [--cases 1000000] [--requests 80] [--scale S]

On the shared seed (``--cases`` open cases; a few hundred in review), each
page or API call is requested ``--requests`` times through Django's full
stack in process (middleware, session or token auth, the view, the
template or serializer): the server time, without a socket. Printed per
path: p50/p99 ms, the query count at two page sizes (it must not grow with
the rows shown), and the bare-SQL floor: the very queries the request ran,
replayed on a plain psycopg connection. The slowest query of each path is
shown with ``EXPLAIN ANALYZE``.

Targets: queue page and case list API p99 under 100 ms, constant query count.
"""

import sys
import time

from bench import common

import psycopg
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from docket.accounts import token_for
from reviews.accounts import user_upsert
from reviews.models import Reviewer

IN_REVIEW = 300  # cases held by the bench moderators, so holders, assignments and assigned_to have rows


def _paths(moderator):
    # (label, client, url, target applies)
    return [
        ("UI queue page /queues/spam/", "senior", "/queues/spam/", True),
        ("UI queue page /queues/csam/ (restricted, small)", "senior", "/queues/csam/", True),
        ("UI queue page, last page (oldest first)", "senior", "/queues/spam/?sort=oldest&page=100", True),
        ("UI queue page ?sla=past (none in spam)", "senior", "/queues/spam/?sla=past", True),
        ("UI queue page ?sla=soon&status=open", "senior", "/queues/spam/?sla=soon&status=open", True),
        ("UI queue page csam ?sla=past&sort=oldest", "senior", "/queues/csam/?sla=past&sort=oldest", True),
        (
            "UI queue page ?threat_class=spam&sort=sla&page=20",
            "senior",
            "/queues/spam/?threat_class=spam&sort=sla&page=20",
            True,
        ),
        ("UI home /", "moderator", "/", False),
        ("API cases (default order)", "api", "/api/v1/cases/", True),
        ("API cases ?status=open&queue=spam", "api", "/api/v1/cases/?status=open&queue=spam", True),
        (
            "API cases ?threat_class=harassment&ordering=-created_at",
            "api",
            "/api/v1/cases/?threat_class=harassment&ordering=-created_at",
            True,
        ),
        (
            "API cases ?min_priority=..&ordering=sla_due_at",
            "api",
            "/api/v1/cases/?min_priority=50&ordering=sla_due_at",
            True,
        ),
        (f"API cases ?assigned_to={moderator}", "api", f"/api/v1/cases/?assigned_to={moderator}", True),
        ("API cases ?subject=bench-u-77", "api", "/api/v1/cases/?subject=bench-u-77", True),
        ("API queues overview", "api", "/api/v1/queues/", False),
    ]


def _hold_cases(reviewer_ids):
    """Put ``IN_REVIEW`` spam cases under active assignments (set-based)."""

    with connection.cursor() as cur:
        cur.execute(
            """
            WITH picked AS (
                SELECT id, row_number() OVER (ORDER BY id) AS n FROM casework_case
                 WHERE status = 'open' AND queue_id = (SELECT id FROM casework_queue WHERE slug = 'spam')
                 ORDER BY id LIMIT %(n)s
            ), held AS (
                INSERT INTO reviews_assignment (case_id, reviewer_id, state, graphic, claimed_at, lease_expires_at)
                SELECT id, (%(reviewers)s::bigint[])[1 + n %% array_length(%(reviewers)s::bigint[], 1)], 'active',
                       false, now(), now() + interval '15 minutes'
                  FROM picked
                RETURNING case_id
            )
            UPDATE casework_case SET status = 'in_review' WHERE id IN (SELECT case_id FROM held)
            """,
            {"n": IN_REVIEW, "reviewers": reviewer_ids},
        )


def _replay(queries, runs):
    """Milliseconds to run the request's own queries on a bare psycopg connection, ``runs`` times."""

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
    args = common.parser(__doc__, cases=1_000_000, requests=80).parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    common.scale_setup(cases)

    mods = common.reviewers(10, prefix="bench-page-mod-", queues=("spam", "harassment"), max_active=100)
    senior = user_upsert(
        username="bench-page-senior",
        role_names=["senior"],
        queues=["spam", "csam", "escalations"],
        clearances=["csam", "cib"],
    )
    _hold_cases(list(Reviewer.objects.filter(user__in=mods).values_list("id", flat=True)))
    with connection.cursor() as cur:
        cur.execute("ANALYZE casework_case")
        cur.execute("ANALYZE reviews_assignment")
        cur.execute("SELECT count(*) FROM casework_case")
        (total,) = cur.fetchone()
    print(f"{total:,} cases, {IN_REVIEW} in review; {args.requests} requests per path")

    clients = {"senior": Client(), "moderator": Client(), "api": APIClient()}
    clients["senior"].force_login(senior)
    clients["moderator"].force_login(mods[0])
    clients["api"].credentials(HTTP_AUTHORIZATION=f"Token {token_for(mods[0])}")

    figures = {}
    for label, who, url, targeted in _paths(mods[0].username):
        client = clients[who]

        def get(url=url, client=client):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {response.content[:300]!r}")
            return response

        for _ in range(3):  # warm: connection, caches, plans
            get()
        times = common.timed(get, args.requests)
        with CaptureQueriesContext(connection) as captured:
            get()
        # Read now: the next request resets the connection's query log.
        queries = [q["sql"] for q in captured.captured_queries]
        slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
        sep = "&" if "?" in url else "?"
        with CaptureQueriesContext(connection) as bigger:
            get(url + (f"{sep}page_size=100" if "/api/" in url else ""))
        n_small, n_big = len(queries), len(bigger)
        bare = _replay(queries, args.requests)
        p50, p99 = common.pct(times, 50), common.pct(times, 99)
        bare50, bare99 = common.pct(bare, 50), common.pct(bare, 99)
        common.explain(label, slowest["sql"])
        constant = n_small == n_big or "/api/" not in url
        row = f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, {n_small} queries"
        if "/api/" in url:
            row += f" ({n_big} at page_size=100)"
        print(row + f"; bare SQL p50 {bare50:.1f} ms, p99 {bare99:.1f} ms", flush=True)
        common.compare(
            f"{label} p99",
            docket=round(p99, 1),
            bare=round(bare99, 1),
            unit="ms",
            higher_is_better=False,
            target="p99 < 100 ms, constant queries" if targeted else "",
            met=(p99 < 100 and constant) if targeted else None,
            note="" if constant else f"query count grows with page size: {n_small} -> {n_big}",
        )
        figures[f"{label} p50/p99 ms"] = f"{p50:.1f} / {p99:.1f}"
        figures[f"{label} queries"] = n_small if "/api/" not in url else f"{n_small} / {n_big}"
        figures[f"{label} bare SQL p50/p99 ms"] = f"{bare50:.1f} / {bare99:.1f}"
    common.report("pages", {"cases": total, **figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
