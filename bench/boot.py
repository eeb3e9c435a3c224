"""Django, ready for a benchmark as soon as this module is imported.

Benchmarks import models and services at their top like every other module, so Django has to be set up
before those imports run. This module does that, once, on import: it points Django at ``docket.settings``,
sends task messages to the benchmark Redis database (``DOCKET_BENCH_REDIS_DB``, default 15) so they never
reach a development worker, and runs ``django.setup()``. Nothing here opens a database connection; which
database a benchmark uses is chosen afterwards by ``bench.common.setup`` or ``bench.common.scale_setup``.

The pattern, in every benchmark::
    from bench import common          # imports this module first
    from casework.models import Case  # models, services and selectors at the top

The ``bench`` imports stay ahead of Django's and every other third-party import (``[tool.ruff.lint.isort]``
in ``pyproject.toml`` gives them their own section), so no settings are read before the Redis database is
chosen.
"""

import os
from urllib.parse import urlsplit, urlunsplit

import django

BENCH_REDIS_DB = int(os.environ.get("DOCKET_BENCH_REDIS_DB", "15"))


def redis_url(db: int = BENCH_REDIS_DB) -> str | None:
    """``REDIS_URL`` with database ``db``; None when Redis is the embedded one (the settings start it)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docket.settings")
if redis_url():
    os.environ["REDIS_URL"] = redis_url()
django.setup()
