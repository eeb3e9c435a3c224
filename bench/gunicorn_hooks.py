"""gunicorn hooks for the benchmarks (``--config python:bench.gunicorn_hooks``): what each web worker did.

Each worker counts the requests it served and its garbage collector's collections (per generation: how
many, their CPU, the longest), and writes them when it exits to ``$DOCKET_BENCH_WORKER_STATS/<pid>.json``.
A collection holds the GIL of every thread of its process: a claim arriving meanwhile waits for it.
Each claim and decision is also timed inside the server, from the moment a thread starts handling it to
the moment its response is written: the wall time and the CPU its thread used. What the client measures
beyond the wall time is the connection's and the load generator's (and the wait for a free thread); what
the wall time holds beyond the thread's CPU is waiting (for PostgreSQL, for the GIL, for a core).
A request sent with the ``X-Bench-Warm`` header (a reviewer's untimed first round) is not timed.
``worker_stats`` reads them back. Nothing here changes how a request is served.
"""

import gc
import json
import os
import time
from pathlib import Path

STATS_DIR_ENV = "DOCKET_BENCH_WORKER_STATS"  # set by the benchmark that starts gunicorn
_counts = {"requests": 0, "gc": {str(g): [0, 0.0, 0.0] for g in range(3)}, "timed": {"claim": [], "decision": []}}
_started = [0.0]


def _on_gc(phase, info):
    if phase == "start":
        _started[0] = time.thread_time()
        return
    cpu = time.thread_time() - _started[0]
    entry = _counts["gc"][str(info["generation"])]
    entry[0] += 1
    entry[1] += cpu
    entry[2] = max(entry[2], cpu)


def post_worker_init(worker):
    gc.callbacks.append(_on_gc)


def _timed_kind(req):
    """``claim`` or ``decision`` for a request to time (the reviewers' API round), else None."""
    if any(name == "X-BENCH-WARM" for name, _ in req.headers):
        return None
    if req.path.endswith("/claim/"):
        return "claim"
    if req.path.endswith("/decision/"):
        return "decision"
    return None


def pre_request(worker, req):
    _counts["requests"] += 1
    req.docket_started = (time.perf_counter(), time.thread_time())


def post_request(worker, req, environ, resp):
    kind = _timed_kind(req)
    started = getattr(req, "docket_started", None)
    if kind and started:
        wall, cpu = time.perf_counter() - started[0], time.thread_time() - started[1]
        _counts["timed"][kind].append([round(wall * 1000, 2), round(cpu * 1000, 2)])


def worker_exit(server, worker):
    folder = os.environ.get(STATS_DIR_ENV)
    if folder:
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(_counts))


def worker_stats(folder) -> list[dict]:
    """Each worker's ``{"requests": n, "gc": {generation: [collections, cpu_seconds, longest_seconds]},
    "timed": {"claim" | "decision": [[wall_ms, thread_cpu_ms], ...]}}``."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
