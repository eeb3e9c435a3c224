"""Helpers shared by the test modules (one copy, imported; not redefined per module)."""

import threading

import psycopg
import pytest
from django.db import connection
from django.test import Client

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
