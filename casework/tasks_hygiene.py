"""Periodic signal-hygiene jobs: thin wrappers, state lives in PostgreSQL so reruns are harmless."""

from celery import shared_task

from docket.periodic import periodic

from .campaigns import campaigns_detect
from .hygiene import sources_check_health


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


__all__ = ["check_source_health", "detect_campaigns"]
