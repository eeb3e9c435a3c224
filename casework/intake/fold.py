"""Folding signals into cases: the public fold API of intake and of held signals released by hygiene.

``signals_fold`` is the API: ``routes_resolve`` finds each class's queue (and
the thresholds of the batch's (source, class) pairs), ``cases_open_or_join``
joins the active case of each item's (subject, class) or opens one, safe
against concurrent intake. Intake (``casework.intake.store``) and the release
of held signals (``casework.hygiene.source_confirm``) both fold through it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import OperationalError

from docket.errors import DocketError
from policies.models import Threshold

from ..models import Case, Queue
from .rows import fetch, json_rows
from .validate import IntakeReference


def queue_routes(class_ids) -> dict[int, int]:
    """Per threat class id, the queue a new case of it enters: the first queue taking it (by position,
    then slug); a class no queue takes still reaches humans, in the escalations queue. One query, two
    when a class needs the fallback; ``DocketError`` ``unroutable`` when there is no escalations queue."""
    routes: dict[int, int] = {}
    through = Queue.threat_classes.through
    rows = through.objects.filter(threatclass_id__in=class_ids).order_by("queue__position", "queue__slug")
    for class_id, queue_id in rows.values_list("threatclass_id", "queue_id"):
        routes.setdefault(class_id, queue_id)
    missing = set(class_ids) - routes.keys()
    if missing:
        fallback = Queue.objects.filter(slug="escalations").values_list("id", flat=True).first()
        if fallback is None:
            raise DocketError("unroutable", "No queue takes this threat class and there is no escalations queue.")
        for class_id in missing:
            routes[class_id] = fallback
    return routes


def routes_resolve(ref, items):
    """Thresholds of the batch's (source, class) pairs and the queue of each class (two queries)."""
    source_ids = {i.source.id for i in items}
    class_ids = {i.threat_class.id for i in items}
    ref.thresholds = {
        (t.source_id, t.threat_class_id): t
        for t in Threshold.objects.filter(source_id__in=source_ids, threat_class_id__in=class_ids)
    }
    for class_id, queue_id in queue_routes(class_ids).items():
        ref.queues.setdefault(class_id, queue_id)


_ACTIVE_SQL = ", ".join(f"'{s}'" for s in Case.ACTIVE_STATUSES)


def cases_open_or_join(items, *, ref, now):
    """The active case of each item's (subject, class), opened when there is none; locked.

    Sets ``item.case_id``; returns ``{case_id: (status, holdout, opened_here)}``.
    Safe against concurrent intake: ``case_one_active_per_subject_class`` decides
    who opens, the others join (and a case decided meanwhile makes way for a new one).
    """
    spans: dict[tuple[int, int], list[datetime]] = {}
    for item in items:
        k = (item.subject_id, item.threat_class.id)
        span = spans.setdefault(k, [item.occurred_at, item.occurred_at])
        span[0] = min(span[0], item.occurred_at)
        span[1] = max(span[1], item.occurred_at)
    classes = {item.threat_class.id: item.threat_class for item in items}
    found: dict[tuple[int, int], tuple[int, str, bool, bool]] = {}
    pending = sorted(spans)
    for _ in range(5):
        if not pending:
            break
        tcs = [classes[tc] for _, tc in pending]
        rows = fetch(
            """
            INSERT INTO casework_case (
                subject_id, threat_class_id, queue_id, status, severity, harm_weight, reach,
                signal_count, reporter_count, signal_strength, reporter_weight, velocity,
                brigading, holdout, legal_hold, first_signal_at, last_signal_at, sla_due_at,
                priority, priority_breakdown, created_at, updated_at
            )
            SELECT k.subject_id, k.tc, k.queue, 'open', k.severity, k.harm, subj.reach,
                   0, 0, 0, 0, 0, false, false, false, k.first_at, k.last_at,
                   k.first_at + make_interval(secs => k.sla), 0, '{}'::jsonb, %(now)s, %(now)s
            FROM (
                SELECT (r->>0)::bigint AS subject_id, (r->>1)::bigint AS tc, (r->>2)::bigint AS queue,
                       (r->>3)::int AS severity, (r->>4)::float8 AS harm, (r->>5)::timestamptz AS first_at,
                       (r->>6)::timestamptz AS last_at, (r->>7)::float8 AS sla
                FROM json_array_elements(%(rows)s::json) r
            ) k
            JOIN casework_subject subj ON subj.id = k.subject_id
            ORDER BY k.subject_id, k.tc
            ON CONFLICT DO NOTHING
            RETURNING id, subject_id, threat_class_id
            """,
            {
                "rows": json_rows(
                    [
                        [s, tc.id, ref.queues[tc.id], tc.severity, tc.harm_weight, *spans[(s, tc.id)], tc.sla_seconds]
                        for (s, _), tc in zip(pending, tcs, strict=True)
                    ]
                ),
                "now": now,
            },
        )
        for case_id, subject_id, tc in rows:
            found[(subject_id, tc)] = (case_id, "open", False, True)
        rest = [k for k in pending if k not in found]
        if rest:
            rows = fetch(
                f"""
                SELECT c.id, c.subject_id, c.threat_class_id, c.status, c.holdout
                FROM (
                    SELECT (r->>0)::bigint AS subject_id, (r->>1)::bigint AS tc FROM json_array_elements(%s::json) r
                ) k
                JOIN casework_case c ON c.subject_id = k.subject_id AND c.threat_class_id = k.tc
                WHERE c.status IN ({_ACTIVE_SQL})
                ORDER BY c.subject_id, c.threat_class_id
                FOR NO KEY UPDATE OF c
                """,
                [json_rows(rest)],
            )
            for case_id, subject_id, tc, status, holdout in rows:
                found[(subject_id, tc)] = (case_id, status, holdout, False)
        # A case decided between the two statements leaves its key pending: open a new one.
        pending = [k for k in pending if k not in found]
    if pending:
        raise OperationalError("intake could not settle the cases of this batch")
    for item in items:
        item.case_id = found[(item.subject_id, item.threat_class.id)][0]
    return {case_id: (status, holdout, opened) for case_id, status, holdout, opened in found.values()}


def signals_fold(items, *, now, ref=None) -> dict[int, tuple[str, bool, bool]]:
    """Fold items into cases: route each class to its queue, then join or open the active case; locked.

    ``items`` carry ``subject_id``, ``threat_class``, ``occurred_at`` and ``source``;
    each gets ``case_id``. Returns ``{case_id: (status, holdout, opened_here)}``.
    Intake passes the reference it resolved while validating; held signals
    released by hygiene fold with a fresh one.
    """
    if ref is None:
        ref = IntakeReference(sources={}, classes={})
        routes_resolve(ref, items)
    return cases_open_or_join(items, ref=ref, now=now)
