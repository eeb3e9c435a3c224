"""Intake, storing: a validated batch written in a few set-based statements (see the package doc)."""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from docket.conf import setting
from docket.errors import DocketError
from docket.hooks import Hook
from policies.models import SignalSource
from policies.thresholds import signal_disposition

from .. import events
from ..models import Signal
from ..services import actor_fields
from .fold import cases_settle, routes_resolve, signals_fold
from .rows import fetch, json_rows
from .validate import IntakeItem, intake_reference, signals_validate

log = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 3

QUEUED = Signal.Disposition.QUEUED.value
AUTO_ACTIONED = Signal.Disposition.AUTO_ACTIONED.value
HELD = Signal.Disposition.HELD.value
BELOW_THRESHOLD = Signal.Disposition.BELOW_THRESHOLD.value
FOLDED = (QUEUED, AUTO_ACTIONED)


@dataclass(frozen=True)
class IntakeResult:
    """Per input item (in input order) ``{"id", "external_id", "case", "disposition"}``."""

    results: list[dict]
    created: int
    single: bool

    @property
    def status(self) -> int:
        return 201 if self.created else 200

    @property
    def body(self):
        return self.results[0] if self.single else self.results


def signals_ingest(*, items, actor) -> IntakeResult:
    """Store a signal (a dict) or a batch (a list of up to ``DOCKET["INTAKE_MAX_BATCH"]``), all or nothing.

    Validation errors raise ``DocketError`` (400; code ``unknown_source``,
    ``unknown_threat_class`` or ``invalid``, the first error's) with per-field
    errors, keyed by input index for a list; nothing is stored then. A
    ``(source, external_id)`` already stored, by an earlier or a concurrent
    request, stores nothing new and answers the stored result. Returns an
    ``IntakeResult`` whose ``created`` counts the newly stored signals.
    """
    single = isinstance(items, dict)
    raw = [items] if single else items
    if not isinstance(raw, list):
        raise DocketError(
            "invalid",
            "Send one signal object or a list of them.",
            errors={"non_field_errors": ["Expected an object or a list of objects."]},
        )
    limit = setting("INTAKE_MAX_BATCH")
    if len(raw) > limit:
        raise DocketError(
            "invalid",
            f"At most {limit} signals per request.",
            errors={"non_field_errors": [f"At most {limit} signals per request; got {len(raw)}."]},
        )
    if not raw:
        return IntakeResult(results=[], created=0, single=False)
    now = timezone.now()
    ref = intake_reference(raw)
    parsed = signals_validate(raw, ref=ref, now=now, single=single)
    routes_resolve(ref, parsed)

    attempts = 1 if connection.in_atomic_block else DEADLOCK_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            # The batch's cases are ranked inside the transaction: exact at commit, nothing left to a worker.
            with transaction.atomic():
                results, created = _store(parsed, ref=ref, actor=actor, now=now)
            break
        except OperationalError as e:
            # Overlapping concurrent batches can deadlock on shared subjects or cases;
            # nothing was written, so the batch is simply retried.
            if attempt == attempts or getattr(getattr(e, "__cause__", None), "sqlstate", None) != "40P01":
                raise
            time.sleep(0.05 * attempt)
    return IntakeResult(results=[results[i] for i in range(len(raw))], created=created, single=single)


def _result(signal_id, external_id, case_id, disposition):
    return {"id": signal_id, "external_id": external_id, "case": case_id, "disposition": disposition}


def _stored(keys):
    """Stored signals for ``(source_id, external_id)`` keys: ``{key: (id, case_id, disposition)}``."""
    if not keys:
        return {}
    rows = fetch(
        """
        SELECT s.source_id, s.external_id, s.id, s.case_id, s.disposition
        FROM (SELECT (r->>0)::bigint AS source_id, r->>1 AS external_id FROM json_array_elements(%s::json) r) k
        JOIN casework_signal s ON s.source_id = k.source_id AND s.external_id = k.external_id
        """,
        [json_rows(keys)],
    )
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


# The intake gate's advisory locks: the two-key form (this namespace, a slot), apart from the one-key
# locks of the signal keys.
GATE_LOCK = 0x646B7467


