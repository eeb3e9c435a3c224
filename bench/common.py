"""Shared benchmark plumbing: a dedicated database, an isolated Redis database, reporting figures.

    from bench import common
    common.setup(database="docket_bench")   # before importing models
    ...
    common.report("intake", {"api signals/s": 4100.0, ...})

``setup`` points Django at a database of its own on the configured PostgreSQL
server (``DATABASE_URL``, else the embedded one), created and migrated if needed,
and at Redis database 15 so task messages never reach a development worker.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

BENCH_DATABASE = os.environ.get("DOCKET_BENCH_DATABASE", "docket_bench")
BENCH_REDIS_DB = int(os.environ.get("DOCKET_BENCH_REDIS_DB", "15"))
RESULT_FILE_ENV = "DOCKET_BENCH_RESULT"


def _redis_url(db):
    url = os.environ.get("REDIS_URL")
    if not url:
        return None  # the embedded Redis: settings start it
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def setup(*, database: str = BENCH_DATABASE, fresh: bool = False, redis_db: int = BENCH_REDIS_DB) -> None:
    """Configure Django for the benchmark database (``fresh`` drops it first), migrate it, isolate Redis."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docket.settings")
    redis = _redis_url(redis_db)
    if redis:
        os.environ["REDIS_URL"] = redis
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    with connection.cursor() as cur:  # autocommit, as CREATE DATABASE needs
        if fresh:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{database}"')
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = database
    connections["default"].settings_dict["NAME"] = database
    call_command("migrate", verbosity=0)


def conninfo() -> str:
    """A libpq URL of the benchmark database, for bare-SQL comparisons on their own connections."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgresql://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def stopwatch():
    """``with stopwatch() as t: ...`` then ``t()`` is the elapsed seconds (frozen at exit)."""
    start = time.perf_counter()
    end = None

    def elapsed():
        return (end or time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def report(name: str, metrics: dict) -> None:
    """Print the figures and hand them to the runner (when run by ``python -m bench``)."""
    width = max(len(k) for k in metrics) if metrics else 0
    print(f"== {name}")
    for key, value in metrics.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else (f"{value:,}" if isinstance(value, int) else value)
        print(f"   {key:<{width}}  {shown}")
    path = os.environ.get(RESULT_FILE_ENV)
    if path:
        existing = {}
        if os.path.exists(path):
            with open(path) as f:
                existing = json.load(f)
        existing[name] = metrics
        with open(path, "w") as f:
            json.dump(existing, f, indent=2, default=str)
