"""Intake throughput: signals through the bulk HTTP API beside a bare bulk INSERT of the same rows.

    python -m bench.intake [--signals 100000] [--wave 20000] [--batch 1000] [--scale S]

In a dedicated database (``docket_bench``, see ``bench.common``), posts the
signals in batches to ``POST /api/v1/signals/`` through Django's test client
(the full stack except the socket: middleware, token auth, throttle, JSON
parsing, validation, the set-based intake, priority, events, automated
decisions, the on-commit task publish to Redis), then writes the same rows into
a plain table with no index or constraint, once as multi-row ``INSERT``
statements and once with ``COPY``, a batch per transaction as the API does.
Prints signals/second for each and the API's share of the bare rates, for two
workloads measured in the same run:

- the mix: 55% user reports (a pool of reporters, spam, harassment, payment
  fraud and CIB), 30% spam-classifier scores, 10% ATO rule hits, 5% CSAM hash
  matches on content with an owner; subjects skewed so some collect many
  signals; half the subjects carry device/IP attributes. The spam classifier
  and the ATO rules have thresholds, so some signals fall below review and a
  few are auto-actioned;
- a spam wave: every signal a spam-classifier score at or above the class's
  ``auto_action_at``, each on a fresh account sharing a link domain, so every
  one opens a case that automation decides (set-based, through the decision
  pipeline: decision, strike, enforcement, statement of reasons, notices),
  except the holdout sample (``DOCKET_HOLDOUT_RATE``) left for humans.

Then a breakdown independent of the machine's load, per batch of 100 and of
1,000 of each workload (fresh signals, after the timed runs): statements sent,
PostgreSQL backend CPU per signal (the backend's scheduler time, read from
``/proc`` when the server runs on this machine) by the function that sent each
statement, and Python CPU per signal, split by function with ``cProfile`` on a
CPU clock (waiting for the server is not counted) over a second batch of the
same size. The bare INSERT's CPU per row is measured the same way, so the CPU
ratio is the load-independent figure beside the throughput ratio.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import random
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import common
from bench.schedstat import cpu_ns

import psycopg
from django.db import connection
from django.test import Client

import docket.rows
from casework.models import Case, Signal
from docket.accounts import token_for
from policies.models import SignalSource, ThreatClass, Threshold
from reviews.accounts import user_upsert
from reviews.models import Decision

CLASSES_BY_REPORT = [("spam", 0.4), ("harassment", 0.4), ("payment_fraud", 0.1), ("cib", 0.1)]
SOURCES = [
    ("spam-classifier", "classifier", 0.8),
    ("ato-rules", "rule", 0.9),
    ("csam-hashes", "hash_match", 1.0),
]
# (source, class, review_at, auto_action_at): scores below review_at are stored without a case,
# at or above auto_action_at automation decides (spam: remove; ato: lock).
THRESHOLDS = [("spam-classifier", "spam", 0.3, 0.95), ("ato-rules", "ato", 0.5, 0.95)]
WAVE_AUTO_AT = 0.95
ROOT = Path(__file__).resolve().parent.parent


def workload(n, seed=7, prefix=""):
    """``n`` signal payloads (dicts) of the mix, deterministic for a seed; ``prefix`` keeps external ids apart."""
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
            "external_id": f"{prefix}s-{i}",
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
                "subject": {"kind": "content", "external_id": f"p-{prefix}{i}", "owner": f"u-{u}", "reach": 10},
            }
        items.append(item)
    return items


def spam_wave(n, seed=11, prefix="w"):
    """``n`` spam-classifier signals at or above ``auto_action_at``, each on a fresh account sharing one link domain."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(minutes=30)
    return [
        {
            "source": "spam-classifier",
            "external_id": f"{prefix}-{i}",
            "threat_class": "spam",
            "score": round(WAVE_AUTO_AT + rng.random() * (1 - WAVE_AUTO_AT), 4),
            "subject": {
                "kind": "account",
                "external_id": f"{prefix}-u-{i}",
                "reach": rng.randrange(5, 500),
                "attributes": {"link_domain": ["cheap-followers.example"]},
            },
            "occurred_at": (start + timedelta(seconds=1800 * i / n)).isoformat(),
        }
        for i in range(n)
    ]


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
    for source, threat_class, review_at, auto_action_at in THRESHOLDS:
        Threshold.objects.update_or_create(
            source=SignalSource.objects.get(slug=source),
            threat_class=ThreatClass.objects.get(slug=threat_class),
            defaults={"review_at": review_at, "auto_action_at": auto_action_at},
        )
    return token_for(user_upsert(username="bench-platform", role_names=["platform"]))


