"""Casework's Celery tasks: thin wrappers around services, idempotent, taking ids.

State lives in PostgreSQL, so a rerun or a duplicate is harmless.
"""

from celery import shared_task

from docket.periodic import periodic

from .campaigns import campaigns_detect
from .hygiene import sources_check_health
from .priority import case_reprioritise, cases_reprioritise_due
from .retention import cases_purge_personal_data
from .tallies import queue_tallies_compact


@shared_task(ignore_result=True)
def reprioritise_cases(case_ids):
    """Refresh these cases' inputs and priority now.

    Intake ranks the cases it touches inside its own transaction and enqueues nothing; this
    task still runs messages an earlier release queued (idempotent: a re-rank of current inputs).
    """
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


# --- signal hygiene --------------------------------------------------------------------------------


@periodic(seconds=300)
@shared_task(acks_late=True)
def check_source_health():
    """Refresh source rates and score summaries; mark uncorroborated spikes suspect, open incidents."""
    return sources_check_health()


@periodic(seconds=600)
@shared_task(acks_late=True)
def detect_campaigns():
    """Cluster subjects sharing attribute values into campaigns."""
    return campaigns_detect()


# --- retention -------------------------------------------------------------------------------------


@periodic(seconds=3600)
@shared_task(acks_late=True)
def purge_personal_data():
    """Purge personal data of closed cases past retention (idempotent, in short batches within a time budget)."""
    return cases_purge_personal_data()
