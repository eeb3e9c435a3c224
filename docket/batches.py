"""Bounded batches for periodic work: short transactions, a time budget per run.

A periodic job that changes many rows does it ``size`` rows per transaction, so
no claim, decision or intake waits on a row it holds for longer than one batch,
and stops after ``budget_seconds`` (the next run carries on where it stopped)::

    batches(lambda size: _expire_some(size), size=500)

``step(size)`` runs one batch (locking with ``SKIP LOCKED``, so rows others
hold are left for the next run) and returns how many rows it handled; fewer
than ``size`` means nothing more is due.
"""

import time

from django.db import connection, transaction

# 100 rows a transaction: a batch of case rows is written (each row's indexes, its tally) in tens of
# milliseconds, so a claim, a decision or intake that wants one of its rows waits no longer than that.
BATCH_SIZE = 100
BUDGET_SECONDS = 20.0


def chunks(items, size: int):
    """``items`` (a sequence) in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def jit_off():
    """Turn PostgreSQL's JIT compilation off for the rest of the current transaction.

    The planner compiles a statement whose estimated cost passes ``jit_above_cost``;
    a batch statement over a few hundred rows of a large table (the priority
    refresh, say) passes it and then spends a second compiling to run for a
    fraction of that, all the while holding the rows it locked. Docket's statements
    are short; JIT never pays for itself there.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")


def sweep_settings():
    """``jit_off`` and an asynchronous commit, for the rest of a periodic job's batch transaction.

    A batch releases its rows at COMMIT; a synchronous commit first waits for its
    WAL to reach the disk, and on a busy server that wait holds the batch's rows for
    as long again as the batch itself. A periodic batch is a sweep that its next
    run redoes (what is due stays due until it is done), so a crash that loses its
    last fraction of a second loses nothing of record. Never for work a person or
    intake asked for: their commit is their answer.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL synchronous_commit = off")


def batches(step, *, size: int = BATCH_SIZE, budget_seconds: float | None = BUDGET_SECONDS) -> int:
    """Run ``step(size)`` in its own transaction until it handles fewer than ``size`` rows or time is up.

    ``budget_seconds=None``: until nothing is left (work a person asked for, such as a release).
    """
    started = time.monotonic()
    total = 0
    while True:
        with transaction.atomic():
            sweep_settings()
            done = step(size)
        total += done
        if done < size or (budget_seconds is not None and time.monotonic() - started > budget_seconds):
            return total
