import pytest
from django.core.management import call_command

from docket.celery import app
from docket.periodic import beat_schedule, jobs


def test_beat_schedule_matches_registered_jobs():
    schedule = beat_schedule()
    assert set(schedule) == {job.name for job in jobs()}
    for job in jobs():
        assert job.name in app.tasks or app.tasks.get(job.name) is not None
        assert schedule[job.name]["schedule"] == job.seconds


@pytest.mark.django_db
def test_docket_tick_runs_every_job(capsys):
    call_command("docket_tick")
    out = capsys.readouterr().out
    for job in jobs():
        assert f"{job.name}: ok" in out