def _bare_rows(items):
    """The same signals as rows of the plain table (ids resolved the way intake resolves them)."""

    sources = dict(SignalSource.objects.values_list("slug", "id"))
    classes = dict(ThreatClass.objects.values_list("slug", "id"))
    subjects: dict[str, int] = {}
    reporters: dict[str, int] = {}
    now = datetime.now(UTC)
    rows = []
    for item in items:
        subject = subjects.setdefault(item["subject"]["external_id"], len(subjects) + 1)
        reporter = item.get("reporter")
        rows.append(
            (
                sources[item["source"]],
                item["external_id"],
                subject,
                classes[item["threat_class"]],
                item.get("score"),
                reporters.setdefault(reporter, len(reporters) + 1) if reporter else None,
                item.get("reason", ""),
                datetime.fromisoformat(item["occurred_at"]),
                now,
                "queued",
            )
        )
    return rows


def _backend_cpu_ms(pid):
    """CPU milliseconds a PostgreSQL backend has run (its scheduler time); None when the server is elsewhere."""
    ns = cpu_ns(pid)
    return None if ns is None else ns / 1e6


def _cpu_delta(before, after):
    return None if before is None or after is None else after - before


def _bare_insert(rows, batch, *, copy):
    """Rows per second, and (client + server) CPU ms per 1,000 rows, of a bare insert in ``batch``-row transactions."""
    with psycopg.connect(common.conninfo()) as conn:
        pid = conn.info.backend_pid
        server0, client0 = _backend_cpu_ms(pid), time.process_time()
        with common.stopwatch() as elapsed:
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
        server = _cpu_delta(server0, _backend_cpu_ms(pid))
        client = (time.process_time() - client0) * 1000
        with conn.cursor() as cur:
            cur.execute("TRUNCATE bench_bare_signal")
    cpu = None if server is None else (server + client) * 1000 / len(rows)
    return len(rows) / took, cpu


def _post_all(client, bodies, expect):
    with common.stopwatch() as elapsed:
        for body in bodies:
            response = client.post("/api/v1/signals/", body, content_type="application/json")
            if response.status_code != expect:
                sys.exit(f"intake answered {response.status_code}: {response.content[:300]!r}")
        return elapsed()


def _bodies(items, batch):
    return [json.dumps(items[i : i + batch]).encode() for i in range(0, len(items), batch)]


# --- the load-independent breakdown ------------------------------------------------------------------

_HELPERS = ("casework/intake/rows.py", "reviews/services/common.py", "bench/")


def _stage(frame):
    """``module.function`` of the innermost project function (not a helper) that sent a statement."""
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(str(ROOT)) and "/.venv/" not in path and not any(h in path for h in _HELPERS):
            module = Path(path).relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
            return f"{module}.{frame.f_code.co_name}"
        frame = frame.f_back
    return "django (auth, session, savepoints)"


@contextmanager
def _prepared_and_commit_measured(pid, statements):
    """Within the block, the prepared statements (``docket.rows.prepared``: the ranking and decision statements,
    sent past Django's execute wrappers) and the commit (the deferred foreign key checks run there) are measured
    too: ``(stage, backend CPU ms)`` appended to ``statements``, a prepared one by the function that sent it."""
    real = docket.rows.prepared

    @contextmanager
    def measured(sql, params):
        stage, before = _stage(sys._getframe(2)), _backend_cpu_ms(pid)
        with real(sql, params) as cursor:
            statements.append((stage, _cpu_delta(before, _backend_cpu_ms(pid))))
            yield cursor

    def commit():
        before = _backend_cpu_ms(pid)
        try:
            return real_commit()
        finally:
            statements.append(("the commit", _cpu_delta(before, _backend_cpu_ms(pid))))

    users = [m for m in list(sys.modules.values()) if getattr(m, "prepared", None) is real]
    real_commit = connection._commit
    for module in users:
        module.prepared = measured
    connection._commit = commit
    try:
        yield
    finally:
        for module in users:
            module.prepared = real
        del connection._commit  # the class's own again


def _python_stages(profile, scale, top=12):
    """The project's functions by cumulative Python CPU, each ``scale`` × its profiled time (nested ones overlap)."""
    stats = pstats.Stats(profile).stats
    rows = []
    for (path, _line, name), (_cc, _nc, _tt, cumulative, _callers) in stats.items():
        if not path.startswith(str(ROOT)) or "/.venv/" in path or "bench/" in path:
            continue
        module = Path(path).relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        rows.append((cumulative, f"{module}.{name}"))
    rows.sort(reverse=True)
    # Skip the request's wrappers (each holds the whole request): keep what intake itself spends.
    skip = ("docket.middleware", "docket.identity.auth", "casework.api.views", "casework.intake.store.signals_ingest")
    return [(label, cumulative * scale) for cumulative, label in rows if not label.startswith(skip)][:top]


