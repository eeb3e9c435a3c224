"""What the case page reads on every open, cheaply: the case with its subject, owner, class and queue in one
hand-written statement; and the reads that are usually empty (linked cases, the case's own decisions) probe
first: a case on an account with no other case and no decision yet costs one light statement for each, not an
ORM read with the visibility and blind-review rules compiled in; when rows exist, the same rows as ever are read."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casework.models import Case
from casework.selectors import case_in_context
from docket import roles
from docket.visibility import clearances_of
from reviews.selectors import case_decisions_shown, cases_linked, decisions_blind_to
from reviews.services import decision_make, queue_claim
from tests.factories import CaseFactory, SubjectFactory

pytestmark = pytest.mark.django_db


def _reads(read):
    with CaptureQueriesContext(connection) as queries:
        found = read()
    return found, len(queries)


def test_linked_cases_probe_first_and_read_the_same_cases_when_there_are(moderator):
    roles.names(moderator), clearances_of(moderator)  # read once per request before, by the page's other reads
    account = SubjectFactory()
    content = SubjectFactory(kind="content", owner=account)
    case = CaseFactory(kind="spam", subject=content)
    CaseFactory(kind="spam")  # someone else's
    assert _reads(lambda: cases_linked(moderator, case, limit=10)) == ([], 1)

    on_account = CaseFactory(kind="harassment", subject=account)
    found, queries = _reads(lambda: cases_linked(moderator, case, limit=10))
    assert [c.pk for c in found] == [on_account.pk] and queries == 2

    lone = CaseFactory(kind="spam", subject=SubjectFactory(kind="content", owner=None))
    assert _reads(lambda: cases_linked(moderator, lone, limit=10)) == ([], 1)
    same = CaseFactory(kind="harassment", subject=lone.subject)
    assert [c.pk for c in cases_linked(moderator, lone, limit=10)] == [same.pk]


def test_a_case_with_no_decision_probes_and_one_with_decisions_reads_them(moderator, always_qa, make_user):
    case = CaseFactory(kind="spam")
    assert _reads(lambda: case_decisions_shown(moderator, case)) == (([], []), 1)

    queue_claim(reviewer=moderator, queue_slug="spam")
    decision = decision_make(case_id=case.pk, reviewer=moderator, action="remove", rule="SP-1")
    decisions_blind_to(moderator)
    (shown, hidden), queries = _reads(lambda: case_decisions_shown(moderator, case))
    assert [d.pk for d in shown] == [decision.pk] and hidden == [] and queries == 2
    assert shown[0].policy_version.policy is not None  # read with it

    second = make_user("second", "moderator")  # may do the pending blind QA review: the decision is hidden
    assert case_decisions_shown(second, case) == ([], [decision.pk])


def test_the_case_page_reads_its_case_subject_owner_class_and_queue_in_one_statement(moderator, make_user):
    clearances_of(moderator)
    owner = SubjectFactory()
    case = CaseFactory(kind="spam", subject=SubjectFactory(kind="content", owner=owner))
    found, queries = _reads(lambda: case_in_context(user=moderator, case_id=case.pk))
    assert queries == 1
    with CaptureQueriesContext(connection) as more:
        shown = (found.pk, found.subject.pk, found.subject.owner.pk, found.threat_class.slug, found.queue.slug)
    assert shown == (case.pk, case.subject_id, owner.pk, "spam", case.queue.slug) and len(more) == 0
    assert found.priority_breakdown == Case.objects.get(pk=case.pk).priority_breakdown  # JSON decoded as the ORM does

    lone = CaseFactory(kind="spam", subject=SubjectFactory(kind="content", owner=None))
    assert case_in_context(user=moderator, case_id=lone.pk).subject.owner is None
    assert case_in_context(user=moderator, case_id=case.pk + lone.pk + 1000) is None

    hidden = CaseFactory(kind="csam")  # a restricted class: hidden from a moderator without the clearance
    assert case_in_context(user=moderator, case_id=hidden.pk) is None
    cleared = make_user("cleared", "moderator", clearances=["csam"])
    assert case_in_context(user=cleared, case_id=hidden.pk).threat_class.slug == "csam"
