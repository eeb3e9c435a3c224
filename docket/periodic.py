"""Periodic jobs: declared once beside their task, run by beat and by ``docket_tick``.

    @periodic(seconds=60)
    @shared_task
    def reprioritise_open_cases(): ...

registers the task for Celery beat every 60 seconds; ``manage.py docket_tick``
runs every registered job once, synchronously, in declaration order.
"""

from dataclasses import dataclass
from importlib import import_module

from django.apps import apps


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


def beat_schedule():
    return {job.name: {"task": job.name, "schedule": job.seconds} for job in jobs()}
