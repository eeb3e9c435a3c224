"""Casework's Celery tasks: thin wrappers around services, idempotent, taking ids."""

from celery import shared_task

from docket.periodic import periodic

from .priority import case_reprioritise, cases_reprioritise_due
from .tallies import queue_tallies_compact


@shared_task(ignore_result=True)
def reprioritise_cases(case_ids):
    """Refresh these cases' inputs and priority (enqueued by intake after commit)."""
    return case_reprioritise(case_ids=case_ids)


@periodic(seconds=15)
@shared_task(ignore_result=True)
def reprioritise_open_cases():
    """Re-rank the cases whose order changes by itself now (SLA breach, velocity window), in short batches."""
    return cases_reprioritise_due()


@periodic(seconds=30)
@shared_task(ignore_result=True)
def compact_queue_tallies():
    """Fold the queue tallies' appended rows into one per (queue, class, recent hour): reads stay a few rows."""
    return queue_tallies_compact()


from casework.tasks_hygiene import *  # noqa: E402,F401,F403
from casework.tasks_retention import *  # noqa: E402,F401,F403
