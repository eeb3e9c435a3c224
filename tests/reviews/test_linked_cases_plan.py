"""The case page's linked cases cost what they show: the subject's index, never a walk of every case (issue 14).

An OR across the subject join (same subject, the owner account, or content the account owns) leaves
PostgreSQL no index to start from, so it read every case (5 s per case page at 1,000,000 cases). With
sequential scans priced out, the plan shows whether an index path exists at all, on any table size.
"""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from reviews.selectors import cases_linked
from tests.factories import CaseFactory, SubjectFactory
from tests.support import cases_copied_without_statistics

pytestmark = pytest.mark.django_db


def test_linked_cases_are_read_through_the_subject_index_and_stay_the_same(moderator):
    account = SubjectFactory()
    case = CaseFactory(kind="spam", subject=account)
    same = CaseFactory(kind="harassment", subject=account)
    owned = CaseFactory(kind="harassment", subject=SubjectFactory(kind="content", owner=account))
    CaseFactory(kind="spam")  # someone else's
    content_case = CaseFactory(kind="spam", subject=SubjectFactory(kind="content", owner=account))

    assert {c.pk for c in cases_linked(moderator, case, limit=10)} == {same.pk, owned.pk, content_case.pk}
    # From a content subject: its account's cases and the account's other content.
    assert {c.pk for c in cases_linked(moderator, content_case, limit=10)} == {case.pk, same.pk, owned.pk}

    with CaptureQueriesContext(connection) as captured:
        cases_linked(moderator, case, limit=10)
    with transaction.atomic(), connection.cursor() as cur:
        # A table of many cases the planner has no statistics for (as before the first ANALYZE, or in a test
        # database): there, a plan that walks every case by creation time, hoping to meet ten linked ones
        # early, looks cheap. Rolled back; the foreign keys are checked only at a commit that never comes.
        cases_copied_without_statistics(cur, {case.pk: 50_000}, forget=("casework_case", "casework_subject"))
        cur.execute("EXPLAIN " + captured.captured_queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cur.fetchall())
        transaction.set_rollback(True)
    # The cases are found by subject (an index condition on the case's subject), not filtered from a walk.
    assert "Seq Scan on casework_case" not in plan, plan
    assert "Index Cond: (casework_case.subject_id = " in plan or "Index Cond: (subject_id = " in plan, plan
