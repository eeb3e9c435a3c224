"""Helpers shared by the test modules (one copy, imported; not redefined per module)."""

import threading
from contextlib import contextmanager

import psycopg
import pytest
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
