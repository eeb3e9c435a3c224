"""The priority refresh reads what the cases it ranks need, whatever the planner guesses (rows-read bounds)."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from casework.intake import signals_ingest
from casework.models import Case, ReporterClassRecord
from casework.priority import case_reprioritise
from tests.factories import ReporterFactory, threat_class

pytestmark = pytest.mark.django_db

CASES, REPORTERS = 30, 4  # reporters per case, each with a record on the case's class


def _table_reads(cur) -> dict:
    """Per table: (index scans, rows fetched by them, rows read sequentially) so far in this transaction."""
    cur.execute(
        "SELECT relname, COALESCE(idx_scan, 0), COALESCE(idx_tup_fetch, 0), COALESCE(seq_tup_read, 0)"
        " FROM pg_stat_xact_user_tables"
        " WHERE relname IN ('casework_reporter', 'casework_reporterclassrecord', 'casework_signal')"
    )
    return {name: (scans, fetched, read) for name, scans, fetched, read in cur.fetchall()}


def _forget_statistics(cur):
    """No statistics on the tables the refresh reads, as in a test database or before the first ANALYZE."""
    tables = ["casework_case", "casework_signal", "casework_reporter", "casework_reporterclassrecord"]
    cur.execute("DELETE FROM pg_statistic WHERE starelid = ANY(%s::regclass[])", [tables])


def test_a_refresh_reads_each_reporter_once_per_case_not_once_per_case_and_reporter(platform):
    """30 cases of 4 reporters each, re-ranked in one batch: each case's reporters are looked up by key, once.

    A set-based join of the batch with its reporters, planned on a guess of one or two target rows, reads
    every reporter record of the batch again for each case (cases x reporters index scans); or hashes the
    whole reporter table for each case. The bound: one record lookup and one reporter lookup per (case,
    reporter) and no sequential read of either table.
    """
    for n in range(CASES * REPORTERS):
        reporter = ReporterFactory(external_id=f"r-{n}")
        ReporterClassRecord.objects.create(
            reporter=reporter, threat_class=threat_class("harassment"), reports_upheld=3, reports_decided=4
        )
    items = [
        {
            "source": "user-reports",
            "external_id": f"s-{n}",
            "threat_class": "harassment",
            "subject": {"kind": "account", "external_id": f"u-{n // REPORTERS}", "reach": 10},
            "reporter": f"r-{n}",
        }
        for n in range(CASES * REPORTERS)
    ]
    signals_ingest(items=items, actor=platform)
    ids = list(Case.objects.values_list("pk", flat=True))
    assert len(ids) == CASES
    with transaction.atomic(), connection.cursor() as cur:
        _forget_statistics(cur)
        before = _table_reads(cur)
        assert case_reprioritise(case_ids=ids, now=timezone.now()) == CASES
        after = _table_reads(cur)
        transaction.set_rollback(True)

    def delta(table, column):
        return after.get(table, (0, 0, 0))[column] - before.get(table, (0, 0, 0))[column]

    pairs = CASES * REPORTERS
    assert delta("casework_reporterclassrecord", 0) <= pairs, after
    assert delta("casework_reporterclassrecord", 2) == 0, after
    assert delta("casework_reporter", 1) <= pairs, after
    assert delta("casework_reporter", 2) == 0, after
