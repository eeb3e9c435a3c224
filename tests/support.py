"""Helpers shared by the test modules (one copy, imported; not redefined per module)."""

import os
import signal
import subprocess
import threading
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from docket.errors import DocketError


def second_connection(*, autocommit=False):
    """A psycopg connection of its own to the database Django's connection uses (a second backend)."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db.get("PASSWORD") or None,
        dbname=db["NAME"],
        autocommit=autocommit,
    )


@contextmanager
def second_connection_running(work):
    """A second connection in the middle of ``work()``: it has sent the statements ``work`` sends, in a transaction
    held open for the block (their row locks held, their writes not yet visible), committed when the block ends.

    ``work`` first runs on Django's connection, in a transaction rolled back, to learn its statements (with their
    parameters bound); the block receives what it returned then. So a Docket function (a case lock, a periodic
    batch) holds its own locks on another backend while the test runs other Docket code on Django's.
    """
    with CaptureQueriesContext(connection) as sent, transaction.atomic():
        result = work()
        transaction.set_rollback(True)
    statements = [q["sql"] for q in sent.captured_queries if q["sql"] not in ("BEGIN", "COMMIT", "ROLLBACK")]
    with second_connection() as other:
        for sql in statements:
            other.execute(sql)
        yield result


@contextmanager
def lock_timeout(duration="1s"):
    """Within the block, a lock wait on Django's connection fails after ``duration`` instead of hanging."""
    with connection.cursor() as cur:
        cur.execute(f"SET lock_timeout = '{duration}'")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET lock_timeout")


def signed_in(user, **kwargs):
    """A test client with ``user``'s session (``kwargs`` go to ``Client``)."""
    client = Client(**kwargs)
    client.force_login(user)
    return client


def refused(code, status, fn):
    """Run ``fn``; it must raise ``DocketError`` with this ``code`` and HTTP ``status``. Returns the error."""
    with pytest.raises(DocketError) as exc:
        fn()
    assert (exc.value.code, exc.value.status) == (code, status)
    return exc.value


def refused_code(code, fn):
    """Run ``fn``; it must raise ``DocketError`` with this ``code`` (whatever its HTTP status). Returns the error."""
    with pytest.raises(DocketError) as exc:
        fn()
    assert exc.value.code == code, exc.value.detail
    return exc.value


def run_threads(n, work):
    """Start ``n`` threads at one barrier; each runs ``work(i)`` and closes its own connection."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def target(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as e:  # surfaced by the assertion below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def cases_copied_without_statistics(cur, copies, *, subject_offset=0, forget=("casework_case",)):
    """A large ``casework_case`` the planner knows nothing about, inside the caller's rolled-back transaction.

    ``copies`` maps a case id to how many copies of it to insert (under made-up negative subject ids, from
    ``-subject_offset - 1`` down per case); then the statistics of the ``forget`` tables are dropped, as in a
    test database or a new installation before its first ANALYZE, and sequential scans are priced out, so
    what a test sees is the index walk a plan chose. The caller rolls back: the copies go, and their foreign
    keys are never checked (they are deferred to a commit that never comes).
    """
    cur.execute(
        "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns"
        " WHERE table_name = 'casework_case' AND column_name NOT IN ('id', 'subject_id')"
    )
    columns = cur.fetchone()[0]
    for case_id, count in copies.items():
        cur.execute(
            f"INSERT INTO casework_case (subject_id, {columns}) SELECT -g - %s, {columns}"
            " FROM casework_case, generate_series(1, %s) g WHERE id = %s",
            [subject_offset, count, case_id],
        )
        subject_offset += count
    cur.execute("DELETE FROM pg_statistic WHERE starelid = ANY(%s::regclass[])", [list(forget)])
    cur.execute("SET LOCAL enable_seqscan = off")


def rows_fetched(cur, table) -> int:
    """Rows of ``table`` this transaction has fetched so far (index fetches and sequential reads)."""
    cur.execute("SELECT idx_tup_fetch + seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = %s", [table])
    return cur.fetchone()[0]


def rows_updated(cur, table) -> int:
    """Row versions of ``table`` this transaction has written by UPDATE so far."""
    cur.execute("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s", [table])
    return cur.fetchone()[0]


def case_rows_fetched(cur) -> int:
    """Rows of ``casework_case`` this transaction has fetched so far."""
    return rows_fetched(cur, "casework_case")


def process_env(**extra) -> dict:
    """The environment of a Docket process (gunicorn, a Celery worker) on the test database and Redis."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "docket.settings",
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        **extra,
    }


def process_stop(process, *, grace=20):
    """SIGTERM, and SIGKILL if it has not exited within ``grace`` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
