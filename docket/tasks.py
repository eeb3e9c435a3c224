"""Thin Celery wrappers around the core's services."""

from celery import shared_task

from docket.identity.services import tokens_expired_record
from docket.periodic import periodic


@periodic(seconds=300)
@shared_task(ignore_result=True)
def record_expired_tokens():
    """Write the audit row of every API token that expired since the last run."""
    return tokens_expired_record()