def _post_one(client, items):
    response = client.post("/api/v1/signals/", json.dumps(items).encode(), content_type="application/json")
    if response.status_code != 201:
        sys.exit(f"intake answered {response.status_code}: {response.content[:300]!r}")
    return response


def _breakdown(client, label, batches):
    """Two fresh batches of one size: the first measured (statements, server and Python CPU, by stage), the
    second profiled (``cProfile`` on a CPU clock) to split the first's Python CPU by function."""
    measured, profiled = batches
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    statements: list[tuple[str, float | None]] = []

    def record(execute, sql, params, many, context):
        before = _backend_cpu_ms(pid)
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((_stage(sys._getframe(1)), _cpu_delta(before, _backend_cpu_ms(pid))))

    server0, client0 = _backend_cpu_ms(pid), time.process_time()
    with connection.execute_wrapper(record), _prepared_and_commit_measured(pid, statements):
        response = _post_one(client, measured)
    python_s = time.process_time() - client0
    server_ms = _cpu_delta(server0, _backend_cpu_ms(pid))  # the commit too

    profile = cProfile.Profile(time.process_time)
    client0 = time.process_time()
    profile.enable()
    _post_one(client, profiled)
    profile.disable()
    profiled_s = time.process_time() - client0

    n = len(measured)
    dispositions = Counter(r["disposition"] for r in response.json())
    server_us = "n/a" if server_ms is None else f"{server_ms * 1000 / n:,.0f}"
    print(
        f"-- {label}, a batch of {n:,}: {len(statements)} statements; CPU per signal: PostgreSQL {server_us} µs,"
        f" Python {python_s * 1e6 / n:,.0f} µs; {dict(dispositions)}"
    )
    if server_ms is not None:
        by_stage: dict[str, list] = defaultdict(lambda: [0, 0.0])
        for stage, cpu in statements:
            by_stage[stage][0] += 1
            by_stage[stage][1] += cpu or 0.0
        print("   PostgreSQL CPU by the function that sent the statements (µs per signal, statements):")
        for stage, (count, cpu) in sorted(by_stage.items(), key=lambda kv: -kv[1][1])[:12]:
            print(f"     {cpu * 1000 / n:8,.0f}  {count:3}  {stage}")
        rest = server_ms - sum(cpu for _count, cpu in by_stage.values())
        print(f"     {rest * 1000 / n:8,.0f}       the rest (between statements)")
    print("   Python CPU by function, cumulative (µs per signal; cProfile's shares of the unprofiled total):")
    for stage, us in _python_stages(profile, python_s / profiled_s * 1e6 / n):
        print(f"     {us:8,.0f}  {stage}")
    return {
        "statements": len(statements),
        "server_us": None if server_ms is None else round(server_ms * 1000 / n),
        "python_us": round(python_s * 1e6 / n),
    }


