"""Thin Celery wrappers for governance and the guard metrics."""

from celery import shared_task

from docket.periodic import periodic


@periodic(seconds=60)
@shared_task(ignore_result=True)
def refresh_metrics():
    """Warm the guard-metrics cache for every clearance set in use; returns how many snapshots."""
    from docket.metrics import metrics_refresh

    return metrics_refresh()
