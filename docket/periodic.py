"""Periodic jobs: declared once beside their task, run by beat and by ``docket_tick``.

    @periodic(seconds=60)
    @shared_task
    def reprioritise_open_cases(): ...

registers the task for Celery beat every 60 seconds; ``manage.py docket_tick``
runs every registered job once, synchronously, in declaration order.

Beat fires ``run_periodic_job(name)``, which runs the job under a PostgreSQL
advisory lock named after it (``pg_try_advisory_lock``, held by the session
for the run, released at its end or when the connection dies with a killed
worker): a job still running when beat fires again is skipped, not doubled,
whichever worker or process the second firing lands on.
"""

import logging
import time
from dataclasses import dataclass
from importlib import import_module

from celery import shared_task
from django.apps import apps
from django.db import connection

log = logging.getLogger(__name__)

# The first key of the two-key advisory lock: Docket's periodic jobs (the second is hashtext(job name)).
LOCK_NAMESPACE = 0x646B7431  # "dkt1"
SKIPPED = "skipped: still running"


@dataclass(frozen=True)
class Job:
    name: str
    seconds: float
    task: object


_JOBS: dict[str, Job] = {}


def periodic(*, seconds):
    def register(task):
        _JOBS[task.name] = Job(task.name, seconds, task)
        return task

    return register


def jobs():
    """Every registered job; imports each app's ``tasks`` module first."""
    for config in apps.get_app_configs():
        try:
            import_module(f"{config.name}.tasks")
        except ModuleNotFoundError as e:
            if e.name != f"{config.name}.tasks":
                raise
    return list(_JOBS.values())


def job_run(name):
    """Run the job ``name`` once unless a run of it is in progress anywhere (then return ``SKIPPED``)."""
    job = _JOBS.get(name) or {j.name: j for j in jobs()}.get(name)
    if job is None:
        raise KeyError(f"no periodic job {name!r}")
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, name])
        (locked,) = cur.fetchone()
    if not locked:
        log.info("periodic job %s skipped: the previous run is still going", name)
        return SKIPPED
    started = time.monotonic()
    try:
        result = job.task.run()
        log.info("periodic job %s done in %.0f ms: %s", name, (time.monotonic() - started) * 1000, result)
        return result
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [LOCK_NAMESPACE, name])


@shared_task(ignore_result=True, name="docket.periodic.run_periodic_job")
def run_periodic_job(name):
    """What beat fires: the job ``name``, once at a time."""
    return job_run(name)


def beat_schedule():
    return {job.name: {"task": run_periodic_job.name, "args": (job.name,), "schedule": job.seconds} for job in jobs()}
