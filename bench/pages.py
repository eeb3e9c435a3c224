"""Read paths at production size, and what each page of the moderator's and appeals staff's journey costs.

    python -m bench.pages [--cases 1000000] [--requests 80] [--journeys 30] [--only latency|costs] [--scale S]

On the shared seed (``--cases`` open cases; a few hundred in review), each
page or API call is requested ``--requests`` times through Django's full
stack in process (middleware, session or token auth, the view, the
template or serializer): the server time, without a socket. Printed per
path: p50/p99 ms, the query count at two page sizes (it must not grow with
the rows shown), and the bare-SQL floor: the very queries the request ran,
replayed on a plain psycopg connection. The slowest query of each path is
shown with ``EXPLAIN ANALYZE``.

Targets: queue page and case list API p99 under 100 ms, constant query count.

Then the journey's costs (``--journeys`` rounds; ``--only costs`` skips the
latencies above; the beat's re-ranking and a vacuum are caught up first, as
they are live): a moderator's home, queue page, case page and decision (the
UI's POST, which claims the next case), another's "claim next", the
appeals staff's queue and appeal page, and the platform's intake of 20
signals, each a request through Django's full stack in process. Per page,
the median of the rounds: the queries, their time as Django saw it, the CPU
the PostgreSQL backend used for them (its ``/proc/<pid>/schedstat``) and the
CPU this Python process used for the request (``time.process_time``); these
two are CPU, not waiting, so they hold on a loaded machine. A profiled round
then splits each page's Python time by where it ran (templates, the ORM, the
driver, Docket's code, ...). One machine serves about ``cores x 1000 /
(Python + PostgreSQL ms)`` such pages a second at most.
"""

import cProfile
import gc
import os
import pstats
import re
import sys
import time
from collections import defaultdict

from bench import common
from bench.schedstat import cpu_ns

import psycopg
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from casework.priority import cases_reprioritise_due
from docket.accounts import token_for
from reviews.accounts import user_upsert
from reviews.models import Assignment, Reviewer
from reviews.services import assignment_release

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


# --- what each page of the journey costs ---------------------------------------------------

JOURNEY = (
    "home",
    "queue page",
    "claim next",
    "case page",
    "decide",
    "appeals queue",
    "appeal page",
    "intake (20 signals)",
)
APPEALS = 40  # appeals filed on decided cases, so the appeals queue and the appeal page have rows
_CASE_URL = re.compile(r"/cases/(\d+)/")
# Where a request's Python time ran, by the file of the function that spent it (cProfile's own time).
_BUCKETS = (
    ("templates", ("/django/template/", "/django/templatetags/", "/django/forms/", "/django/utils/html")),
    ("ORM", ("/django/db/",)),
    ("driver", ("/psycopg/", "/psycopg_c/", "/psycopg_binary/")),
    ("DRF", ("/rest_framework/", "/django_filters/", "/drf_spectacular/")),
    ("sessions/auth/messages", ("/django/contrib/sessions/", "/django/contrib/auth/", "/django/contrib/messages/")),
    ("cache/queue", ("/redis/", "/kombu/", "/celery/", "/django/core/cache/")),
    ("Django other", ("/django/",)),
)
_PROJECT = ("appeals", "bench", "casework", "docket", "investigations", "oversight", "policies", "reviews")


def _bucket(filename):
    for name, parts in _BUCKETS:
        if any(part in filename for part in parts):
            return name
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if filename.startswith(here) and ".venv" not in filename and filename[len(here) + 1 :].startswith(_PROJECT):
        return "Docket code"
    return "Python other"  # stdlib, other packages


