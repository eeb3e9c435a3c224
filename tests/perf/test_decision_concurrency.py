"""The two-statement decision under real concurrency: separate PostgreSQL connections, one per thread.

``decision_make`` locks the case and completes the assignment in one round trip
and writes everything else in one statement; these tests hold it to the same
promises as before: one decision per case whatever the races, every row once.
"""

from collections import Counter

import pytest

from casework.models import Case, CaseEvent, Reporter
from docket.errors import DocketError
from reviews import tasks
from reviews.accounts import user_upsert
from reviews.models import Assignment, Decision, Enforcement, Strike
from reviews.services import decision_make, queue_claim
from tests.factories import CaseFactory, ReporterFactory, SignalFactory
from tests.support import run_threads

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Deliveries recorded, not published."""

    calls = []
    monkeypatch.setattr(tasks.deliver_enforcements, "delay", lambda enforcement_ids: calls.extend(enforcement_ids))
    return calls


def test_a_decision_submitted_eight_times_at_once_is_recorded_once(no_broker):
    user = user_upsert(username="holder", role_names=["moderator"])
    case = CaseFactory(kind="spam")
    reporter = ReporterFactory()
    SignalFactory(subject=case.subject, disposition="queued", case=case, reporter=reporter)
    assert queue_claim(reviewer=user, queue_slug="spam").case_id == case.pk

    def decide(_):
        try:
            return decision_make(case_id=case.pk, reviewer=user, action="remove", rule="SP-1").pk
        except DocketError as e:
            return e.code

    results = run_threads(8, decide)

    decided = [r for r in results if isinstance(r, int)]
    assert len(decided) == 1
    # The losers found the assignment completed by the winner: not theirs any more.
    assert Counter(r for r in results if not isinstance(r, int)) == {"not_assignee": 7}
    assert Decision.objects.count() == 1
    assert Enforcement.objects.filter(decision_id=decided[0]).count() == 1
    assert Strike.objects.filter(decision_id=decided[0]).count() == 1
    assert CaseEvent.objects.filter(case=case, kind="decided").count() == 1
    assert Case.objects.get(pk=case.pk).status == "decided"
    reporter.refresh_from_db()
    assert (reporter.reports_decided, reporter.reports_upheld) == (1, 1)
    assert no_broker == [Enforcement.objects.get().pk]


def test_reviewers_claiming_and_deciding_at_once_decide_each_case_once_and_count_each_report_once(no_broker):
    users = [user_upsert(username=f"r{i}", role_names=["moderator"], max_active=3) for i in range(8)]
    shared = ReporterFactory.create_batch(2)  # every case reported by both: their rows are contended
    cases = CaseFactory.create_batch(40, kind="spam", reporter_count=2, signal_count=2)
    for case in cases:
        for reporter in shared:
            SignalFactory(subject=case.subject, disposition="queued", case=case, reporter=reporter)

    def work(i):
        decided = []
        while True:
            assignment = queue_claim(reviewer=users[i], queue_slug="spam")
            if assignment is None:
                return decided
            action = "remove" if assignment.case_id % 2 else "no_violation"
            decision_make(case_id=assignment.case_id, reviewer=users[i], action=action, rule="SP-1")
            decided.append(assignment.case_id)

    results = run_threads(8, work)

    decided = [case_id for got in results for case_id in got]
    assert sorted(decided) == sorted(c.pk for c in cases)
    assert Decision.objects.count() == 40
    assert not Assignment.objects.filter(state="active").exists()
    assert set(Case.objects.values_list("status", flat=True)) == {"decided"}
    per_case = Counter(CaseEvent.objects.filter(kind__in=["claimed", "decided"]).values_list("case_id", "kind"))
    assert set(per_case.values()) == {1} and len(per_case) == 80
    violations = sum(1 for c in cases if c.pk % 2)
    assert Enforcement.objects.count() == Strike.objects.count() == violations
    assert sorted(no_broker) == sorted(Enforcement.objects.values_list("id", flat=True))
    for reporter in Reporter.objects.filter(pk__in=[r.pk for r in shared]):
        assert (reporter.reports_decided, reporter.reports_upheld) == (40, violations)