def _gate_enter():
    """Take one of ``INTAKE_CONCURRENCY`` slots for this transaction, waiting for one if every slot is taken.

    A flood's batches then write at most that many at once: each batch is a
    transaction that keeps a core busy (its Python, then its PostgreSQL
    backend) for tens of milliseconds, and batches let in together would take
    every core of a small machine from the reviewers' claims and decisions,
    which wait for a core, not a lock. Batches beyond the limit queue here,
    holding nothing (the slot is the transaction's first lock), and the
    throughput stays what the slots can write. A free slot is taken at once;
    with every slot taken the batch queues for one picked at random.
    """
    slots = setting("INTAKE_CONCURRENCY")
    if slots <= 0:
        return
    if slots > 1 and fetch(
        "SELECT s FROM generate_series(0, %s - 1) s WHERE pg_try_advisory_xact_lock(%s, s) LIMIT 1",
        [slots, GATE_LOCK],
    ):
        return
    fetch("SELECT pg_advisory_xact_lock(%s, %s)", [GATE_LOCK, random.randrange(slots)])


def _key_lock_id(key) -> int:
    """A stable signed 64-bit advisory lock id for a ``(source_id, external_id)`` key."""
    source_id, external_id = key
    digest = hashlib.blake2b(f"docket.signal:{source_id}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _keys_lock(keys):
    """Hold a transaction-scoped advisory lock on each signal key, in one global order (no deadlock).

    Taken before any other write of the batch, so two requests storing the same signal
    are serialised: the second sees the first's committed signal and stores nothing.
    """
    ids = sorted({_key_lock_id(k) for k in keys})
    fetch("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS u(k)", [ids])


def _store(items, *, ref, actor, now):
    """Write a validated batch; returns ``(results by input index, created count)``."""
    by_key: dict[tuple, IntakeItem] = {}
    for item in items:
        item.key = (item.source.id, item.external_id)
        by_key.setdefault(item.key, item)  # a repeat inside the batch answers like the first
    results: dict[int, dict] = {}

    def answer_stored(stored):
        for item in items:
            hit = stored.get(item.key)
            if hit is not None:
                results[item.index] = _result(hit[0], item.external_id, hit[1], hit[2])

    _gate_enter()
    # Claim the keys before writing anything for them: a concurrent request carrying the same
    # signal waits here until this one commits, then finds it stored and writes nothing of its own
    # payload (no subject, attribute or reporter from a discarded duplicate).
    _keys_lock(list(by_key))
    stored = _stored(list(by_key))
    answer_stored(stored)
    new = [item for key, item in sorted(by_key.items()) if key not in stored]
    if not new:
        return results, 0

    _subjects_upsert(new, now)
    _facets_upsert(new)
    _reporters_upsert(new)
    draws = random.random
    for item in new:
        scored_auto = item.score is not None and item.source.status == SignalSource.Status.HEALTHY
        item.disposition, item.holdout = signal_disposition(
            score=item.score,
            source_kind=item.source.kind,
            source_status=item.source.status,
            threshold=ref.thresholds.get((item.source.id, item.threat_class.id)),
            threat_class=item.threat_class,
            holdout_draw=draws() if scored_auto else None,
        )

    folded = [i for i in new if i.disposition in FOLDED]
    fold = signals_fold(folded, ref=ref)
    _automation_scope(folded, fold.cases)
    inserted = _signals_insert(new, now)

    created = 0
    lost = []  # keys stored meanwhile by a writer that did not claim them (none through intake)
    for item in new:
        item.signal_id = inserted.get(item.key)
        if item.signal_id is None:
            lost.append(item.key)
        else:
            created += 1
    if lost:
        answer_stored(_stored(lost))

    kept = [i for i in folded if i.signal_id is not None]
    if cases_settle(fold, kept, now=now):
        _automation_rescope(kept, fold.cases)
    # After the signals and cases exist: an attribute row takes the class ids their inserts gave its subject.
    _attributes_upsert(new)
    if kept:
        opened = {cid for cid, (_status, _holdout, is_new) in fold.cases.items() if is_new}
        _events_write(kept, opened, actor=actor, now=now)
        _automation_decide(kept, now=now)
    mine = {item.key: item for item in new if item.signal_id is not None}
    for item in items:
        stored_here = mine.get(item.key)
        if stored_here is not None:
            case_id = stored_here.case_id if stored_here.disposition in FOLDED else None
            results[item.index] = _result(stored_here.signal_id, item.external_id, case_id, stored_here.disposition)
    return results, created


def _subjects_upsert(items, now):
    """Upsert the batch's subjects (content owners as accounts first); sets ``item.subject_id``.

    Reach only grows (a missing or smaller figure keeps the larger one seen);
    attribute values are merged; an owner, once known, is kept unless a new one is named.
    """
    accounts: dict[str, dict] = {}
    contents: dict[str, dict] = {}

    def merge(bucket, external_id, reach, attributes, owner=None):
        row = bucket.setdefault(external_id, {"reach": 0, "attributes": defaultdict(set), "owner": None})
        row["reach"] = max(row["reach"], reach)
        for k, vs in attributes.items():
            row["attributes"][k].update(vs)
        if owner is not None:
            row["owner"] = owner

    for item in items:
        bucket = accounts if item.kind == "account" else contents
        merge(bucket, item.subject_external_id, item.reach, item.attributes, item.owner)
        if item.owner is not None:
            merge(accounts, item.owner, 0, {})

    ids = _subject_rows_upsert("account", accounts, {}, now)
    owner_ids = {ext: sid for (kind, ext), sid in ids.items()}
    if contents:
        ids.update(_subject_rows_upsert("content", contents, owner_ids, now))
    for item in items:
        item.subject_id = ids[(item.kind, item.subject_external_id)]


def _attributes_upsert(items):
    """The batch's attribute values as rows (``SubjectAttribute``), with the classes that brought each.

    Written last, once the batch's facets, cases and signals are: a new row then reads its subject's
    class ids and facets as they will stay (``casework.subject_classes``), and is written once. A value
    its subject holds, seen by each of the batch's classes within the hour, is left out of the INSERT:
    the row trigger fires for every row an INSERT proposes, before the conflict is found, and would
    read the subject and its facets for a row that stays as it is.
    """
    # (subject id, attribute kind, value) -> {class id: latest occurred_at}
    seen_by: dict[tuple[int, str, str], dict[int, datetime]] = {}
    for item in items:
        for kind, values in item.attributes.items():
            for value in values:
                by = seen_by.setdefault((item.subject_id, kind, value), {})
                at = by.get(item.threat_class.id)
                by[item.threat_class.id] = item.occurred_at if at is None else max(at, item.occurred_at)
    attr_rows = sorted(
        [
            subject_id,
            kind,
            value,
            max(by.values()),
            {str(class_id): int(at.timestamp()) for class_id, at in sorted(by.items())},
        ]
        for (subject_id, kind, value), by in seen_by.items()
    )
    if attr_rows:
        fetch(
            f"""
            INSERT INTO casework_subjectattribute AS a (subject_id, kind, value, seen_at, seen_by)
            SELECT (r->>0)::bigint, r->>1, r->>2, (r->>3)::timestamptz, (r->4)::jsonb
              FROM json_array_elements(%s::json) r
             -- Probed by subject alone (a subject holds few values): compared with "=", kind and value would let
             -- the planner walk every holder of a value a wave shares through the (kind, value) index.
             WHERE NOT EXISTS (SELECT 1 FROM casework_subjectattribute h
                                WHERE h.subject_id = (r->>0)::bigint
                                  AND (h.kind, h.value) IS NOT DISTINCT FROM (r->>1, r->>2)
                                  AND NOT {_seen_later("(r->4)::jsonb", "h")})
            ORDER BY 1, 2, 3
            ON CONFLICT (subject_id, kind, value) DO UPDATE SET
                seen_at = GREATEST(a.seen_at, EXCLUDED.seen_at),
                seen_by = {_MERGE_SEEN_BY}
                -- to the hour is enough for campaign windows, and spares a rewrite per signal
                WHERE {_seen_later("EXCLUDED.seen_by", "a")}
            """,
            [json_rows(attr_rows)],
        )


def _seen_later(seen_by: str, held: str) -> str:
    """SQL: ``seen_by`` (new times per class) brings a class later than an hour after the row ``held`` last had it."""
    return f"""EXISTS (SELECT 1 FROM jsonb_each_text({seen_by}) e
                      WHERE COALESCE(({held}.seen_by ->> e.key)::bigint, 0) < e.value::bigint - 3600)"""


# Per class, the later of the stored and the new time.
_MERGE_SEEN_BY = """(
    SELECT jsonb_object_agg(k, t) FROM (
        SELECT k, max(t) AS t FROM (
            SELECT key AS k, value::bigint AS t FROM jsonb_each_text(a.seen_by)
            UNION ALL
            SELECT key, value::bigint FROM jsonb_each_text(EXCLUDED.seen_by)
        ) both_times GROUP BY k
    ) latest
)"""


def _facets_upsert(items):
    """What each class's signals of the batch said of each subject (``SubjectFacet``): reach grows, values merge.

    Written for every new signal, whatever its disposition, like the subject itself.
    """
    facets: dict[tuple[int, int], dict] = {}
    for item in items:
        row = facets.setdefault((item.subject_id, item.threat_class.id), {"reach": 0, "attributes": defaultdict(set)})
        row["reach"] = max(row["reach"], item.reach)
        for k, vs in item.attributes.items():
            row["attributes"][k].update(vs)
    rows = [
        [subject_id, class_id, r["reach"], {k: sorted(v) for k, v in r["attributes"].items()}]
        for (subject_id, class_id), r in sorted(facets.items())
    ]
    fetch(
        f"""
        INSERT INTO casework_subjectfacet AS s (subject_id, threat_class_id, reach, attributes)
        SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::bigint, (r->3)::jsonb FROM json_array_elements(%s::json) r
        -- A facet that would learn nothing is left out of the INSERT: proposed, it would conflict, and a conflict
        -- locks the stored row (a write of the row's lock and its WAL) even when the update is skipped.
         WHERE NOT EXISTS (SELECT 1 FROM casework_subjectfacet h
                            WHERE h.subject_id = (r->>0)::bigint AND h.threat_class_id = (r->>1)::bigint
                              AND h.reach >= (r->>2)::bigint AND h.attributes @> (r->3)::jsonb)
        ORDER BY 1, 2
        ON CONFLICT (subject_id, threat_class_id) DO UPDATE SET
            reach = GREATEST(s.reach, EXCLUDED.reach),
            attributes = {_MERGE_ATTRIBUTES}
        -- A facet that learns nothing new is not rewritten.
        WHERE EXCLUDED.reach > s.reach OR NOT (s.attributes @> EXCLUDED.attributes)
        """,
        [json_rows(rows)],
    )


_MERGE_ATTRIBUTES = """
    CASE WHEN EXCLUDED.attributes = '{}'::jsonb THEN s.attributes ELSE (
        SELECT COALESCE(jsonb_object_agg(u.k, u.vals), '{}'::jsonb) FROM (
            SELECT k, jsonb_agg(v ORDER BY v) AS vals FROM (
                SELECT e.key AS k, x.v
                FROM jsonb_each(CASE WHEN jsonb_typeof(s.attributes) = 'object' THEN s.attributes
                                     ELSE '{}'::jsonb END) e
                CROSS JOIN LATERAL jsonb_array_elements_text(
                    CASE WHEN jsonb_typeof(e.value) = 'array' THEN e.value ELSE jsonb_build_array(e.value) END
                ) x(v)
                UNION
                SELECT e.key, x.v
                FROM jsonb_each(EXCLUDED.attributes) e
                CROSS JOIN LATERAL jsonb_array_elements_text(e.value) x(v)
            ) pairs GROUP BY k
        ) u
    ) END
"""


def _subject_rows_upsert(kind, rows, owner_ids, now):
    ordered = [
        [
            ext,
            owner_ids.get(r["owner"]) if r["owner"] else None,
            r["reach"],
            {k: sorted(v) for k, v in r["attributes"].items()},
        ]
        for ext, r in sorted(rows.items())
    ]
    params = {"kind": kind, "rows": json_rows(ordered), "now": now}
    found = fetch(
        f"""
        INSERT INTO casework_subject AS s (kind, external_id, owner_id, reach, attributes, created_at, updated_at)
        SELECT %(kind)s, r->>0, (r->>1)::bigint, (r->>2)::bigint, (r->3)::jsonb, %(now)s, %(now)s
        FROM json_array_elements(%(rows)s::json) r
        -- One that would learn nothing is left out (read below instead): a conflict locks the stored row even
        -- when the update is skipped, and a batch would wait for every other transaction holding its subjects.
        WHERE NOT EXISTS (SELECT 1 FROM casework_subject h
                           WHERE h.kind = %(kind)s AND h.external_id = r->>0
                             AND h.reach >= (r->>2)::bigint
                             AND ((r->>1) IS NULL OR h.owner_id = (r->>1)::bigint)
                             AND h.attributes @> (r->3)::jsonb)
        ORDER BY r->>0
        ON CONFLICT (kind, external_id) DO UPDATE SET
            reach = GREATEST(s.reach, EXCLUDED.reach),
            owner_id = COALESCE(EXCLUDED.owner_id, s.owner_id),
            attributes = {_MERGE_ATTRIBUTES},
            updated_at = EXCLUDED.updated_at
        -- A subject that learns nothing new is not rewritten (its row stays as it is).
        WHERE EXCLUDED.reach > s.reach
           OR (EXCLUDED.owner_id IS NOT NULL AND EXCLUDED.owner_id IS DISTINCT FROM s.owner_id)
           OR NOT (s.attributes @> EXCLUDED.attributes)
        RETURNING s.id, s.external_id
        """,
        params,
    )
    ids = {(kind, ext): sid for sid, ext in found}
    if len(ids) < len(ordered):
        unchanged = [row[0] for row in ordered if (kind, row[0]) not in ids]
        ids.update(
            ((kind, ext), sid)
            for sid, ext in fetch(
                "SELECT s.id, s.external_id FROM json_array_elements_text(%s::json) e(ext)"
                " JOIN casework_subject s ON s.kind = %s AND s.external_id = e.ext",
                [json_rows(unchanged), kind],
            )
        )
    return ids


def _reporters_upsert(items):
    """Register new reporters (first seen at their earliest signal here); sets ``item.reporter_id``."""
    first: dict[str, datetime] = {}
    for item in items:
        if item.reporter is not None:
            first[item.reporter] = min(first.get(item.reporter, item.occurred_at), item.occurred_at)
    if not first:
        return
    names = sorted(first)
    fetch(
        """
        INSERT INTO casework_reporter (external_id, first_seen_at, reports_decided, reports_upheld)
        SELECT r->>0, (r->>1)::timestamptz, 0, 0 FROM json_array_elements(%s::json) r
        ORDER BY r->>0
        ON CONFLICT (external_id) DO NOTHING
        """,
        [json_rows([[n, first[n]] for n in names])],
    )
    ids = dict(
        fetch(
            "SELECT r.external_id, r.id FROM json_array_elements_text(%s::json) e(ext)"
            " JOIN casework_reporter r ON r.external_id = e.ext",
            [json_rows(names)],
        )
    )
    for item in items:
        if item.reporter is not None:
            item.reporter_id = ids[item.reporter]


def _automation_scope(items, cases):
    """Automation decides only an open case that is not a holdout sample; otherwise a human does."""
    holdout_cases = {i.case_id for i in items if i.holdout}
    for item in items:
        if item.disposition != AUTO_ACTIONED:
            continue
        status, holdout, _ = cases[item.case_id]
        if status != "open" or holdout or item.case_id in holdout_cases:
            item.disposition = QUEUED


def _automation_rescope(items, cases):
    """Items that joined a case another request opened meanwhile take automation's scope from that case;
    a signal stored as auto-actioned that no longer is becomes queued."""
    before = [i.disposition for i in items]
    _automation_scope(items, cases)
    changed = [i.signal_id for i, was in zip(items, before, strict=True) if i.disposition != was]
    if changed:
        Signal.objects.filter(pk__in=changed).update(disposition=QUEUED)


def _signals_insert(items, now):
    """Insert the new signals; ``{key: id}`` for those stored here (a concurrent twin wins silently)."""
    rows = fetch(
        """
        INSERT INTO casework_signal (
            source_id, external_id, subject_id, threat_class_id, score, reporter_id, reason,
            occurred_at, received_at, disposition, case_id, holdout
        )
        SELECT (r->>0)::bigint, r->>1, (r->>2)::bigint, (r->>3)::bigint, (r->>4)::float8, (r->>5)::bigint,
               r->>6, (r->>7)::timestamptz, %(now)s, r->>8, (r->>9)::bigint, (r->>10)::bool
        FROM json_array_elements(%(rows)s::json) r
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING
        RETURNING id, source_id, external_id
        """,
        {
            "rows": json_rows(
                [
                    [
                        i.source.id,
                        i.external_id,
                        i.subject_id,
                        i.threat_class.id,
                        i.score,
                        i.reporter_id,
                        i.reason,
                        i.occurred_at,
                        i.disposition,
                        i.case_id if i.disposition in FOLDED else None,
                        i.holdout,
                    ]
                    for i in items
                ]
            ),
            "now": now,
        },
    )
    return {(source_id, ext): sid for sid, source_id, ext in rows}


def _events_write(items, opened, *, actor, now):
    """``opened`` for each case opened here, ``signals_added`` (with counts) for each case touched."""
    per_case: dict[int, dict] = {}
    for item in items:
        entry = per_case.setdefault(item.case_id, {"signals": 0, "reporters": set(), "sources": set()})
        entry["signals"] += 1
        if item.reporter is not None:
            entry["reporters"].add(item.reporter)
        entry["sources"].add(item.source.slug)
    user, label = actor_fields(actor)
    rows = []
    for case_id in sorted(per_case):
        entry = per_case[case_id]
        if case_id in opened:
            rows.append([case_id, *events.opened()])
        added = events.signals_added(
            signals=entry["signals"], reporters=len(entry["reporters"]), sources=entry["sources"]
        )
        rows.append([case_id, *added])
    # Set-based like every other intake write (same columns ``case_events_add_bulk`` writes).
    fetch(
        """
        INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
        SELECT (r->>0)::bigint, %(at)s, %(actor)s, %(label)s, r->>1, (r->2)::jsonb
        FROM json_array_elements(%(rows)s::json) r
        """,
        {"rows": json_rows(rows), "at": now, "actor": user.pk if user else None, "label": label},
    )


# The automated decision is the reviews app's (a layer above): it registers it at start-up.
# ``automated_decisions(*, actions, at)`` takes ``{case id: action}`` and decides the whole wave in
# one write, returning ``(decisions, {case id: DocketError})`` for the cases the rule refuses.
automated_decisions = Hook("casework.intake.automated_decisions")


def _automation_decide(items, *, now):
    """Automation decides each open case an auto-actioned signal joined (through the registered decision).

    The wave is decided set-based; a case the rule refuses keeps its signals for a human.
    """
    actions = {i.case_id: i.threat_class.auto_action for i in items if i.disposition == AUTO_ACTIONED}
    if not actions:
        return
    with transaction.atomic(savepoint=False):  # inside intake's transaction: no savepoint round trips
        _, refused = automated_decisions(actions=actions, at=now)
    for case_id, e in sorted(refused.items()):
        # Misconfigured automation (e.g. the action left the ladder) must not lose the
        # signals: the case stays open for a human.
        log.warning("automation could not decide case %s: %s; queued for review", case_id, e.detail)
        ids = [i.signal_id for i in items if i.case_id == case_id and i.disposition == AUTO_ACTIONED]
        Signal.objects.filter(pk__in=ids).update(disposition=QUEUED)
        for i in items:
            if i.case_id == case_id and i.disposition == AUTO_ACTIONED:
                i.disposition = QUEUED