class _Meter:
    """Requests measured one at a time: queries, their time, the backend's CPU and this process's CPU."""

    def __init__(self):
        self.samples = defaultdict(list)
        self.profiles = defaultdict(lambda: defaultdict(float))
        self.profiling = False
        self._gc = [0.0, None]  # CPU seconds in garbage collection, start of the running one
        gc.callbacks.append(self._collecting)

    def _collecting(self, phase, info):
        if phase == "start":
            self._gc[1] = time.process_time()
        elif self._gc[1] is not None:
            self._gc[0] += time.process_time() - self._gc[1]
            self._gc[1] = None

    def __call__(self, page, send):
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        profile = cProfile.Profile(time.process_time) if self.profiling else None
        statements = []  # (seconds) per statement, timed by a light wrapper (no debug cursor's SQL formatting)

        def timed(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                statements.append(time.perf_counter() - started)

        with connection.execute_wrapper(timed):
            pg0, cpu0, wall0, gc0 = cpu_ns(pid), time.process_time(), time.perf_counter(), self._gc[0]
            if profile:  # a collection would land on whatever line allocated: its time is the GC column's
                gc.disable()
                profile.enable()
            response = send()
            if profile:
                profile.disable()
                gc.enable()
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            pg1 = cpu_ns(pid)
        if response.status_code >= 400:
            raise SystemExit(f"{page} answered {response.status_code}: {response.content[:300]!r}")
        if profile:
            for (filename, _, _), (_, _, own, _, _) in pstats.Stats(profile).stats.items():
                self.profiles[page][_bucket(filename)] += own
            return response
        same_backend = connection.connection is not None and connection.connection.info.backend_pid == pid
        self.samples[page].append(
            {
                "queries": len(statements),
                "db_ms": sum(statements) * 1000,
                "pg_cpu_ms": (pg1 - pg0) / 1e6 if pg0 is not None and pg1 is not None and same_backend else None,
                "py_cpu_ms": cpu * 1000,
                "gc_ms": (self._gc[0] - gc0) * 1000,
                "wall_ms": wall * 1000,
            }
        )
        return response

    def mean(self, page, key):
        values = [s[key] for s in self.samples[page]]
        return sum(values) / len(values) if values else 0.0

    def figure(self, page, key):
        values = [s[key] for s in self.samples[page] if s[key] is not None]
        return common.median(values) if values else None


def _journey_world(rounds):
    """The journey's people and rows: moderators on spam, appeals staff with appeals to read, a platform token."""

    moderator = user_upsert(
        username="bench-journey-mod", role_names=["moderator"], queues=["spam"], max_active=rounds + 50
    )
    claimer = user_upsert(username="bench-journey-claimer", role_names=["moderator"], queues=["spam"])
    appeals = user_upsert(username="bench-journey-appeals", role_names=["appeals"])
    platform = user_upsert(username="bench-journey-platform", role_names=["platform"])
    # What the beat's re-ranking would have done since the seed: cases past their SLA moved to the breached
    # tier, so the per-queue figures read the few the job has not reached yet, as they do live.
    reranked = cases_reprioritise_due(budget_seconds=300)
    with connection.cursor() as cur:  # and autovacuum after it (the re-ranked rows' dead index entries)
        cur.execute("VACUUM casework_case")
    print(f"journey: {reranked:,} cases re-ranked first (the beat's job, caught up)")
    return moderator, claimer, appeals, platform, common.appeals_filed(APPEALS, prefix="bench-journey")


def _intake_batch():
    return [
        {
            "source": "spam-classifier",
            "external_id": f"bench-journey-{time.time_ns()}-{j}",
            "threat_class": "spam",
            "subject": {"kind": "account", "external_id": f"bench-u-{(time.time_ns() + j) % 100_000 + 1}", "reach": 10},
            "score": 0.6,
        }
        for j in range(20)
    ]


def journey_costs(rounds):
    """Each journey page's queries, statement time and CPU (median of ``rounds``); printed and returned."""

    moderator, claimer, appeals, platform, appeal_ids = _journey_world(rounds)
    mod, claim, staff, intake = Client(), Client(), Client(), APIClient()
    mod.force_login(moderator)
    claim.force_login(claimer)
    staff.force_login(appeals)
    intake.credentials(HTTP_AUTHORIZATION=f"Token {token_for(platform)}")
    claimer_reviewer = Reviewer.objects.get(user=claimer)
    meter = _Meter()

    first = mod.post("/queues/spam/claim/")
    current = _CASE_URL.search(first.headers.get("Location", "")).group(1)

    def one_round(i):
        nonlocal current
        meter("home", lambda: mod.get("/"))
        meter("queue page", lambda: mod.get("/queues/spam/"))
        meter("case page", lambda: mod.get(f"/cases/{current}/"))
        decided = meter(
            "decide",
            lambda: mod.post(f"/cases/{current}/decision/", {"action": "remove", "rule": "SP-1", "rationale": ""}),
        )
        current = _CASE_URL.search(decided.headers.get("Location", "")).group(1)  # the next case, claimed
        claimed = meter("claim next", lambda: claim.post("/queues/spam/claim/"))
        if _CASE_URL.search(claimed.headers.get("Location", "")) is None:
            raise SystemExit(f"claim next found no case: {claimed.headers.get('Location')}")
        for held in Assignment.objects.filter(reviewer=claimer_reviewer, state="active").values_list("pk", flat=True):
            assignment_release(assignment_id=held, reviewer=claimer)  # not measured: back to one claim per round
        meter("appeals queue", lambda: staff.get("/appeals/"))
        meter("appeal page", lambda: staff.get(f"/appeals/{appeal_ids[i % len(appeal_ids)]}/"))
        meter("intake (20 signals)", lambda: intake.post("/api/v1/signals/", _intake_batch(), format="json"))

    for i in range(3):  # warm: connections, caches, plans, imports
        one_round(i)
    meter.samples.clear()
    for i in range(rounds):
        one_round(i)
    meter.profiling = True
    for i in range(3):
        one_round(i)

    load = os.getloadavg()
    print(
        f"\nJourney costs, median of {rounds} rounds (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f};"
        " CPU figures hold under load, wall ms does not)"
    )
    head = f"{'page':<21} {'queries':>7} {'SQL ms':>7} {'PG CPU ms':>9} {'Python CPU ms':>13} {'of it GC':>8}"
    head += f" {'wall ms':>8}"
    print(head)
    print("-" * len(head))
    figures = {}
    for page in JOURNEY:
        keys = ("queries", "db_ms", "pg_cpu_ms", "py_cpu_ms", "wall_ms")
        q, sql, pg, py, wall = (meter.figure(page, k) for k in keys)
        collected = meter.mean(page, "gc_ms")
        pg_shown = f"{pg:>9.1f}" if pg is not None else f"{'-':>9}"
        print(f"{page:<21} {q:>7.0f} {sql:>7.1f} {pg_shown} {py:>13.1f} {collected:>8.1f} {wall:>8.1f}")
        figures[f"{page}: queries"] = int(q)
        figures[f"{page}: SQL / PG CPU / Python CPU ms"] = (
            f"{sql:.1f} / {pg:.1f} / {py:.1f}" if pg is not None else f"{sql:.1f} / - / {py:.1f}"
        )
    cpu_shares_print(meter, JOURNEY, what="page")
    worst = max(JOURNEY, key=lambda p: (meter.figure(p, "py_cpu_ms") or 0) + (meter.figure(p, "pg_cpu_ms") or 0))
    cpu = (meter.figure(worst, "py_cpu_ms") or 0) + (meter.figure(worst, "pg_cpu_ms") or 0)
    common.compare(
        f"journey: costliest page ({worst}) CPU per request",
        docket=round(cpu, 1),
        bare=None,
        unit="ms",
        higher_is_better=False,
    )
    figures["load average (1 min) during the journey"] = round(load[0], 1)
    return figures


def cpu_shares_print(meter, names, *, what, width=21):
    """Where each request's Python CPU went: its share by the code that spent it (``_BUCKETS``), profiled rounds."""
    buckets = [name for name, _ in _BUCKETS] + ["Docket code", "Python other"]
    print(f"\nWhere the Python CPU goes (share of each {what}'s CPU by the code that spent it, profiled rounds)")
    print(f"{what:<{width}} " + " ".join(f"{b[:12]:>12}" for b in buckets))
    for name in names:
        spent = meter.profiles[name]
        whole = sum(spent.values()) or 1
        print(f"{name:<{width}} " + " ".join(f"{100 * spent.get(b, 0) / whole:>11.0f}%" for b in buckets))


def main(argv=None):
    p = common.parser(__doc__, cases=1_000_000, requests=80, journeys=30)
    p.add_argument("--only", choices=("latency", "costs"), help="the paths' latencies only, or the journey's costs")
    args = p.parse_args(argv)
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
    print(f"{total:,} cases")
    figures = {"cases": total}
    if args.only != "costs":
        figures.update(_latencies(args, mods, senior))
    if args.only != "latency":
        figures.update(journey_costs(args.journeys))
    common.report("pages", figures)
    return 0


def _latencies(args, mods, senior):
    print(f"{IN_REVIEW} in review; {args.requests} requests per path")

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
        # (An estimate's own EXPLAIN is no query to explain again.)
        plain = [q for q in captured.captured_queries if not q["sql"].lstrip().upper().startswith("EXPLAIN")]
        slowest = max(plain, key=lambda q: float(q["time"]))
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
    return figures


if __name__ == "__main__":
    sys.exit(main())
