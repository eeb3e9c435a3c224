"""Folding signals into cases: the public fold API of intake and of held signals released by hygiene.

``signals_fold`` and ``cases_settle`` are the API, in two steps around the
write of the signals: ``routes_resolve`` finds each class's queue (and the
thresholds of the batch's (source, class) pairs), ``cases_join_or_reserve``
locks the active case of each item's (subject, class) or reserves an id for a
new one; once the signals are stored with those ids, ``cases_settle`` inserts
the new cases ranked from them (one write of each new case, not an insert and
then a re-rank), re-ranks the joined ones, and is safe against concurrent
intake: ``case_one_active_per_subject_class`` decides who opens, the others
join. Intake (``casework.intake.store``) and the release of held signals
(``casework.hygiene.source_confirm``) both fold through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import OperationalError

from docket.errors import DocketError
from policies.models import Threshold

from ..models import ACTIVE_STATUSES_SQL, Queue
from ..priority import case_reprioritise, cases_open_ranked
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


# The active case of each (subject, class) key, locked (no case is decided while this batch folds into it).
# Each key is looked up by its subject (a LATERAL kept apart by OFFSET 0; ``+ 0`` keeps the class's index
# out). Without statistics PostgreSQL read every active case of the class for each key (0.7 s for a batch
# of 1,000 signals in bench.intake), or hashed every active case.
_ACTIVE_CASES_SQL = f"""
SELECT c.id, c.subject_id, c.threat_class_id, c.status, c.holdout
FROM (
    SELECT (r->>0)::bigint AS subject_id, (r->>1)::bigint AS tc FROM json_array_elements(%s::json) r
) k
CROSS JOIN LATERAL (
    SELECT * FROM casework_case c
     WHERE c.subject_id = k.subject_id AND c.threat_class_id + 0 = k.tc AND c.status IN ({ACTIVE_STATUSES_SQL})
    OFFSET 0
) c
ORDER BY c.subject_id, c.threat_class_id
FOR NO KEY UPDATE OF c
"""


@dataclass
class Fold:
    """A batch's cases while it folds: ``cases`` is ``{case_id: (status, holdout, opened_here)}``.

    A case to open has only an id reserved (``proposed`` holds its row for ``_OPEN_SQL``) until
    ``cases_settle`` inserts it, ranked, once its signals are stored.
    """

    cases: dict[int, tuple[str, bool, bool]] = field(default_factory=dict)
    proposed: dict[int, list] = field(default_factory=dict)


def _active_cases(keys) -> dict[tuple[int, int], tuple[int, str, bool]]:
    rows = fetch(_ACTIVE_CASES_SQL, [json_rows(sorted(keys))]) if keys else []
    return {(subject_id, tc): (case_id, status, holdout) for case_id, subject_id, tc, status, holdout in rows}


def cases_join_or_reserve(items, *, ref) -> Fold:
    """The active case of each item's (subject, class), locked, or a reserved id for a case to open.

    Sets ``item.case_id``. The caller stores the signals with it, then ``cases_settle`` opens
    the reserved cases ranked from those signals (one write each).
    """
    spans: dict[tuple[int, int], list[datetime]] = {}
    classes = {}
    for item in items:
        k = (item.subject_id, item.threat_class.id)
        classes[item.threat_class.id] = item.threat_class
        span = spans.setdefault(k, [item.occurred_at, item.occurred_at])
        span[0] = min(span[0], item.occurred_at)
        span[1] = max(span[1], item.occurred_at)
    fold = Fold()
    found = {}
    for key, (case_id, status, holdout) in _active_cases(spans).items():
        found[key] = case_id
        fold.cases[case_id] = (status, holdout, False)
    missing = [k for k in sorted(spans) if k not in found]
    if missing:
        reserved = fetch(
            "SELECT nextval(pg_get_serial_sequence('casework_case', 'id')) FROM generate_series(1, %s)",
            [len(missing)],
        )
        for (subject_id, tc_id), (case_id,) in zip(missing, reserved, strict=True):
            tc = classes[tc_id]
            found[(subject_id, tc_id)] = case_id
            fold.cases[case_id] = ("open", False, True)
            fold.proposed[case_id] = [
                case_id, subject_id, tc_id, ref.queues[tc_id], tc.severity, tc.harm_weight,
                *spans[(subject_id, tc_id)], tc.sla_seconds,
            ]  # fmt: skip
    for item in items:
        item.case_id = found[(item.subject_id, item.threat_class.id)]
    return fold


def cases_settle(fold: Fold, items, *, now) -> list:
    """Open the reserved cases of ``items`` (those whose signals were stored) ranked, re-rank the joined ones.

    A (subject, class) another request opened after this one looked joins that case instead:
    the signals stored for the reserved id move to it, and so do the items (returned, so the
    caller can settle what depended on the case, such as automation). A reserved case no item
    kept is never inserted. The subjects' other active cases are marked due. Locked, as the fold.
    """
    kept = {i.case_id for i in items}
    fold.cases = {cid: v for cid, v in fold.cases.items() if cid in kept}
    pending = {cid: fold.proposed[cid] for cid in sorted(kept & fold.proposed.keys())}
    opened: set[int] = set()
    moved = []
    for _ in range(5):
        if not pending:
            break
        opened |= cases_open_ranked(rows=json_rows(list(pending.values())), now=now)
        lost = {(row[1], row[2]): cid for cid, row in pending.items() if cid not in opened}
        winners = _active_cases(lost)
        if winners:
            fetch(
                "UPDATE casework_signal s SET case_id = m.winner"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS m(reserved, winner) WHERE s.case_id = m.reserved",
                [[lost[k] for k in winners], [w[0] for w in winners.values()]],
            )
            to = {lost[k]: w for k, w in winners.items()}
            for item in items:
                if item.case_id in to:
                    item.case_id = to[item.case_id][0]
                    moved.append(item)
            for reserved, (case_id, status, holdout) in to.items():
                del fold.cases[reserved]
                fold.cases[case_id] = (status, holdout, False)
        # A case decided between the insert and the lookup leaves its key pending: try to open it again.
        pending = {cid: row for cid, row in pending.items() if cid not in opened and cid in fold.cases}
    if pending:
        raise OperationalError("intake could not settle the cases of this batch")
    joined = [cid for cid in fold.cases if cid not in opened]
    case_reprioritise(case_ids=joined, opened=opened, now=now)
    return moved


def signals_fold(items, *, ref=None) -> Fold:
    """Fold items into cases: route each class to its queue, then join the active case or reserve one; locked.

    ``items`` carry ``subject_id``, ``threat_class``, ``occurred_at`` and ``source``;
    each gets ``case_id``. Store their signals with it, then call ``cases_settle``.
    Intake passes the reference it resolved while validating; held signals
    released by hygiene fold with a fresh one.
    """
    if ref is None:
        ref = IntakeReference(sources={}, classes={})
        routes_resolve(ref, items)
    return cases_join_or_reserve(items, ref=ref)
