from contextlib import contextmanager

import pytest

from casework.models import Case, CaseEvent, Reporter
from reviews import tasks
from reviews.models import Assignment, Decision, Enforcement, QualityReview, Strike


def db_state():
    """Everything a reviews service may write, to assert a refusal changed nothing."""
    return {
        "cases": sorted(Case.objects.values_list("id", "status", "queue_id", "decided_at")),
        "assignments": sorted(
            Assignment.objects.values_list("id", "case_id", "reviewer_id", "state", "lease_expires_at")
        ),
        "events": CaseEvent.objects.count(),
        "decisions": sorted(Decision.objects.values_list("id", "action", "overturned")),
        "enforcements": sorted(Enforcement.objects.values_list("id", "kind", "action", "status")),
        "strikes": sorted(Strike.objects.values_list("id", "removed_at")),
        "reporters": sorted(Reporter.objects.values_list("id", "reports_decided", "reports_upheld")),
        "qa": QualityReview.objects.count(),
    }


@pytest.fixture
def unchanged():
    """``with unchanged(): ...`` asserts the block left the database as it found it."""

    @contextmanager
    def check():
        before = db_state()
        yield
        assert db_state() == before

    return check


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Delivery tasks are recorded, not published to the shared broker; the list of enforcement ids."""

    calls = []
    monkeypatch.setattr(tasks.deliver_enforcements, "delay", lambda enforcement_ids: calls.extend(enforcement_ids))
    return calls
