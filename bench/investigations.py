"""Investigations at production size: subject search and the subject page.

    python -m bench.investigations [--cases 1000000] [--attributes 5] [--requests 80] [--scale S]

On the shared seed (``--cases`` subjects, each with an open case and its
signals), ``--attributes`` attribute rows per subject are added set-based
(5,000,000 at scale 1): devices shared by three accounts, payment fingerprints
by a handful, addresses by four, a CDN address by one subject in twenty and
link domains by a thousand (both far above the campaign detection's max share,
so they link nothing), and a unique email hash; a fifth of the rows are older
than the campaign window. A few subjects get decisions and strikes.

Each search and subject page is requested ``--requests`` times through
Django's full stack in process (token auth, the view, the serializer, and the
access-log row a subject read writes). Printed per path: p50/p99 ms, the query
count, and the bare-SQL floor (the request's own queries replayed on a plain
psycopg connection); the slowest query of each path is shown with EXPLAIN
ANALYZE.

Targets: search p99 < 100 ms, subject page p99 < 150 ms, constant query count.
"""

import sys
import time

from bench import common
from bench.pages import _replay

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from casework.models import Case
from docket.accounts import token_for
from reviews.accounts import user_upsert
from reviews.services import case_assign, decision_make

_ATTRIBUTES_SQL = """
TRUNCATE casework_subjectattribute;
INSERT INTO casework_subjectattribute (subject_id, kind, value, seen_at)
SELECT s.i, a.kind, a.value,
       now() - CASE WHEN (s.i + a.n) %% 5 = 0 THEN interval '30 days' ELSE interval '1 hour' END
  FROM generate_series(1, %(n)s) s(i)
 CROSS JOIN LATERAL (VALUES
        (1, 'device', 'dev-' || (s.i / 3)),
        (2, 'payment', 'pay-' || (s.i %% (%(n)s / 5 + 1))),
        (3, 'ip', CASE WHEN s.i %% 20 = 0 THEN '198.51.100.1'
                       ELSE '10.' || (s.i / 4 / 65536) || '.' || (s.i / 4 / 256 %% 256) || '.' || (s.i / 4 %% 256) END),
        (4, 'link_domain', 'dom-' || (s.i %% 1000) || '.example'),
        (5, 'email_hash', 'eh-' || md5(s.i::text))
       ) AS a(n, kind, value)
 WHERE a.n <= %(per)s;
CREATE TABLE IF NOT EXISTS bench_attribute_seed (subjects bigint NOT NULL, per_subject int NOT NULL);
TRUNCATE bench_attribute_seed;
INSERT INTO bench_attribute_seed VALUES (%(n)s, %(per)s);
"""


# What a search sends ahead of its statement (investigations.selectors._fetch_all_planned).
_SEARCH_SETTINGS = "SET LOCAL jit = off; SET LOCAL enable_bitmapscan = off; "


def _seed_attributes(n, per):
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_attribute_seed') IS NOT NULL")
        seeded = None
        if cur.fetchone()[0]:
            cur.execute("SELECT subjects, per_subject FROM bench_attribute_seed")
            seeded = cur.fetchone()
        cur.execute("SELECT EXISTS (SELECT 1 FROM casework_subjectattribute)")
        if seeded == (n, per) and cur.fetchone()[0]:
            print(f"attributes: reusing {n * per:,} rows")
            return
        started = time.perf_counter()
        cur.execute(_ATTRIBUTES_SQL, {"n": n, "per": per})
        cur.execute("VACUUM ANALYZE casework_subjectattribute")
        print(f"attributes: {n * per:,} rows in {time.perf_counter() - started:.1f} s")


def _decide(subject_ids, senior, decider):
    """Decisions (with strikes) on the open cases of these subjects, through the services."""

    for case in Case.objects.filter(subject_id__in=subject_ids, status="open").select_related("threat_class"):
        if case.threat_class.slug != "spam":
            continue
        case_assign(case_id=case.pk, reviewer_username=decider.username, by=senior)
        decision_make(case_id=case.pk, reviewer=decider, action="remove", rule="SP-1", rationale="bench")


def main(argv=None):
    p = common.parser(__doc__, cases=1_000_000, requests=80)
    p.add_argument("--attributes", type=int, default=5, help="attribute rows per subject (at most 5)")
    args = p.parse_args(argv)
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    common.scale_setup(cases)
    per = max(1, min(args.attributes, 5))
    _seed_attributes(cases, per)
    with connection.cursor() as cur:
        # A migration that rewrote every subject (its class ids) or attribute row (the classes it keeps)
        # leaves their pages not all-visible until autovacuum passes; the index-only reads are measured as
        # they run once it has.
        cur.execute("VACUUM ANALYZE casework_subject")
        cur.execute("VACUUM ANALYZE casework_subjectattribute")

    senior = user_upsert(
        username="bench-inv-senior", role_names=["senior", "moderator"], queues=["spam"], clearances=["csam", "cib"]
    )
    moderator = user_upsert(username="bench-inv-mod", role_names=["moderator"], queues=["spam"])
    decider = user_upsert(username="bench-inv-decider", role_names=["moderator"], queues=["spam"], max_active=1000)
    # Decisions (and strikes) on a few subjects, among them the ones whose pages are read and their neighbours.
    picked = [i for i in range(1, 400) if i % 20 == 0][:12] + [1, 2, 3, 4]
    _decide(picked, senior, decider)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM casework_subject")
        (subjects,) = cur.fetchone()
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'casework_subjectattribute'")
        (attributes,) = cur.fetchone()
    print(f"{subjects:,} subjects, ~{attributes:,} attribute rows; {args.requests} requests per path")

    mid = max(cases // 2, 5)
    ip = f"10.{mid // 4 // 65536}.{mid // 4 // 256 % 256}.{mid // 4 % 256}"
    paths = [
        # (label, client, url, kind)
        ("search: external id (exact)", "moderator", f"/api/v1/subjects/?q=bench-u-{mid}", "search"),
        ("search: external id prefix", "moderator", f"/api/v1/subjects/?q=bench-u-{mid // 10}", "search"),
        # Popular text: every source stops at the cap, whatever the number of matches.
        ("search: prefix of 1 id in 9 (111,112 at scale 1)", "moderator", "/api/v1/subjects/?q=bench-u-1", "search"),
        ("search: ip", "moderator", f"/api/v1/subjects/?q={ip}", "search"),
        (
            "search: ip shared by 1 subject in 20 (50,000 at scale 1)",
            "moderator",
            "/api/v1/subjects/?q=198.51.100.1",
            "search",
        ),
        ("search: device", "moderator", f"/api/v1/subjects/?q=dev-{mid // 3}", "search"),
        (
            "search: attribute filter",
            "moderator",
            f"/api/v1/subjects/?attribute=payment:pay-{mid % (cases // 5 + 1)}",
            "search",
        ),
        ("search: reporter id", "moderator", "/api/v1/subjects/?q=bench-rep-77", "search"),
        ("search: case id", "moderator", f"/api/v1/subjects/?q={mid}", "search"),
        ("subject page (1 hop)", "senior", "/api/v1/subjects/account/bench-u-3/", "subject"),
        ("subject page (2 hops)", "senior", "/api/v1/subjects/account/bench-u-3/?hops=2", "subject"),
        ("subject page, CDN holder (1 hop)", "senior", "/api/v1/subjects/account/bench-u-40/", "subject"),
        ("subject page, other subject", "moderator", f"/api/v1/subjects/account/bench-u-{mid}/", "subject"),
    ]
    clients = {}
    for name, user in (("senior", senior), ("moderator", moderator)):
        clients[name] = APIClient()
        clients[name].credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")

    figures = {"subjects": subjects, "attribute rows (estimate)": attributes}
    for label, who, url, kind in paths:
        client = clients[who]

        def get(url=url, client=client):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {response.content[:300]!r}")
            return response

        for _ in range(3):
            get()
        times = common.timed(get, args.requests)
        with CaptureQueriesContext(connection) as captured:
            body = get().json()
        queries = [q["sql"] for q in captured.captured_queries]
        slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
        bare = _replay([q for q in queries if not q.lstrip().upper().startswith("INSERT")], args.requests)
        p50, p99 = common.pct(times, 50), common.pct(times, 99)
        bare50, bare99 = common.pct(bare, 50), common.pct(bare, 99)
        slowest_sql = slowest["sql"]
        planned = slowest_sql.startswith(_SEARCH_SETTINGS)  # a search: its statement, planned as it runs
        if planned:
            slowest_sql = slowest_sql.removeprefix(_SEARCH_SETTINGS)
        if slowest_sql.lstrip().upper().startswith(("SELECT", "WITH")):  # not INSERT, COMMIT
            with connection.cursor() as cur:
                cur.execute(_SEARCH_SETTINGS.replace(" LOCAL", "") if planned else "RESET jit; RESET enable_bitmapscan")
            common.explain(label, slowest_sql)
        limit = 100 if kind == "search" else 150
        shown = (
            f"{body['count']} results"
            if kind == "search"
            else f"{len(body['linked'])} linked, {len(body['cases'])} cases"
        )
        print(
            f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms (target < {limit}: {'met' if p99 < limit else 'NOT met'}), "
            f"{len(queries)} queries ({shown}); bare SQL p50 {bare50:.1f} ms, p99 {bare99:.1f} ms",
            flush=True,
        )
        common.compare(
            f"{label} p99",
            docket=round(p99, 1),
            bare=round(bare99, 1),
            unit="ms",
            higher_is_better=False,
            target=f"p99 < {limit} ms",
            met=p99 < limit,
        )
        figures[f"{label} p50/p99 ms"] = f"{p50:.1f} / {p99:.1f}"
        figures[f"{label} queries"] = len(queries)
    common.report("investigations", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
