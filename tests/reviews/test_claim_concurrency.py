"""Claims under real concurrency: separate PostgreSQL connections, one per thread."""

from collections import Counter

import pytest

from docket.errors import DocketError
from reviews.accounts import user_upsert
from reviews.models import Assignment
from reviews.services import decision_make, queue_claim
from tests.factories import CaseFactory
from tests.support import run_threads

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def claim_until_refused(user):
    got, refusals = [], Counter()
    while True:
        try:
            assignment = queue_claim(reviewer=user, queue_slug="spam")
        except DocketError as e:
            refusals[e.code] += 1
            return got, refusals
        if assignment is None:
            return got, refusals
        got.append(assignment.case_id)


def test_sixteen_reviewers_claiming_at_once_never_share_a_case_or_exceed_capacity():
    users = [user_upsert(username=f"r{i}", role_names=["moderator"], max_active=3) for i in range(16)]
    cases = CaseFactory.create_batch(60, kind="spam")

    results = run_threads(16, lambda i: claim_until_refused(users[i]))

    claimed = [case_id for got, _ in results for case_id in got]
    assert len(claimed) == len(set(claimed)) == 48
    assert all(len(got) == 3 and refusals == {"capacity_reached": 1} for got, refusals in results)
    active = Assignment.objects.filter(state="active")
    assert active.count() == 48
    assert max(Counter(active.values_list("reviewer_id", flat=True)).values()) == 3
    assert len(set(active.values_list("case_id", flat=True))) == 48
    assert {c.pk for c in cases} >= set(claimed)


def test_sixteen_reviewers_drain_a_small_queue_each_case_once():
    users = [user_upsert(username=f"r{i}", role_names=["moderator"], max_active=10) for i in range(16)]
    CaseFactory.create_batch(20, kind="spam")

    def work(i):
        got = []
        while (a := queue_claim(reviewer=users[i], queue_slug="spam")) is not None:
            got.append(a.case_id)
            decision_make(case_id=a.case_id, reviewer=users[i], action="remove", rule="SP-1")
        return got

    results = run_threads(16, work)

    decided = [c for got in results for c in got]
    assert len(decided) == len(set(decided)) == 20
    assert Assignment.objects.filter(state="active").count() == 0
    assert Assignment.objects.filter(state="completed").count() == 20


def test_one_reviewer_claiming_from_many_tabs_at_once_stays_within_max_active():
    user = user_upsert(username="tabs", role_names=["moderator"], max_active=2)
    CaseFactory.create_batch(10, kind="spam")

    def work(i):
        try:
            return queue_claim(reviewer=user, queue_slug="spam").case_id
        except DocketError as e:
            return e.code

    results = run_threads(8, work)

    assert Counter(type(r).__name__ for r in results) == {"int": 2, "str": 6}
    assert set(r for r in results if isinstance(r, str)) == {"capacity_reached"}
    assert Assignment.objects.filter(reviewer=user.reviewer, state="active").count() == 2
