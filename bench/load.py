"""Locust against the whole system on the 1M-case seed: how many concurrent moderators one machine serves.

    python -m bench.load [--cases 1000000] [--steps 10,20,40,80] [--seconds 60] [--workers 2] [--threads 8]

On the shared seed (``bench.common.scale_setup``), makes the users the
locustfile signs in as (moderators ``bench-r<i>`` working the spam queue,
``bench-appeals``, a platform token), starts gunicorn (gthread, ``--workers``
x ``--threads``) and a Celery worker with beat (every periodic job on its
schedule), then runs ``bench/locustfile.py`` headless once per step: that
many moderators (sign in, home, claim next, case page, decide, next, with 2-6
s of think time) plus 2 appeals staff (the appeals queue, then one of the
``APPEALS`` waiting appeals it lists) and 1 intake client (20 signals a
second or so). No page is opened before every user has signed in (a sign-in
is a deliberate password hash that holds a server thread, seconds on a loaded
machine); the statistics and the ``--seconds`` of the step start then.
Printed per step: requests/s, p50/p99 of each page and
the worst page p99 (sign-in excluded: a deliberate password hash), errors,
and where the machine's CPU went during the step (gunicorn, the worker and
beat, this database's PostgreSQL backends, Locust itself, and everything
else on the machine, which is shared), with the load average. At the end, a
summary: the moderator count found, each page's p50/p99 per step, the CPU
split (Docket's processes, PostgreSQL, Locust, other) and the Docket +
PostgreSQL CPU per request. ``python -m bench.pages --only costs`` gives the
load-independent side: each page's queries and CPU per request.

Target (issue 14): the largest number of moderators with every page's p99
under 200 ms.
"""

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common
from bench.claim import _start_gunicorn

import psycopg
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from docket.accounts import token_for
from reviews.accounts import user_upsert

HERE = Path(__file__).resolve().parent
PAGES = ("home", "claim next", "case page", "decide", "appeals queue", "appeal page")
SHOWN = (*PAGES, "intake (20 signals)")  # the summary's rows: the pages, then the platform's intake (no page)
APPEALS = 200  # waiting appeals, so the appeals staff's queue and appeal pages have rows
PASSWORD = "bench-pass"
TICKS = os.sysconf("SC_CLK_TCK")
# Spawning and signing in may take this long (pages wait for the last sign-in; the step's seconds start then).
SIGN_IN_SECONDS = 60


def _start_worker():
    env = {**os.environ, "DATABASE_URL": common.conninfo(), "DJANGO_SETTINGS_MODULE": "docket.settings"}
    schedule = os.path.join(tempfile.mkdtemp(prefix="docket-bench-load-"), "schedule")
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    return subprocess.Popen(
        [celery, "-A", "docket", "worker", "-B", "-s", schedule, "--concurrency", "2", "-l", "warning"], env=env
    )


