"""How ``make run`` serves (``docket.run.web_serving_args``), tried on a real gunicorn."""

import http.client
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from docket.run import web_serving_args
from tests.reliability.test_faults import free_port, wait_for
from tests.support import process_env, process_stop

ROOT = Path(__file__).resolve().parents[2]
PAUSE_SECONDS = 3  # a reviewer reading a case before posting its form: longer than gunicorn's 2 s default


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_form_posted_after_a_pause_goes_out_on_the_open_connection():
    env = process_env(DOCKET_CACHE_PREFIX=f"serving-{uuid.uuid4().hex[:8]}", CELERY_TASK_ALWAYS_EAGER="1")
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "docket.wsgi", f"--bind=127.0.0.1:{port}"]
    command += [*web_serving_args(1, 2), "--log-level", "warning"]
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log)
    try:

        def up():
            try:
                return requests.get(f"http://127.0.0.1:{port}/login/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, 90, "gunicorn to answer")
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        client.request("GET", "/login/")
        first = client.getresponse()
        first.read()
        assert first.status == 200
        opened = client.sock

        time.sleep(PAUSE_SECONDS)
        # No retry here: a connection the server closed during the pause fails this request.
        client.request("POST", "/login/", body="username=x&password=y", headers={"Content-Type": "text/plain"})
        second = client.getresponse()
        second.read()

        assert client.sock is opened, "the same connection carried both requests"
        assert second.status == 403  # refused for its missing CSRF token, by the application: it arrived
        client.close()
    finally:
        process_stop(server)
        log.close()


def test_every_worker_is_forked_from_the_loaded_application():
    """Loaded before the fork, every worker can serve the moment the server answers: a team's connections
    opened at once after a restart no longer all land on the first worker that finished importing."""
    assert "--preload" in web_serving_args(2, 8)


@pytest.mark.django_db
def test_a_web_process_freezes_what_loading_made():
    """A full collection then walks only what requests made, not the application (some 100,000 objects)."""
    probe = "import gc, docket.wsgi; print(gc.get_freeze_count())"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 50_000
