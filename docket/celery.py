import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docket.settings")

app = Celery("docket")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_periodic_jobs(sender, **kwargs):
    # Imported here: this module loads with the ``docket`` package, before Django's settings and
    # apps, and ``docket.periodic`` reads the app registry.
    from docket.periodic import beat_schedule

    sender.conf.beat_schedule = beat_schedule()
