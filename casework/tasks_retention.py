from celery import shared_task

from docket.batches import batches
from docket.periodic import periodic

from .retention import cases_purge_personal_data


@periodic(seconds=3600)
@shared_task(acks_late=True)
def purge_personal_data():
    """Purge personal data of closed cases past retention (idempotent, in short batches within a time budget)."""
    return batches(lambda size: cases_purge_personal_data(batch=size), size=1000)