def main(argv=None):
    parser = common.parser(__doc__, signals=100_000, wave=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-stage CPU breakdown")
    args = parser.parse_args(argv)
    args.signals = common.scaled(args.signals, args.scale, minimum=args.batch)
    args.wave = common.scaled(args.wave, args.scale, minimum=args.batch)

    os.environ.setdefault("DOCKET_INTAKE_RATE", "1000000/min")  # the benchmark measures intake, not the throttle
    common.setup()

    token = _reset()
    items = workload(args.signals, seed=args.seed)
    wave = spam_wave(args.wave, seed=args.seed)
    bodies, wave_bodies = _bodies(items, args.batch), _bodies(wave, args.batch)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    load = os.getloadavg()
    print(
        f"{args.signals:,} mixed signals and a wave of {args.wave:,} auto-actionable ones, in batches of"
        f" {args.batch}; {os.cpu_count()} CPU(s), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )

    api_rate = args.signals / _post_all(client, bodies, 201)
    replayed = bodies[: max(1, len(bodies) // 10)]
    replay_rate = len(replayed) * args.batch / _post_all(client, replayed, 200)
    decided_before = Decision.objects.count()
    wave_rate = args.wave / _post_all(client, wave_bodies, 201)

    stored = Signal.objects.count()
    if stored != args.signals + args.wave:
        sys.exit(f"stored {stored} signals, expected {args.signals + args.wave}")
    mixed_dispositions = Counter(
        Signal.objects.exclude(source__slug="spam-classifier", external_id__startswith="w-").values_list(
            "disposition", flat=True
        )
    )
    wave_signals = Signal.objects.filter(source__slug="spam-classifier", external_id__startswith="w-")
    wave_dispositions = Counter(wave_signals.values_list("disposition", flat=True))
    wave_decided = Decision.objects.count() - decided_before  # nothing but automation decides here
    cases = Case.objects.count()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM casework_case c"
            " WHERE c.signal_count <> (SELECT count(*) FROM casework_signal s WHERE s.case_id = c.id)"
        )
        inconsistent = cur.fetchone()[0]
    auto_share = wave_dispositions["auto_actioned"] / args.wave
    if wave_decided != wave_dispositions["auto_actioned"]:
        sys.exit(f"{wave_dispositions['auto_actioned']} wave signals auto-actioned but {wave_decided} cases decided")

    insert_rate, insert_cpu = _bare_insert(_bare_rows(items), args.batch, copy=False)
    copy_rate, _ = _bare_insert(_bare_rows(items), args.batch, copy=True)
    wave_insert_rate, wave_insert_cpu = _bare_insert(_bare_rows(wave), args.batch, copy=False)

    breakdown = {}
    if not args.no_breakdown:
        print("== load-independent breakdown (fresh signals; CPU, not wall time)")
        for size in (100, 1000):
            breakdown[f"mixed {size}"] = _breakdown(
                client, "mixed", [workload(size, seed=args.seed + size, prefix=f"p{size}{k}-") for k in "ab"]
            )
            breakdown[f"wave {size}"] = _breakdown(
                client, "spam wave", [spam_wave(size, seed=args.seed + size, prefix=f"pw{size}{k}") for k in "ab"]
            )

    common.compare(
        f"bulk intake, mixed ({args.signals:,} signals, batches of {args.batch})",
        docket=round(api_rate, 1),
        bare=round(insert_rate, 1),
        unit="signals/s",
        target=">= 25% of bare INSERT",
        met=api_rate >= 0.25 * insert_rate and inconsistent == 0,
        note=f"bare COPY of the same rows: {copy_rate:,.0f} rows/s (API = {api_rate / copy_rate:.1%} of it)",
    )
    common.compare(
        f"bulk intake, auto-actioned wave ({args.wave:,} signals, batches of {args.batch})",
        docket=round(wave_rate, 1),
        bare=round(wave_insert_rate, 1),
        unit="signals/s",
        target=">= 25% of bare INSERT",
        met=wave_rate >= 0.25 * wave_insert_rate and inconsistent == 0,
        note=f"{auto_share:.1%} auto-actioned (the rest: the holdout sample, queued for humans)",
    )
    metrics = {
        "load average (1, 5, 15 min) at start": " ".join(f"{x:.2f}" for x in load),
        "load average at end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "mixed signals": args.signals,
        "mixed dispositions": dict(sorted(mixed_dispositions.items())),
        "wave signals": args.wave,
        "wave dispositions": dict(sorted(wave_dispositions.items())),
        "wave cases decided by automation": wave_decided,
        "decisions before the wave": decided_before,
        "cases opened": cases,
        "cases with wrong counts": inconsistent,
        "API mixed signals/s": round(api_rate, 1),
        "API replay (idempotent 200) signals/s": round(replay_rate, 1),
        "API auto-actioned wave signals/s": round(wave_rate, 1),
        "bare multi-row INSERT rows/s (mixed rows)": round(insert_rate, 1),
        "bare multi-row INSERT rows/s (wave rows)": round(wave_insert_rate, 1),
        "bare COPY rows/s": round(copy_rate, 1),
        "API mixed / bare INSERT": f"{api_rate / insert_rate:.1%}",
        "API wave / bare INSERT": f"{wave_rate / wave_insert_rate:.1%}",
        "API mixed / bare COPY": f"{api_rate / copy_rate:.1%}",
    }
    if insert_cpu is not None:
        metrics["bare INSERT CPU per row (client + server, µs)"] = round(insert_cpu, 1)
    for name, figures in breakdown.items():
        metrics[f"{name}: statements per batch"] = figures["statements"]
        if figures["server_us"] is not None:
            metrics[f"{name}: PostgreSQL CPU µs per signal"] = figures["server_us"]
        metrics[f"{name}: Python CPU µs per signal"] = figures["python_us"]
        if figures["server_us"] is not None and insert_cpu:
            cpu = figures["server_us"] + figures["python_us"]
            metrics[f"{name}: bare INSERT CPU / API CPU"] = f"{insert_cpu / cpu:.1%}"
    common.report("intake", metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
