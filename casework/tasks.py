"""Casework's Celery tasks: thin wrappers around services, idempotent, taking ids."""

from celery import shared_task

from docket.periodic import periodic

from .priority import case_reprioritise, cases_reprioritise_all


@shared_task(ignore_result=True)
def reprioritise_cases(case_ids):
    """Refresh these cases' inputs and priority (enqueued by intake after commit)."""
    return case_reprioritise(case_ids=case_ids)


@periodic(seconds=60)
@shared_task(ignore_result=True)
def reprioritise_open_cases():
    """Every active case, in one UPDATE: aging and velocity move with time, reporter accuracy with decisions."""
    return cases_reprioritise_all()


from casework.tasks_hygiene import *  # noqa: E402,F401,F403
from casework.tasks_retention import *  # noqa: E402,F401,F403
