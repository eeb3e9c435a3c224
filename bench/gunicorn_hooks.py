"""gunicorn hooks for the benchmarks (``--config python:bench.gunicorn_hooks``): what each web worker did.

Each worker counts the requests it served and its garbage collector's collections (per generation: how
many, their CPU, the longest), and writes them when it exits to ``$DOCKET_BENCH_WORKER_STATS/<pid>.json``.
A collection holds the GIL of every thread of its process: a claim arriving meanwhile waits for it.
``worker_stats`` reads them back. Nothing here changes how a request is served.
"""

import gc
import json
import os
import time
from pathlib import Path

STATS_DIR_ENV = "DOCKET_BENCH_WORKER_STATS"  # set by the benchmark that starts gunicorn
_counts = {"requests": 0, "gc": {str(g): [0, 0.0, 0.0] for g in range(3)}}
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


def pre_request(worker, req):
    _counts["requests"] += 1


def worker_exit(server, worker):
    folder = os.environ.get(STATS_DIR_ENV)
    if folder:
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(_counts))


def worker_stats(folder) -> list[dict]:
    """Each worker's ``{"requests": n, "gc": {generation: [collections, cpu_seconds, longest_seconds]}}``."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
