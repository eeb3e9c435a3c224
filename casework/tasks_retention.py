from celery import shared_task

from docket.periodic import periodic

from .retention import cases_purge_personal_data


@periodic(seconds=3600)
@shared_task(acks_late=True)
def purge_personal_data():
    """Purge personal data of closed cases past retention (idempotent, batched)."""
    total = 0
    while purged := cases_purge_personal_data():
        total += purged
    return total
