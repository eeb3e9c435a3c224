"""Publishing Celery tasks after commit, behind one broker circuit breaker.

``enqueue_on_commit(task, *args, what=...)`` publishes ``task.delay(*args)``
once the surrounding transaction commits (immediately outside one). The work
it asks for is never lost when the broker is down: every task enqueued here
has a periodic sweep that does the same work (reprioritisation, enforcement
delivery). So a publish failure only logs, and opens the breaker: for
``BACKOFF_SECONDS`` further publishes are skipped instead of each waiting for
the broker's connection timeout on a request path (intake, decisions).
"""

import functools
import logging
import time

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)

BACKOFF_SECONDS = 30
_down_until = 0.0


def broker_down() -> bool:
    """Whether a recent publish failed and publishing is paused (the breaker is open)."""
    return time.monotonic() < _down_until


def _publish(task, args, what):
    global _down_until
    if broker_down():
        log.info("broker marked down: not enqueuing %s; the periodic sweep will do it", what)
        return
    try:
        if isinstance(task, str):
            # By name, for a service whose app's tasks module imports that service (no import cycle).
            registered = current_app.tasks.get(task)
            if registered is None:
                current_app.send_task(task, args)
                return
            task = registered
        task.delay(*args)
    except Exception:  # any publish failure: the caller has committed and must answer
        _down_until = time.monotonic() + BACKOFF_SECONDS
        log.warning("could not enqueue %s; the periodic sweep will", what, exc_info=True)


def enqueue_on_commit(task, *args, what: str) -> None:
    """After the current transaction commits, ``task.delay(*args)``; a broker outage only logs (see module doc).

    ``task`` is a Celery task or its registered name (``"reviews.tasks.deliver_enforcements"``).
    """
    transaction.on_commit(functools.partial(_publish, task, args, what))
