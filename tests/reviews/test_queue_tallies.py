"""Queue figures from the tallies: the same as counting every case, at every commit, before and after compaction."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from casework.models import Case, QueueTally
from casework.priority import cases_reprioritise_due
from casework.tallies import queue_tallies_compact, queue_tallies_rebuild
from docket.visibility import clearances_of
from reviews.selectors import queues_overview
from reviews.services import leases_expire, queue_claim
from tests.factories import CaseFactory, queue

pytestmark = pytest.mark.django_db


def counted(user, now):
    """The figures by counting every case (what the tallies replace), for the queues the user sees."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT q.slug,
                   count(*) FILTER (WHERE c.status IN ('open', 'escalated')),
                   count(*) FILTER (WHERE c.status = 'in_review'),
                   min(c.created_at) FILTER (WHERE c.status IN ('open', 'escalated')),
                   count(*) FILTER (WHERE c.sla_due_at < %s AND c.status IN ('open', 'in_review', 'escalated'))
              FROM casework_case c JOIN casework_queue q ON q.id = c.queue_id
              JOIN policies_threatclass tc ON tc.id = c.threat_class_id
             WHERE NOT (tc.restricted AND NOT (tc.slug = ANY(%s)))
             GROUP BY q.slug
            """,
            [now, sorted(clearances_of(user))],
        )
        rows = {slug: (w, r, int((now - o).total_seconds()) if o else None, b) for slug, w, r, o, b in cur.fetchall()}
    shown = {}
    for q in queues_overview(user, now=now):
        figures = (q["depth"], q["in_review"], q["oldest_wait_seconds"], q["breaching"])
        if figures != (0, 0, None, 0):
            shown[q["slug"]] = figures
    return shown, {slug: f for slug, f in rows.items() if f != (0, 0, None, 0)}


def test_queue_figures_equal_a_count_of_every_case_through_each_change(moderator, senior, settings):
    now = timezone.now()
    old = now - timedelta(days=4)  # past every shipped SLA
    cases = [CaseFactory(kind="spam", priority=float(n)) for n in range(5)]
    CaseFactory(kind="spam", first_signal_at=old, created_at=old)
    CaseFactory(kind="harassment", first_signal_at=now - timedelta(hours=30))
    CaseFactory(kind="csam")  # restricted: not counted for a reviewer without the clearance
    shown, truth = counted(moderator, now)
    assert shown == truth and truth["spam"][0] == 6

    queue_claim(reviewer=moderator, queue_slug="spam")  # open -> in_review
    assert counted(moderator, now)[0] == counted(moderator, now)[1]
    Case.objects.filter(pk=cases[0].pk).update(status="decided", decided_at=now)  # any UPDATE statement
    Case.objects.filter(pk=cases[1].pk).update(queue=queue("escalations"), status="escalated")
    shown, truth = counted(senior, now)
    assert shown == truth and truth["escalations"][0] == 1

    # Breaches move to the breached tier, and are then counted from the tallies.
    assert cases_reprioritise_due(now=now + timedelta(seconds=5)) > 0
    assert Case.objects.filter(rank_tier__in=[1, 3]).exists()
    assert counted(moderator, now)[0] == counted(moderator, now)[1]

    later = now + timedelta(minutes=settings.DOCKET["LEASE_SECONDS"] / 60 + 1)
    assert leases_expire(now=later) == 1  # in_review -> open
    Case.objects.filter(pk=cases[2].pk).delete()
    rows_before = QueueTally.objects.count()
    before = counted(moderator, now)
    assert before[0] == before[1]

    queue_tallies_compact(now=now)
    assert QueueTally.objects.count() < rows_before
    assert counted(moderator, now) == before
    queue_tallies_rebuild()
    assert counted(moderator, now) == before


def test_arrivals_feed_the_forecast_from_the_tallies(moderator):
    now = timezone.now()
    for _ in range(3):
        CaseFactory(kind="spam", created_at=now - timedelta(minutes=5), first_signal_at=now - timedelta(minutes=5))
    CaseFactory(kind="spam", created_at=now - timedelta(days=2), first_signal_at=now - timedelta(days=2))
    (spam,) = [q for q in queues_overview(moderator, now=now) if q["slug"] == "spam"]
    assert spam["depth"] == 4
    assert spam["forecast_drain_hours"] is None and spam["drain_state"] == "idle"  # nothing decided lately
    queue_tallies_compact(now=now)
    rows = QueueTally.objects.filter(arrived__gt=0)
    assert sum(r.arrived for r in rows) == 3  # the day-old arrival folded into the old-hours row, uncounted
