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

from django.db import transaction

BATCH_SIZE = 500
BUDGET_SECONDS = 20.0


def batches(step, *, size: int = BATCH_SIZE, budget_seconds: float | None = BUDGET_SECONDS) -> int:
    """Run ``step(size)`` in its own transaction until it handles fewer than ``size`` rows or time is up.

    ``budget_seconds=None``: until nothing is left (work a person asked for, such as a release).
    """
    started = time.monotonic()
    total = 0
    while True:
        with transaction.atomic():
            done = step(size)
        total += done
        if done < size or (budget_seconds is not None and time.monotonic() - started > budget_seconds):
            return total
