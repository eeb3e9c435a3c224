"""Pooled database connections survive the database dropping them (a restart, a failover)."""

import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection

from docket.accounts import token_for
from docket.rows import prepared
from tests.reliability.test_faults import free_port, wait_for
from tests.support import process_env, process_stop

ROOT = Path(__file__).resolve().parents[2]
SERVER_APP_NAME = "docket-pooled-connection-test"


def _server(port):
    env = process_env(
        DB_CONN_MAX_AGE="600",  # one pooled connection, reused by every request of the worker
        DOCKET_CACHE_PREFIX=f"conn-{uuid.uuid4().hex[:8]}",
        CELERY_TASK_ALWAYS_EAGER="1",
        # libpq names the server's connections, so the test drops only those (never the test
        # process's own, such as a live server thread's, which later tests still use).
        PGAPPNAME=SERVER_APP_NAME,
    )
    command = [sys.executable, "-m", "gunicorn", "docket.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}"]
    log = tempfile.TemporaryFile()
    return subprocess.Popen(command + ["--log-level", "warning"], cwd=ROOT, env=env, stderr=log), log


def _server_backends():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [SERVER_APP_NAME],
        )
        return [pid for (pid,) in cur.fetchall()]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_request_after_the_database_drops_pooled_connections_is_answered(make_user):
    token = token_for(make_user("pooled-mod", "moderator"))
    port = free_port()
    server, log = _server(port)
    url = f"http://127.0.0.1:{port}/api/v1/sources/"
    headers = {"Authorization": f"Token {token}"}
    try:

        def up():
            try:
                return requests.get(url, headers=headers, timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, 90, "gunicorn to answer")
        backends = _server_backends()
        assert backends, "the worker keeps its connection open between requests"
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [backends])
        time.sleep(0.2)

        statuses = [requests.get(url, headers=headers, timeout=10).status_code for _ in range(5)]

        assert statuses == [200] * 5
        assert not set(_server_backends()) & set(backends)
    finally:
        process_stop(server)
        log.close()


@pytest.mark.django_db
def test_docket_connections_run_without_jit():
    """A short statement whose estimate passes ``jit_above_cost`` is not compiled (the server's default is on)."""
    with connection.cursor() as cur:
        cur.execute("SELECT current_setting('jit')")
        assert cur.fetchone()[0] == "off"


def _database_setting(variable, value, expression) -> list[str]:
    """``expression`` (of ``settings.DATABASES['default']``) in a new process, without ``variable`` and with it."""
    script = f"import django; from django.conf import settings; django.setup(); print({expression})"
    env = {k: v for k, v in process_env().items() if k != variable}
    return [
        subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=extra, capture_output=True, text=True, check=True
        ).stdout.strip()
        for extra in (env, {**env, variable: value})
    ]


def test_a_connection_is_kept_ten_minutes_unless_configured():
    """A thread's connection outlives many requests (a new one costs a request a backend start and cold caches)."""
    ages = _database_setting("DB_CONN_MAX_AGE", "0", "settings.DATABASES['default']['CONN_MAX_AGE']")
    assert ages == ["600", "0"]


def _prepared_statements():
    with connection.cursor() as cur:
        cur.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cur.fetchall())


@pytest.mark.django_db
def test_hot_statements_are_prepared_once_per_connection_and_orm_queries_never():
    """``docket.rows.prepared`` prepares on the server (Django leaves psycopg's preparation off unless asked):
    the statement is planned once per connection and its later runs reuse it; the ORM's are not prepared."""
    sql = "SELECT count(*) FROM policies_threatclass WHERE slug <> %(slug)s"
    for i in range(7):
        with prepared(sql, {"slug": f"none-{i}"}) as cur:
            assert cur.fetchone()[0] >= 0
    list(get_user_model().objects.filter(username="nobody"))
    list(get_user_model().objects.filter(username="nobody"))

    runs = {
        text: n for text, n in _prepared_statements().items() if "policies_threatclass" in text or "auth_user" in text
    }
    assert runs == {"SELECT count(*) FROM policies_threatclass WHERE slug <> $1": 7}


def test_db_prepare_0_turns_preparation_off_for_poolers():
    thresholds = _database_setting(
        "DB_PREPARE", "0", "settings.DATABASES['default']['OPTIONS'].get('prepare_threshold')"
    )
    assert thresholds == [str(2**31 - 1), "None"]
