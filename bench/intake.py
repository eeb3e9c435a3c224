"""Intake throughput: signals through the bulk HTTP API beside a bare bulk INSERT of the same rows.

    python -m bench.intake [--signals 100000] [--batch 1000] [--scale S]

In a dedicated database (``docket_bench``, see ``bench.common``), posts the
signals in batches to ``POST /api/v1/signals/`` through Django's test client
(the full stack except the socket: middleware, token auth, throttle, JSON
parsing, validation, the set-based intake, priority, events, the on-commit
task publish to Redis), then writes the same rows into a plain table with no
index or constraint, once as multi-row ``INSERT`` statements and once with
``COPY``, a batch per transaction as the API does. Prints signals/second for
each and the API's share of the bare rates.

The workload is a realistic mix: 55% user reports (a pool of reporters, spam,
harassment, payment fraud and CIB), 30% spam-classifier scores, 10% ATO rule
hits, 5% CSAM hash matches on content with an owner; subjects skewed so some
collect many signals; half the subjects carry device/IP attributes.
"""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import UTC, datetime, timedelta

from bench import common

import psycopg
from django.db import connection
from django.test import Client

from casework.models import Case, Signal
from docket.accounts import token_for
from policies.models import SignalSource, ThreatClass
from reviews.accounts import user_upsert

CLASSES_BY_REPORT = [("spam", 0.4), ("harassment", 0.4), ("payment_fraud", 0.1), ("cib", 0.1)]
SOURCES = [
    ("spam-classifier", "classifier", 0.8),
    ("ato-rules", "rule", 0.9),
    ("csam-hashes", "hash_match", 1.0),
]


def workload(n, seed=7):
    """``n`` signal payloads (dicts), deterministic for a seed."""
    rng = random.Random(seed)
    accounts = max(n // 3, 10)
    reporters = max(n // 5, 10)
    start = datetime.now(UTC) - timedelta(hours=6)
    classes, weights = zip(*CLASSES_BY_REPORT, strict=True)
    items = []
    for i in range(n):
        u = int(accounts * rng.random() ** 2)  # skewed: low ids collect many signals
        subject = {"kind": "account", "external_id": f"u-{u}", "reach": (u * 7919) % 100_000}
        if u % 2 == 0:
            subject["attributes"] = {"device": [f"d-{u % (accounts // 4 + 1)}"], "ip": [f"10.0.{u % 250}.{u % 199}"]}
        item = {
            "external_id": f"s-{i}",
            "subject": subject,
            "occurred_at": (start + timedelta(seconds=6 * 3600 * i / n)).isoformat(),
        }
        r = rng.random()
        if r < 0.55:
            item |= {
                "source": "user-reports",
                "threat_class": rng.choices(classes, weights)[0],
                "reporter": f"rep-{rng.randrange(reporters)}",
                "reason": "reported from the app",
            }
        elif r < 0.85:
            item |= {"source": "spam-classifier", "threat_class": "spam", "score": round(rng.random(), 4)}
        elif r < 0.95:
            item |= {"source": "ato-rules", "threat_class": "ato", "score": round(0.5 + rng.random() / 2, 4)}
        else:
            item |= {
                "source": "csam-hashes",
                "threat_class": "csam",
                "score": 1.0,
                "subject": {"kind": "content", "external_id": f"p-{i}", "owner": f"u-{u}", "reach": 10},
            }
        items.append(item)
    return items


def _reset():
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE casework_signal, casework_caseevent, casework_case, casework_subjectattribute,"
            " casework_subject, casework_reporter, casework_campaign, casework_queuetally RESTART IDENTITY CASCADE"
        )
        cur.execute("DROP TABLE IF EXISTS bench_bare_signal")
        cur.execute(
            "CREATE TABLE bench_bare_signal (source_id bigint, external_id text, subject_id bigint,"
            " threat_class_id bigint, score float8, reporter_id bigint, reason text,"
            " occurred_at timestamptz, received_at timestamptz, disposition text)"
        )
    for slug, kind, trust in SOURCES:
        SignalSource.objects.update_or_create(slug=slug, defaults={"kind": kind, "trust": trust, "status": "healthy"})
    SignalSource.objects.filter(slug="user-reports").update(status="healthy")
    return token_for(user_upsert(username="bench-platform", role_names=["platform"]))


def _bare_rows(items):
    """The same signals as rows of the plain table (ids resolved the way intake resolves them)."""

    sources = dict(SignalSource.objects.values_list("slug", "id"))
    classes = dict(ThreatClass.objects.values_list("slug", "id"))
    now = datetime.now(UTC)
    rows = []
    for item in items:
        subject = int(item["subject"]["external_id"].split("-")[1])
        reporter = item.get("reporter")
        rows.append(
            (
                sources[item["source"]],
                item["external_id"],
                subject,
                classes[item["threat_class"]],
                item.get("score"),
                int(reporter.split("-")[1]) if reporter else None,
                item.get("reason", ""),
                datetime.fromisoformat(item["occurred_at"]),
                now,
                "queued",
            )
        )
    return rows


def _bare_insert(rows, batch, *, copy):
    with psycopg.connect(common.conninfo()) as conn, common.stopwatch() as elapsed:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            with conn.transaction(), conn.cursor() as cur:
                if copy:
                    with cur.copy("COPY bench_bare_signal FROM STDIN") as cp:
                        for row in chunk:
                            cp.write_row(row)
                else:
                    values = ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * len(chunk))
                    cur.execute(f"INSERT INTO bench_bare_signal VALUES {values}", [v for row in chunk for v in row])
        took = elapsed()
        with conn.cursor() as cur:
            cur.execute("TRUNCATE bench_bare_signal")
    return len(rows) / took


