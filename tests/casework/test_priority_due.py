"""A case comes due (``rank_due_at``) exactly when its order changes by itself: never later, and never for nothing.

The velocity moments (``casework.priority`` module doc): a signal entering or
leaving the last hour always changes the order; one leaving the hour before
only when that hour no longer outnumbers the last. A re-rank at a moment that
changes nothing rewrites the case row (and its indexes, and WAL) for nothing:
at 1,000,000 cases, the hour-before exits of an hour of intake did that to
every case it touched.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from casework.intake import signals_ingest
from casework.models import Case
from casework.priority import case_reprioritise
from tests.factories import ReporterFactory

pytestmark = pytest.mark.django_db

# What a breakdown shows that moves with the clock alone (priority_shown computes them when shown).
CLOCK_KEYS = {"aging_factor", "base", "sla_breached", "breach_offset"}


class _Probe(Exception):
    def __init__(self, state):
        self.state = state


def _state(case_id):
    case = Case.objects.get(pk=case_id)
    breakdown = {k: v for k, v in case.priority_breakdown.items() if k not in CLOCK_KEYS}
    return (case.rank_tier, round(case.rank, 9)), breakdown, case.rank_due_at, case.sla_due_at


def _ranked_at(case_id, at):
    case_reprioritise(case_ids=[case_id], now=at)
    return _state(case_id)


def _probe(case_id, at):
    """The case's order and breakdown if it were re-ranked at ``at`` (rolled back)."""
    try:
        with transaction.atomic():
            raise _Probe(_ranked_at(case_id, at))
    except _Probe as p:
        return p.state


def _subject_with_signals(platform, name, minutes_ago, now):
    """One harassment case whose subject had a report ``m`` minutes before ``now`` for each ``m``."""
    ReporterFactory(external_id=f"{name}-r", reports_upheld=9, reports_decided=10)
    for n, m in enumerate(sorted(minutes_ago, reverse=True)):
        item = {
            "source": "user-reports",
            "external_id": f"{name}-{n}",
            "threat_class": "harassment",
            "subject": {"kind": "account", "external_id": name, "reach": 100},
            "reporter": f"{name}-r",
            "occurred_at": (now - timedelta(minutes=m)).isoformat(),
        }
        signals_ingest(items=[item], actor=platform)
    return Case.objects.get(subject__external_id=name).pk


def test_a_lone_signal_leaving_the_hour_before_makes_no_moment(platform):
    now = timezone.now()
    case_id = _subject_with_signals(platform, "lone", [30], now)
    signal_at = now - timedelta(minutes=30)
    order, _, due, sla = _ranked_at(case_id, now)
    assert due == signal_at + timedelta(hours=1)  # leaving the last hour: the velocity falls to 0

    moved, breakdown, due, _ = _ranked_at(case_id, signal_at + timedelta(hours=1))
    assert moved != order
    # Two hours after it, the signal leaves the hour before, where it outnumbered an empty last hour: the
    # growth was 1 and stays 1. Not a moment: the next one is the SLA.
    assert due == sla
    assert _probe(case_id, signal_at + timedelta(hours=2, minutes=1))[:2] == (moved, breakdown)


@pytest.mark.parametrize(
    "minutes_ago",
    [
        [30],  # one in the last hour
        [100, 10],  # one in each hour: the hour before's exit raises the growth, before the last hour's exit
        [110, 100, 90, 20],  # three before, one in the last hour: only the third exit raises the growth
        [119, 61, 59, 1],
        [70, 65, 50, 45, 40],  # two before, three in the last hour: every exit counts
        [115, 112, 5],
    ],
)
def test_a_case_comes_due_exactly_when_its_order_changes(platform, minutes_ago):
    """Walk every moment for three hours: the order never changes before ``rank_due_at`` and changes at it."""
    now = timezone.now()
    case_id = _subject_with_signals(platform, "walk", minutes_ago, now)
    end = now + timedelta(hours=3)
    at = now
    order, breakdown, due, sla = _ranked_at(case_id, at)
    moments = 0
    while True:
        until = min(due or end, end)
        probes = [at + timedelta(minutes=m) for m in range(1, 181, 7)]
        for t in [t for t in probes if t < until] + [until - timedelta(seconds=1)]:
            assert _probe(case_id, t)[:2] == (order, breakdown), f"the order changed at {t - now} before {due - now}"
        if due is None or due >= min(sla, end):
            break
        assert _probe(case_id, due)[0] != order, f"due at {due - now} for nothing"
        moments += 1
        at = due
        order, breakdown, due, sla = _ranked_at(case_id, at)
    assert moments >= 1
