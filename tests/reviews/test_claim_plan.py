"""A claim costs a pick, not the escalated backlog of other queues (issue 14).

A claim first looks for an escalated case of its queue, then for an open one. With no index for
"this queue's escalated cases in rank order", PostgreSQL picked the escalated case out of an index
of every queue's escalated cases and dropped the other queues' ones one by one: on the 1M-case
bench, every claim in the spam queue read the ~30,000 escalated cases of the escalations queue
(28,000 buffers, 400 ms of server time under load). It chose that plan whenever the statistics it
last gathered had seen few escalated cases, which is the state a table is in right after an SLA
escalation run escalated thousands at once; with no statistics (below) it walked the claimed queue's
whole active backlog instead.
"""

import pytest
from django.db import connection, transaction

from reviews.services import assignment_release, queue_claim
from tests.factories import CaseFactory, queue
from tests.support import case_rows_fetched, cases_copied_without_statistics

pytestmark = pytest.mark.django_db


# The claim statement is prepared (docket.rows.prepared): PostgreSQL plans its first five runs on a
# connection for their values, then may keep one generic plan for every later run, which must pick as well.
@pytest.mark.parametrize(
    "earlier_claims", [0, 6], ids=["planned for its values", "after the connection's generic plan"]
)
def test_a_claim_reads_its_pick_however_many_cases_other_queues_have_escalated(moderator, earlier_claims):
    waiting = CaseFactory(kind="spam", priority=5.0)
    escalated = CaseFactory(kind="spam", queue=queue("escalations"), status="escalated", priority=1.0)

    with transaction.atomic(), connection.cursor() as cur:
        for _ in range(200):
            CaseFactory(kind="spam", priority=1.0)
        cases_copied_without_statistics(cur, {escalated.pk: 20_000})  # an SLA run escalated 20,000 cases
        for _ in range(earlier_claims):
            held = queue_claim(reviewer=moderator, queue_slug="spam")
            assignment_release(assignment_id=held.pk, reviewer=moderator)
        before = case_rows_fetched(cur)
        assignment = queue_claim(reviewer=moderator, queue_slug="spam")
        fetched = case_rows_fetched(cur) - before
        transaction.set_rollback(True)

    assert assignment.case_id == waiting.pk
    assert fetched <= 20, fetched
