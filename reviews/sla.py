"""SLA escalation: high-severity cases left waiting past their SLA go to the seniors.

Priority already lifts a breached case to the top of its queue; when nobody in
that queue takes it, a case of severity ``DOCKET["SLA_ESCALATION_MIN_SEVERITY"]``
or more that is still unclaimed ``DOCKET["SLA_ESCALATION_GRACE_SECONDS"]`` after
its SLA moves to the ``escalations`` queue. Low-severity backlogs (spam) stay
in their queues: flooding the seniors with them would bury what matters.
"""

import json
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone

from casework import events
from casework.models import Queue
from casework.services import ESCALATION_QUEUES, actor_fields, transition_allowed
from docket.batches import BATCH_SIZE, batches
from docket.conf import setting

# Severities run 1 to 5 (a check constraint on the case).
MAX_SEVERITY = 5

# One statement a batch. ``pick``: the next ``batch`` due cases in SLA order, from where the previous
# batch stopped. Each (severity, queue) pair, for each severity from the minimum up and each queue
# that is not an escalation queue, is its own range of ``case_open_sev_queue_sla_idx`` (oldest SLA
# first, at most ``batch`` rows read), so no batch reads the low-severity breaches left in their
# queues, the breaches waiting in the escalation queues (escalations, legal), nor the cases earlier
# batches moved or skipped: what it reads is bounded by its size times the ranges holding due cases,
# not by any backlog. ``due``: those rows locked one by one (a probe of the primary key each), each
# rechecked as it is now; a row another transaction holds is skipped (caught on the next run), not
# waited for, and not met again by this run's later batches. Then the move and its events.
# The SLA bounds are written over the index's own columns (severity, queue, SLA, id), severity first:
# no other index leads with it. (Led by the queue, the index lost to the other indexes led by the
# queue when the table had no statistics: the planner sorted a queue's every open case per batch.)
_ESCALATE_SQL = """
WITH pick AS (
    SELECT w.id, w.sla_due_at
      FROM unnest(%(severities)s::smallint[], %(queues)s::bigint[]) AS l(severity, queue_id)
     CROSS JOIN LATERAL (
           SELECT id, sla_due_at FROM casework_case
            WHERE status = 'open' AND severity = l.severity AND queue_id = l.queue_id
              AND (severity, queue_id, sla_due_at, id) > (l.severity, l.queue_id, %(after_at)s, %(after_id)s)
              AND (severity, queue_id, sla_due_at) < (l.severity, l.queue_id, %(cutoff)s)
            ORDER BY sla_due_at, id
            LIMIT %(batch)s) w
     ORDER BY w.sla_due_at, w.id
     LIMIT %(batch)s
),
due AS (
    SELECT x.id, x.queue_id FROM pick
     CROSS JOIN LATERAL (
           SELECT c.id, c.queue_id FROM casework_case c
            WHERE c.id = pick.id
              AND c.status = 'open' AND c.severity >= %(min_severity)s AND c.sla_due_at < %(cutoff)s
              AND c.queue_id <> ALL(%(excluded)s::bigint[])
              FOR NO KEY UPDATE OF c SKIP LOCKED) x
),
moved AS (
    UPDATE casework_case c SET status = 'escalated', queue_id = %(target)s, updated_at = %(now)s
      FROM due WHERE c.id = due.id
    RETURNING c.id, due.queue_id AS from_queue_id
),
written AS (
    INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
    SELECT m.id, %(now)s, NULL, %(system)s, %(kind)s, %(detail)s::jsonb || jsonb_build_object('from_queue', q.slug)
      FROM moved m JOIN casework_queue q ON q.id = m.from_queue_id
)
SELECT (SELECT count(*) FROM pick), (SELECT count(*) FROM moved), last.sla_due_at, last.id
  FROM (SELECT NULL) one
  LEFT JOIN (SELECT sla_due_at, id FROM pick ORDER BY sla_due_at DESC, id DESC LIMIT 1) last ON true
"""


def cases_escalate_sla_breaches(*, now=None, batch: int = BATCH_SIZE) -> int:
    """Move every open, unassigned, high-severity case past SLA + grace to ``escalations``.

    Set-based, in short batches (one statement each: the cases locked, moved,
    and their ``sla_escalated`` events written), oldest SLA first over the
    open cases' (severity, queue, SLA) index, so a batch reads the rows it moves,
    never the low-severity breaches left in their queues nor those already in an
    escalation queue; rows another transaction holds are skipped and caught on
    the next run. Not a first action: the SLA clock of the case is unchanged.
    Returns how many cases moved.
    """
    now = now or timezone.now()
    min_severity = setting("SLA_ESCALATION_MIN_SEVERITY")
    if not transition_allowed("open", "escalated") or min_severity > MAX_SEVERITY:
        return 0
    target = Queue.objects.get(slug="escalations")
    queues = list(Queue.objects.order_by("id").values_list("id", "slug"))
    excluded = [q for q, slug in queues if slug in ESCALATION_QUEUES]
    watched = [q for q, slug in queues if slug not in ESCALATION_QUEUES]
    if not watched:
        return 0
    ranges = [(v, q) for v in range(max(min_severity, 1), MAX_SEVERITY + 1) for q in watched]
    event = events.sla_escalated(from_status="open", from_queue=None, to_queue=target.slug)
    params = {
        "min_severity": min_severity,
        "severities": [v for v, _ in ranges],
        "queues": [q for _, q in ranges],
        "cutoff": now - timedelta(seconds=setting("SLA_ESCALATION_GRACE_SECONDS")),
        "excluded": excluded,
        "target": target.pk,
        "now": now,
        "system": actor_fields("system")[1],
        "kind": event.kind,
        "detail": json.dumps(event.detail),
    }

    after = {"after_at": datetime(1, 1, 1, tzinfo=UTC), "after_id": 0}
    moved_total = 0

    def escalate(size):
        nonlocal moved_total
        with connection.cursor() as cur:
            cur.execute(_ESCALATE_SQL, {**params, **after, "batch": size})
            picked, moved, last_at, last_id = cur.fetchone()
        moved_total += moved
        if picked:
            after.update(after_at=last_at, after_id=last_id)
        return picked

    batches(escalate, size=batch)
    return moved_total
