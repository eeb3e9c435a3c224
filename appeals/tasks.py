"""Thin Celery wrappers for appeals.

Deliberately, no task resolves an appeal: resolution is a named human's act
(``appeals.services.appeal_resolve``). The only periodic job returns claims
that were held too long to the queue, for another human.
"""

from celery import shared_task

from docket.periodic import periodic

from .services import appeals_release_stale


@periodic(seconds=300)
@shared_task(ignore_result=True)
def release_stale_appeal_claims():
    """Appeals held past ``DOCKET["APPEAL_CLAIM_HOURS"]`` go back to the appeals queue."""
    return appeals_release_stale()
