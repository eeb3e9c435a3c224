"""Thin Celery wrappers around the reviews services; idempotent, state lives in PostgreSQL."""

from celery import shared_task

from docket.periodic import periodic

from .notices import notices_deliver_due
from .services.claims import leases_expire
from .sla import cases_escalate_sla_breaches
from .statements import statements_submit_due
from .webhooks import enforcement_deliver, enforcements_deliver_due


@shared_task(ignore_result=True)
def deliver_enforcements(enforcement_ids):
    """Deliver these outbox rows now, one after another (enqueued after the decisions commit); retries come
    from the sweep. Their outcomes, in order."""
    return [enforcement_deliver(enforcement_id=enforcement_id) for enforcement_id in enforcement_ids]


@periodic(seconds=30)
@shared_task(ignore_result=True)
def deliver_due_enforcements():
    """Deliver every pending row whose time has come (first tries missed by the broker, and retries)."""
    return enforcements_deliver_due()


@periodic(seconds=30)
@shared_task(ignore_result=True)
def expire_leases():
    """Return cases whose lease ran out to their queue."""
    return leases_expire()


@periodic(seconds=60)
@shared_task(ignore_result=True)
def escalate_sla_breaches():
    """Hand high-severity cases nobody took before their SLA to the seniors."""
    return cases_escalate_sla_breaches()


@periodic(seconds=60)
@shared_task(ignore_result=True)
def submit_statements():
    """Submit due statements of reasons to the EU Transparency Database (batches of 100, with backoff)."""
    return statements_submit_due()


@periodic(seconds=30)
@shared_task(ignore_result=True)
def deliver_due_notices():
    """Deliver pending notices to reporters and appellants (first tries and retries)."""
    return notices_deliver_due()