def main(argv=None):
    parser = common.parser(__doc__, signals=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    args.signals = common.scaled(args.signals, args.scale, minimum=args.batch)

    os.environ.setdefault("DOCKET_INTAKE_RATE", "1000000/min")  # the benchmark measures intake, not the throttle
    common.setup()

    token = _reset()
    items = workload(args.signals, seed=args.seed)
    bodies = [json.dumps(items[i : i + args.batch]).encode() for i in range(0, len(items), args.batch)]
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    print(f"{args.signals:,} signals in {len(bodies)} batches of {args.batch}; {os.cpu_count()} CPU(s)", flush=True)

    with common.stopwatch() as elapsed:
        for body in bodies:
            response = client.post("/api/v1/signals/", body, content_type="application/json")
            if response.status_code != 201:
                sys.exit(f"intake answered {response.status_code}: {response.content[:300]!r}")
        api_seconds = elapsed()
    api_rate = args.signals / api_seconds

    with common.stopwatch() as elapsed:
        for body in bodies[: max(1, len(bodies) // 10)]:
            assert client.post("/api/v1/signals/", body, content_type="application/json").status_code == 200
        replay_rate = min(len(bodies), max(1, len(bodies) // 10)) * args.batch / elapsed()

    stored = Signal.objects.count()
    if stored != args.signals:
        sys.exit(f"stored {stored} signals, expected {args.signals}")
    cases = Case.objects.count()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM casework_case c"
            " WHERE c.signal_count <> (SELECT count(*) FROM casework_signal s WHERE s.case_id = c.id)"
        )
        inconsistent = cur.fetchone()[0]

    rows = _bare_rows(items)
    insert_rate = _bare_insert(rows, args.batch, copy=False)
    copy_rate = _bare_insert(rows, args.batch, copy=True)
    common.compare(
        f"bulk intake ({args.signals:,} signals, batches of {args.batch})",
        docket=round(api_rate, 1),
        bare=round(insert_rate, 1),
        unit="signals/s",
        target=">= 20% of bare INSERT",
        met=api_rate >= 0.2 * insert_rate and inconsistent == 0,
        note=f"bare COPY of the same rows: {copy_rate:,.0f} rows/s (API = {api_rate / copy_rate:.1%} of it)",
    )
    common.report(
        "intake",
        {
            "signals": args.signals,
            "cases opened": cases,
            "cases with wrong counts": inconsistent,
            "API signals/s": round(api_rate, 1),
            "API replay (idempotent 200) signals/s": round(replay_rate, 1),
            "bare multi-row INSERT rows/s": round(insert_rate, 1),
            "bare COPY rows/s": round(copy_rate, 1),
            "API / bare INSERT": f"{api_rate / insert_rate:.1%}",
            "API / bare COPY": f"{api_rate / copy_rate:.1%}",
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
