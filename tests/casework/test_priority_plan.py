"""The priority refresh reads what the cases it ranks need, whatever the planner guesses (rows-read bounds)."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from casework.intake import signals_ingest
from casework.models import Case, ReporterClassRecord
from casework.priority import _REFRESH_BY_IDS_SQL, _id_array, _params, case_reprioritise
from tests.factories import ReporterFactory, threat_class
from tests.support import cases_copied_without_statistics

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


def _rows_handled(plan) -> int:
    """Rows every node of an EXPLAIN (ANALYZE, FORMAT JSON) plan produced or filtered out, over all its loops."""
    loops = plan.get("Actual Loops", 1)
    own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    own += plan.get("Rows Removed by Join Filter", 0) * loops
    return own + sum(_rows_handled(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize("statistics", ["analyzed", "none"])
def test_the_refresh_handles_rows_in_proportion_to_its_cases_and_signals(platform, statistics):
    """The refresh as intake sends it, for 60 cases of 2 signals each among 20,000: every plan node's rows, summed.

    With statistics, the planner guesses that one computed row meets its locked case (each read-time
    check is selective when every case changed at its own moment), and a join of the computed rows with
    the target on that guess rescans every computed row for each case: cases x cases. Without statistics,
    it guesses one or two target rows and rescans the reporters' aggregate for each case. Either grows
    with the square of the batch, and a hashed lookup (the subject's facets, the active cases) with the
    table; the bound is linear: a few dozen rows per case and signal.
    """
    items = [
        {
            "source": "user-reports",
            "external_id": f"s-{n}",
            "threat_class": "harassment",
            "subject": {"kind": "account", "external_id": f"u-{n // 2}", "reach": 10},
            "reporter": f"r-{n}",
        }
        for n in range(120)
    ]
    signals_ingest(items=items, actor=platform)
    ids = list(Case.objects.values_list("pk", flat=True))
    assert len(ids) == 60
    with transaction.atomic(), connection.cursor() as cur:
        cases_copied_without_statistics(cur, {ids[0]: 20_000})  # seq scans priced out; rolled back
        # every case changed at its own moment, as in a live table
        cur.execute("UPDATE casework_case SET updated_at = updated_at - id * interval '1 millisecond'")
        if statistics == "analyzed":
            cur.execute("ANALYZE casework_case, casework_signal, casework_reporter, casework_reporterclassrecord")
        else:
            _forget_statistics(cur)
        cur.execute("SET LOCAL jit = off")
        cur.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + _REFRESH_BY_IDS_SQL,
            {**_params(timezone.now()), "ids": _id_array(ids)},
        )
        [[plan]] = cur.fetchone()
        transaction.set_rollback(True)
    handled = _rows_handled(plan["Plan"])
    assert handled <= 40 * (len(ids) + len(items)), handled
