"""gunicorn hooks for the benchmarks (``--config python:bench.gunicorn_hooks``): what each web worker did.

Each worker counts the requests it served and its garbage collector's collections (per generation: how
many, their CPU, the longest), and writes them when it exits to ``$DOCKET_BENCH_WORKER_STATS/<pid>.json``.
A collection holds the GIL of every thread of its process: a claim arriving meanwhile waits for it.
Each claim and decision is also timed inside the server, from the moment a thread starts handling it to
the moment its response is written: the wall time, and from the kernel's scheduler statistics
(``/proc/.../schedstat``: time run, time waited runnable for a core) the thread's CPU and its wait for a
core, and the same of the PostgreSQL backend serving the thread's connection (the server runs on this
machine in the benchmarks). What the client measures beyond the wall time is the connection's and the load
generator's (and the wait for a free thread); what the wall time holds beyond those four is waiting for
anything else: the GIL, a lock, the round trips themselves.
A request sent with the ``X-Bench-Warm`` header (a reviewer's untimed first round) is not timed.
``worker_stats`` reads them back. Nothing here changes how a request is served.
"""

import gc
import json
import os
import time
from pathlib import Path

from bench.schedstat import schedstat

from django.db import connection

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


def _backend_pid():
    raw = connection.connection  # the thread's own connection (Django's are per thread)
    return raw.info.backend_pid if raw is not None and not raw.closed else None


def pre_request(worker, req):
    _counts["requests"] += 1
    if _timed_kind(req):
        backend = _backend_pid()
        req.docket_started = (
            time.perf_counter(),
            schedstat(),
            backend,
            schedstat(backend) if backend else None,
        )


def post_request(worker, req, environ, resp):
    kind = _timed_kind(req)
    started = getattr(req, "docket_started", None)
    if not (kind and started):
        return
    at, thread0, backend, backend0 = started
    wall = time.perf_counter() - at
    thread1 = schedstat()
    # The same backend before and after (a connection reopened meanwhile is not measured).
    backend1 = schedstat(backend) if backend and _backend_pid() == backend else None
    parts = [None, None, None, None]
    if thread0 and thread1:
        parts[0:2] = [(thread1[i] - thread0[i]) / 1e6 for i in (0, 1)]
    if backend0 and backend1:
        parts[2:4] = [(backend1[i] - backend0[i]) / 1e6 for i in (0, 1)]
    _counts["timed"][kind].append([round(wall * 1000, 2), *(None if p is None else round(p, 2) for p in parts)])


def worker_exit(server, worker):
    folder = os.environ.get(STATS_DIR_ENV)
    if folder:
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps(_counts))


def worker_stats(folder) -> list[dict]:
    """Each worker's ``{"requests": n, "gc": {generation: [collections, cpu_seconds, longest_seconds]},
    "timed": {"claim" | "decision": [[wall, thread CPU, thread's wait for a core, backend CPU, backend's wait
    for a core] in ms (None where not measured), ...]}}``."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
