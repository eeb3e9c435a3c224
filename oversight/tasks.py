"""Thin Celery wrappers for the guard metrics."""

from celery import shared_task

from docket.periodic import periodic
from oversight.metrics import metrics_refresh


# The task keeps the name it had when it lived in policies: beat schedules and queued messages still find it.
@periodic(seconds=60)
@shared_task(ignore_result=True, name="policies.tasks.refresh_metrics")
def refresh_metrics():
    """Warm the guard-metrics cache for every clearance set in use; returns how many snapshots."""
    return metrics_refresh()
