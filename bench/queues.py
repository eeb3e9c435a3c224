"""Queue figures at growing backlogs: home, ``GET /api/v1/queues/``, a queue's page and metrics' queues at 100k, 1M, 5M.

    python -m bench.queues [--sizes 100000,1000000,5000000] [--requests 80] [--scale S]

Each size has a seeded database of its own (``docket_bench_scale`` at
1,000,000, ``docket_bench_scale_<n>`` otherwise; seeded once, kept). Before
timing, each size's periodic jobs catch up with what came due while the seed
sat (``bench.common.scale_setup``), as beat keeps them caught up in production
(the queue figures add the breaches not flagged yet, a few seconds' worth).

The figures come from the queue tallies (``casework.tallies``), an index probe
per (queue, class) for the oldest wait and an index range for the last
seconds' SLA breaches, so they should cost the same at every size. Timed per
size, through Django's full stack in process: the home page, ``GET
/api/v1/queues/``, the spam queue's page (its total from the tallies) and the
queue section of the guard metrics (``oversight.metrics``, computed afresh).
The sizes are measured interleaved (each round asks every path at every
size), so a shared machine's load falls on all alike. Printed: p50/p99 of each
path per size, the ratio of the largest size to the smallest, and the plans
(``EXPLAIN ANALYZE``) of the queue figures' query and the queue page's total
at the largest size.
Target: p99 at the largest size within 1.5x of the smallest.
"""

import sys
import time

from bench import common

from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework.models import Queue
from oversight.metrics import _queues
from policies.models import ThreatClass
from reviews.accounts import user_upsert
from reviews.selectors import _TALLY_SQL, _queue_tally_total

PATHS = [
    ("home", "/"),
    ("GET /api/v1/queues/", "/api/v1/queues/"),
    ("queue page /queues/spam/", "/queues/spam/"),
    ("metrics' queue section", None),  # oversight.metrics._queues, computed afresh (the page caches it)
]
CLEARANCES = ("csam", "cib")


def _explain(size):
    """The plans of the queue figures' query and of the queue page's total, on the size's database."""

    user = get_user_model().objects.get(username="bench-queues-senior")
    queues = list(Queue.objects.visible_to(user).values_list("id", flat=True))
    hidden = list(ThreatClass.objects.hidden_from(user).values_list("id", flat=True))
    now = timezone.now()
    params = {"now": now, "since": now, "queues": queues, "hidden": hidden, "arrivals_since": now}
    common.explain(f"queue figures (queues_overview) at {size:,}", _TALLY_SQL, params)
    with CaptureQueriesContext(connection) as captured:
        _queue_tally_total(user, Queue.objects.get(slug="spam"), None)
    common.explain(f"queue page total (spam) at {size:,}", captured.captured_queries[-1]["sql"])


def _database(size):
    return common.SCALE_DATABASE if size == 1_000_000 else f"{common.SCALE_DATABASE}_{size}"


def _use(database):
    """Point Django's default connection at ``database`` and connect (outside any timing)."""

    connections.close_all()
    connection.settings_dict["NAME"] = database
    with connection.cursor() as cur:
        cur.execute("SELECT 1")


def main(argv=None):
    p = common.parser(__doc__, requests=80)
    p.add_argument("--sizes", default="100000,1000000,5000000", help="active cases per database, comma-separated")
    args = p.parse_args(argv)
    sizes = [common.scaled(int(n), args.scale, minimum=1000) for n in args.sizes.split(",")]
    clients, active = {}, {}
    for size in sizes:  # seed (or reuse) each size's database, and sign a senior in on it
        common.scale_setup(size, database=_database(size))

        user = user_upsert(
            username="bench-queues-senior",
            role_names=["senior", "moderator"],
            queues=["spam", "harassment", "escalations"],
            clearances=["csam", "cib"],
        )
        clients[size] = Client()
        clients[size].force_login(user)
        with connection.cursor() as cur:
            cur.execute("ANALYZE casework_case")
            cur.execute("SELECT count(*) FROM casework_case WHERE status IN ('open', 'in_review', 'escalated')")
            (active[size],) = cur.fetchone()
        print(f"{active[size]:,} active")

    _use(_database(max(sizes)))
    _explain(max(sizes))
    # Interleaved, so the load of a shared machine falls on every size alike: each round asks every
    # path once per size, on a connection opened before the request is timed.
    times = {(label, size): [] for label, _ in PATHS for size in sizes}
    for round_ in range(args.requests + 3):
        for size in sizes:
            _use(_database(size))
            for label, url in PATHS:
                started = time.perf_counter()
                if url is None:
                    _queues(CLEARANCES, now=timezone.now())
                else:
                    response = clients[size].get(url)
                    if response.status_code != 200:
                        raise SystemExit(f"{url} answered {response.status_code} at {size:,}")
                took = (time.perf_counter() - started) * 1000
                if round_ >= 3:  # the first rounds warm caches and plans
                    times[(label, size)].append(took)
    figures, p99s = {}, {}
    for (label, size), values in times.items():
        p50, p99 = common.pct(values, 50), common.pct(values, 99)
        p99s[(label, size)] = p99
        figures[f"{label} @ {active[size]:,} active p50/p99 ms"] = f"{p50:.1f} / {p99:.1f}"
        print(f"{label} at {active[size]:,} active cases: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
    small, large = min(sizes), max(sizes)
    for label, _ in PATHS:
        ratio = p99s[(label, large)] / p99s[(label, small)]
        figures[f"{label} p99 ratio {large:,} / {small:,}"] = round(ratio, 2)
        common.compare(
            f"{label} p99 at {large:,} vs {small:,} active",
            docket=round(p99s[(label, large)], 1),
            bare=round(p99s[(label, small)], 1),
            unit="ms",
            higher_is_better=False,
            target="within 1.5x of the smallest size",
            met=ratio <= 1.5,
        )
    common.report("queues", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
