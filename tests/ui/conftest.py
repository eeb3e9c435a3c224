from contextlib import contextmanager

import pytest
from django.core.cache import cache

from casework.models import Case, CaseEvent
from reviews.models import Assignment, Decision


@pytest.fixture(autouse=True)
def private_cache(settings):
    """A per-test in-memory cache: the metrics snapshot and login throttle never leak between tests."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ui"}}

    cache.clear()


def db_state():
    """What a UI action may change, to assert that a refusal changed nothing."""
    return {
        "cases": sorted(Case.objects.values_list("id", "status", "queue_id")),
        "assignments": sorted(Assignment.objects.values_list("id", "state", "reviewer_id", "lease_expires_at")),
        "events": CaseEvent.objects.count(),
        "decisions": Decision.objects.count(),
    }


@pytest.fixture
def unchanged():
    @contextmanager
    def check():
        before = db_state()
        yield
        assert db_state() == before

    return check


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []
