"""Row locks that change no key never block the foreign-key checks of rows that reference them.

Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: at COMMIT, a row that
references a case, a source or a reviewer takes FOR KEY SHARE on it. A lock
taken with FOR UPDATE conflicts with that, so intake's signals, events and
assignments would wait at COMMIT for whatever holds the parent row (a claim, a
decision, a periodic batch, the source health check). Docket locks rows it does
not re-key with FOR NO KEY UPDATE, which still excludes every other locker.
Real concurrent PostgreSQL connections.
"""

import pytest
from django.db import transaction
from django.utils import timezone

from casework import events
from casework.hygiene import _lock_source
from casework.intake import signals_ingest
from casework.services import case_events_add_bulk, lock_case
from docket import queueing
from reviews.services import queue_claim
from tests.factories import CaseFactory
from tests.support import lock_timeout, second_connection, second_connection_running

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(queueing, "_publish", lambda task, args, what: None)


def test_an_event_on_a_case_another_transaction_holds_commits_at_once():
    case = CaseFactory(kind="spam")
    # Another backend holds the case as a decision or a batch holds it.
    with second_connection_running(lambda: lock_case(case.pk)), lock_timeout():
        with transaction.atomic():
            case_events_add_bulk([(case.pk, events.note(text="while held"), None, timezone.now())])
        # and the holder still excludes every other locker
        with pytest.raises(Exception, match="lock timeout"), transaction.atomic():
            lock_case(case.pk)


def test_intake_commits_while_its_source_is_locked_by_an_admin_action(platform):
    with second_connection_running(lambda: _lock_source("user-reports")), lock_timeout():
        results = signals_ingest(
            items=[
                {
                    "source": "user-reports",
                    "external_id": "while-source-held",
                    "threat_class": "spam",
                    "subject": {"kind": "account", "external_id": "someone"},
                    "reporter": "r1",
                }
            ],
            actor=platform,
        )
    assert results.results[0]["disposition"] == "queued"


def test_a_claim_commits_while_its_reviewer_row_is_held_elsewhere_without_a_key_change(moderator):
    """The claim's assignment references the reviewer; a no-key lock on the reviewer is no obstacle at COMMIT."""
    CaseFactory(kind="spam", priority=5.0)
    reviewer = moderator.reviewer
    with second_connection() as other, lock_timeout():
        other.execute("SELECT 1 FROM reviews_reviewer WHERE id = %s FOR KEY SHARE", [reviewer.pk])
        assignment = queue_claim(reviewer=moderator, queue_slug="spam")
    assert assignment is not None
