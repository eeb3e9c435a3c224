"""``python -m bench [names…] [-- args…]``: run benchmarks, print one table, write bench/results/latest.json.

With no names, every benchmark module of this package runs. Arguments after
``--`` go to each selected benchmark (e.g. ``python -m bench intake -- --signals 20000``).
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
NOT_BENCHMARKS = {"common", "__main__"}


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name not in NOT_BENCHMARKS)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    forwarded = []
    if "--" in argv:
        cut = argv.index("--")
        argv, forwarded = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(available())}")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(available())}")

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            env = {**os.environ, "DOCKET_BENCH_RESULT": str(out)}
            print(f"--- {name}", flush=True)
            started = time.perf_counter()
            code = subprocess.call([sys.executable, "-m", f"bench.{name}", *forwarded], cwd=HERE.parent, env=env)
            took = time.perf_counter() - started
            figures = json.loads(out.read_text()) if out.exists() else {}
            results[name] = {"exit": code, "seconds": round(took, 1), "figures": figures}

    print()
    print(f"{'benchmark':<12} {'figure':<44} {'value':>16}")
    for name, result in results.items():
        rows = [(k, v) for group in result["figures"].values() for k, v in group.items()]
        rows = rows or [("(no figures reported)", "")]
        rows.append(("exit status / seconds", f"{result['exit']} / {result['seconds']}"))
        for i, (key, value) in enumerate(rows):
            shown = f"{value:,.1f}" if isinstance(value, float) else (f"{value:,}" if isinstance(value, int) else value)
            print(f"{name if i == 0 else '':<12} {key:<44} {shown:>16}")

    target = HERE / "results" / "latest.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(
        json.dumps(
            {
                "generated_at": datetime.now(UTC).isoformat(),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "results": results,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nwritten: {target.relative_to(HERE.parent)}")
    return 0 if all(r["exit"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
