"""The kernel's scheduler statistics of a task (``/proc/<pid>/schedstat``): what the benchmarks read of the
PostgreSQL backends (the server runs on the benchmarking machine) and of the web server's threads."""

from pathlib import Path


def schedstat(task="thread-self") -> tuple[int, int] | None:
    """``(ns run on a core, ns waited runnable for one)`` of ``task`` (a pid, or ``"thread-self"``: the
    calling thread); None when unreadable (no such task, a server on another machine)."""
    try:
        run, wait, _ = Path(f"/proc/{task}/schedstat").read_text().split()
        return int(run), int(wait)
    except (OSError, ValueError):
        return None


def cpu_ns(task) -> int | None:
    """CPU time ``task`` has used, in ns; None when unreadable."""
    stat = schedstat(task)
    return None if stat is None else stat[0]
