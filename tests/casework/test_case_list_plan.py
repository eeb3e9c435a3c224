"""The case list by class costs a page, not the class's backlog (issue 14).

Filtered by class in the list's order (highest priority first, across queues), PostgreSQL had two
paths: walk the global order and drop every case of another class, or read every case of the class
and sort them. Either read the backlog: 150-320 ms per page at 1,000,000 cases. The class's own
index in that order (``case_class_rank_idx``) reads the page.
"""

import pytest
from django.db import connection, transaction

from casework.api.filters import CaseFilter
from casework.models import Case
from tests.factories import CaseFactory
from tests.support import case_rows_fetched, cases_copied_without_statistics

pytestmark = pytest.mark.django_db

PAGE = 50


def test_a_page_of_one_class_reads_that_page_however_many_cases_rank_above_or_share_the_class(moderator):
    above = CaseFactory(kind="spam")
    wanted = CaseFactory(kind="harassment")
    Case.objects.filter(pk=above.pk).update(rank=50.0)  # every spam case ranks above every harassment case
    Case.objects.filter(pk=wanted.pk).update(rank=10.0)
    queryset = Case.objects.visible_to(moderator)  # what the list shows a moderator (copies have no subject row)

    with transaction.atomic(), connection.cursor() as cur:
        cases_copied_without_statistics(cur, {above.pk: 20_000, wanted.pk: 20_000})
        before = case_rows_fetched(cur)
        page = list(CaseFilter({"threat_class": "harassment"}, queryset=queryset).qs[:PAGE])
        fetched = case_rows_fetched(cur) - before
        transaction.set_rollback(True)

    assert len(page) == PAGE
    assert {case.threat_class_id for case in page} == {wanted.threat_class_id}
    assert fetched <= 2 * PAGE, fetched