def _tree(pid):
    """``pid`` and its descendants."""
    found, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child in Path("/proc").glob("[0-9]*"):
            try:
                ppid = int((child / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent and int(child.name) not in found:
                found.add(int(child.name))
                frontier.append(int(child.name))
    return found


_seen: dict = {}  # pid -> its CPU seconds when last read: a process that exits keeps what it used


def _cpu_seconds(pids):
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # a zombie's counters read zero
            _seen[pid] = max(_seen.get(pid, 0), (int(fields[11]) + int(fields[12])) / TICKS)  # utime + stime
    return sum(_seen.get(pid, 0) for pid in pids)


def _machine_cpu_seconds():
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(x) for x in fields) - int(fields[3]) - int(fields[4])  # less idle and iowait
    return busy / TICKS


def _backends(conn):
    return {row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")}


def _users(moderators):
    """Moderators ``bench-r0..`` (spam), ``bench-appeals`` and a platform token; one password hash for all."""

    users = common.reviewers(moderators, prefix="bench-r", queues=("spam",))
    users.append(user_upsert(username="bench-appeals", role_names=["appeals"]))
    get_user_model().objects.filter(pk__in=[u.pk for u in users]).update(password=make_password(PASSWORD))
    common.appeals_filed(APPEALS, prefix="bench-load")
    return token_for(user_upsert(username="bench-load-platform", role_names=["platform"]))


def _read_stats(prefix):
    with open(f"{prefix}_stats.csv") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def _summary(steps, best, requested):
    """The closing table: the moderator count found, each page's p50/p99 per step, where the CPU went."""

    print(f"\n=== Locust: most moderators with every page p99 < 200 ms and no failure: {best} (steps {requested})")
    width = max(len(n) for n in SHOWN) + 2
    print(f"{'p50 / p99 ms':<{width}}" + "".join(f"{str(s['moderators']) + ' moderators':>18}" for s in steps))
    for name in SHOWN:
        cells = []
        for step in steps:
            row = step["rows"].get(name)
            cells.append(f"{row['50%']} / {row['99%']}" if row else "-")
        print(f"{name:<{width}}" + "".join(f"{c:>18}" for c in cells))
    for label, key in (("worst page p99 ms", "worst"), ("requests/s", "rate"), ("failures", "failures")):
        print(f"{label:<{width}}" + "".join(f"{s[key]:>18.0f}" for s in steps))
    print(f"CPU cores used (the machine has {os.cpu_count()}; Docket = gunicorn + worker and beat)")
    for label, keys in (
        ("Docket processes", ("web", "jobs")),
        ("  gunicorn", ("web",)),
        ("  worker + beat", ("jobs",)),
        ("PostgreSQL (this db)", ("pg",)),
        ("Locust", ("locust",)),
        ("other (shared machine)", ("other",)),
    ):
        print(f"{label:<{width}}" + "".join(f"{sum(s['cpu'][k] for k in keys):>18.2f}" for s in steps))
    print(f"{'load average (1 min)':<{width}}" + "".join(f"{s['load']:>18.1f}" for s in steps))
    for step in steps:
        served = step["rate"] or float("nan")
        docket = step["cpu"]["web"] + step["cpu"]["jobs"] + step["cpu"]["pg"]
        print(
            f"{step['moderators']} moderators: {1000 * docket / served:.1f} ms of Docket + PostgreSQL CPU per request"
            " (the worker's and beat's periodic jobs included: at a few requests a second they weigh most)"
        )


def main(argv=None):
    p = common.parser(__doc__, cases=1_000_000, seconds=60, workers=2, threads=8)
    p.add_argument("--steps", default="10,20,40,80", help="moderator counts, comma-separated")
    args = p.parse_args(argv)
    steps = [int(n) for n in args.steps.split(",")]
    cases = common.scaled(args.cases, args.scale, minimum=1000)
    common.scale_setup(cases)

    token = _users(sum(steps))
    gunicorn, base = _start_gunicorn(args.workers, args.threads, common.BENCH_REDIS_DB)
    worker = _start_worker()
    stats = psycopg.connect(common.conninfo(), autocommit=True)
    locust = os.path.join(os.path.dirname(sys.executable), "locust")
    figures, best, first, done = {}, 0, 0, []
    try:
        time.sleep(5)
        for moderators in steps:
            prefix = os.path.join(tempfile.mkdtemp(prefix="docket-bench-locust-"), "run")
            users = moderators + 3
            signed_in = f"{prefix}_signed_in"
            env = {
                **os.environ,
                "LOCUST_SIGNED_IN_FILE": signed_in,
                "LOCUST_SIGNING_IN": str(moderators + 2),
                "LOCUST_MEASURE_SECONDS": str(args.seconds),
                "LOCUST_PASSWORD": PASSWORD,
                "LOCUST_PLATFORM_TOKEN": token,
                "LOCUST_MODERATORS": str(moderators),
                "LOCUST_FIRST": str(first),
                "LOCUST_APPEALS": "2",
                "LOCUST_PLATFORMS": "1",
            }
            first += moderators  # fresh users per step: the sign-in throttle counts password checks per user
            command = [
                locust, "-f", str(HERE / "locustfile.py"), "--host", base, "--headless", "--only-summary",
                "-u", str(users), "-r", str(max(1, users // 10)), "-t", f"{args.seconds + SIGN_IN_SECONDS}s",
                "--csv", prefix, "--loglevel", "WARNING", "--stop-timeout", "5",
            ]  # fmt: skip
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=HERE.parent)
            # Every user spawned and signed in (no page opens before): the statistics start now.
            while not os.path.exists(signed_in) and proc.poll() is None:
                time.sleep(0.2)
            web, jobs, pg = _tree(gunicorn.pid), _tree(worker.pid), _backends(stats)
            cpu0 = {k: _cpu_seconds(v) for k, v in (("web", web), ("jobs", jobs), ("pg", pg), ("locust", {proc.pid}))}
            machine0, started = _machine_cpu_seconds(), time.perf_counter()
            # Reaped here, with what it used: once it has exited, /proc no longer tells.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            took = time.perf_counter() - started
            if took < args.seconds - 1:
                print(f"   (the sign-ins took longer than {SIGN_IN_SECONDS} s: the figures are over {took:.0f} s)")
            pg |= _backends(stats)
            cpu = {k: _cpu_seconds(v) - cpu0[k] for k, v in (("web", web), ("jobs", jobs), ("pg", pg))}
            cpu["locust"] = usage.ru_utime + usage.ru_stime - cpu0["locust"]
            other = max(0.0, _machine_cpu_seconds() - machine0 - sum(cpu.values()))
            load = os.getloadavg()[0]
            rows = _read_stats(prefix)
            pages = {n: rows[n] for n in PAGES if n in rows}
            worst = max((float(r["99%"]) for r in pages.values()), default=float("nan"))
            total = rows.get("Aggregated", {})
            failures = int(total.get("Failure Count", 0) or 0)
            rate = float(total.get("Requests/s", 0) or 0)
            cores = {k: v / took for k, v in cpu.items()} | {"other": other / took}
            shares = ", ".join(f"{k} {v:.2f}" for k, v in cores.items())
            print(
                f"{moderators} moderators: {rate:.1f} req/s, worst page p99 {worst:.0f} ms, {failures} failures; "
                f"CPU cores used: {shares}; load {load:.1f}",
                flush=True,
            )
            for name, row in sorted(rows.items()):
                print(
                    f"   {name:<22} {int(row['Request Count']):>6} req  p50 {row['50%']:>5} ms  p99 {row['99%']:>5} ms"
                    f"  max {float(row['Max Response Time']):>7.0f} ms  failures {row['Failure Count']}"
                )
            done.append(
                {
                    "moderators": moderators,
                    "rows": rows,
                    "worst": worst,
                    "rate": rate,
                    "failures": failures,
                    "cpu": cores,
                    "load": load,
                }
            )
            figures[f"{moderators} moderators: worst page p99 ms"] = worst
            figures[f"{moderators} moderators: req/s, failures"] = f"{rate:.1f}, {failures}"
            figures[f"{moderators} moderators: CPU cores (web/jobs/pg/locust/other)"] = "/".join(
                f"{v:.2f}" for v in cores.values()
            )
            figures[f"{moderators} moderators: load average (1 min)"] = round(load, 1)
            for name, row in rows.items():
                if name in SHOWN:
                    figures[f"{moderators} moderators: {name} p50/p99 ms"] = f"{row['50%']} / {row['99%']}"
            if worst < 200 and failures == 0:
                best = moderators
    finally:
        for proc in (worker, gunicorn):
            proc.terminate()
            proc.wait(timeout=60)
        stats.close()
    _summary(done, best, args.steps)
    figures["most moderators with every page p99 < 200 ms"] = best
    common.compare(
        "Locust: moderators served, page p99 < 200 ms",
        docket=best,
        bare=None,
        unit="moderators",
        target=f"largest of {args.steps}",
    )
    common.report("load", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
