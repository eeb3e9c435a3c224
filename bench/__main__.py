"""``python -m bench [names…] [--scale S] [-- args…]``: run the suite, print one table, write bench/results/latest.json.

With no names, every benchmark module of this package runs, in ``ORDER``. Each
runs in its own process (each sets up Django for its own database) and gets
``--scale`` (1 = production scale: 1,000,000 cases, 200,000 campaign subjects,
100,000 intake signals; ``--scale 0.1`` for a run of a couple of minutes);
arguments after ``--`` go to every selected benchmark as they are.

The table has one row per hot path: Docket's figure, the bare-SQL figure of
the same work on the same data in the same run, Docket as a share of bare
SQL, and the target. The modules' other figures and the EXPLAIN plans follow.
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"common", "__main__", "locustfile"}  # locustfile: run by Locust, not the suite
# Seeds first where later benchmarks reuse them (reprioritise prices the shared 1M-case seed for the rest).
ORDER = ["intake", "reprioritise", "claim", "leases", "pages", "metrics", "campaigns"]


def available() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name not in NOT_BENCHMARKS}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def _shown(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(rows) -> str:
    """The suite's table: one line per hot path."""
    head = ("hot path", "Docket", "bare SQL", "unit", "Docket/bare", "target", "met")
    body = [
        (
            r["path"],
            _shown(r["docket"]),
            _shown(r["bare"]),
            r["unit"],
            f"{r['ratio']:.0%}" if r.get("ratio") is not None else "-",
            r.get("target") or "",
            {True: "yes", False: "NO", None: ""}[r.get("met")],
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    align = ["<", ">", ">", "<", ">", "<", "<"]
    lines = ["  ".join(f"{c:{a}{w}}" for c, a, w in zip(head, align, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, align, widths, strict=True)) for r in body]
    notes = [f"  * {r['path']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + notes)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    forwarded = []
    if "--" in argv:
        cut = argv.index("--")
        argv, forwarded = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(available())}")
    parser.add_argument("--scale", type=float, default=1.0, help="size multiplier (default 1: 1,000,000 cases)")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(available())}")

    results: dict = {}
    compared: list = []
    plans: list = []
    suite_started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            env = {**os.environ, "DOCKET_BENCH_RESULT": str(out)}
            print(f"--- {name} (scale {args.scale:g})", flush=True)
            started = time.perf_counter()
            command = [sys.executable, "-m", f"bench.{name}", "--scale", str(args.scale), *forwarded]
            code = subprocess.call(command, cwd=HERE.parent, env=env)
            took = time.perf_counter() - started
            figures = json.loads(out.read_text()) if out.exists() else {}
            compared += [{"benchmark": name, **row} for row in figures.pop("__compare__", [])]
            plans += [{"benchmark": name, **plan} for plan in figures.pop("__explain__", [])]
            results[name] = {"exit": code, "seconds": round(took, 1), "figures": figures}
    total = time.perf_counter() - suite_started

    print()
    print(f"=== Docket vs bare SQL, same data, same run (scale {args.scale:g}, {os.cpu_count()} CPUs, {total:.0f} s)")
    print(table(compared) if compared else "(no hot path reported a comparison)")
    flagged = [p for p in plans if p["seq_scans_on_big_tables"]]
    print(
        f"\nEXPLAIN plans: {len(plans)} printed above; sequential scans of big tables in: "
        + (", ".join(f"{p['benchmark']}/{p['label']}" for p in flagged) or "none")
    )
    print()
    print(f"{'benchmark':<13} {'figure':<52} {'value':>18}")
    for name, result in results.items():
        rows = [(k, v) for group in result["figures"].values() for k, v in group.items()]
        rows = rows or [("(no figures reported)", "")]
        rows.append(("exit status / seconds", f"{result['exit']} / {result['seconds']}"))
        for i, (key, value) in enumerate(rows):
            print(f"{name if i == 0 else '':<13} {key:<52} {_shown(value):>18}")

    target = HERE / "results" / "latest.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(
        json.dumps(
            {
                "generated_at": datetime.now(UTC).isoformat(),
                "command": " ".join(["python -m bench", *sys.argv[1:]]),
                "scale": args.scale,
                "seconds": round(total, 1),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "table": compared,
                "results": results,
                "plans": plans,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nwritten: {target.relative_to(HERE.parent)}")
    return 0 if all(r["exit"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
