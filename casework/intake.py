"""Intake: platform signals become stored signals and prioritised cases.

``signals_ingest`` is the one intake path: the API, ``simulate`` and
``docket_demo`` call it. A batch is validated whole before anything is written,
then stored in a few set-based statements (not a statement per signal):

1. look up which ``(source, external_id)`` keys are already stored (repeats answer the stored result);
2. upsert subjects (content owners as accounts), their attribute rows and the reporters;
3. decide each signal's disposition (``disposition_for``);
4. fold queued signals into cases: join the active case of (subject, class) or open one;
5. insert the signals ``ON CONFLICT DO NOTHING``; a key a concurrent request stored
   first answers that request's stored result, so a duplicate never counts twice;
6. refresh the touched cases from their signals (counts, strength, priority: ``casework.priority``),
   write their events, let automation decide auto-actioned cases;
7. after commit, enqueue the per-case reprioritisation (a broker outage only logs).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from docket.conf import setting
from docket.errors import DocketError
from docket.queueing import enqueue_on_commit
from policies.models import ThreatClass, Threshold
from reviews.models import Queue

from . import events
from .models import Case, Signal, SignalSource
from .priority import case_reprioritise
from .services import actor_fields

log = logging.getLogger(__name__)

MAX_TEXT = 200
MAX_REASON = 10_000
MAX_ATTRIBUTE_KIND = 40
MAX_ATTRIBUTE_VALUE = 300
MAX_ATTRIBUTE_VALUES = 100
BIGINT_MAX = 2**63 - 1
DEADLOCK_ATTEMPTS = 3

QUEUED = Signal.Disposition.QUEUED.value
AUTO_ACTIONED = Signal.Disposition.AUTO_ACTIONED.value
HELD = Signal.Disposition.HELD.value
BELOW_THRESHOLD = Signal.Disposition.BELOW_THRESHOLD.value
FOLDED = (QUEUED, AUTO_ACTIONED)
REPRIORITISE_TASK = "casework.tasks.reprioritise_cases"


# --- dispositions ---------------------------------------------------------------------------


def _disposition(*, score, source_kind, source_status, threshold, threat_class, holdout_draw):
    """``(disposition, holdout)``: the rule behind ``disposition_for``."""
    if source_status in (SignalSource.Status.SUSPECT, SignalSource.Status.QUARANTINED):
        return HELD, False
    if score is None:
        # Unscored kinds (user reports, trusted flaggers, legal requests) always reach a human.
        return QUEUED, False
    review_at = threshold.review_at if threshold is not None else 0.0
    auto_at = threshold.auto_action_at if threshold is not None else None
    if score < review_at:
        return BELOW_THRESHOLD, False
    automatable = threat_class.automation != "none" and bool(threat_class.auto_action)
    if auto_at is not None and score >= auto_at and automatable:
        if holdout_draw is not None and holdout_draw < setting("HOLDOUT_RATE"):
            return QUEUED, True
        return AUTO_ACTIONED, False
    return QUEUED, False


def disposition_for(*, score, source_kind, source_status, threshold, threat_class, holdout_draw) -> str:
    """What intake does with one signal: ``queued``, ``auto_actioned``, ``held`` or ``below_threshold``.

    Pure. ``threshold`` is the source's ``Threshold`` for the class (or any object
    with ``review_at`` and ``auto_action_at``), ``None`` meaning review from 0 and
    no automation. A suspect or quarantined source's signals are held. A signal
    without a score (unscored source kinds) is queued. At or above
    ``auto_action_at`` automation acts when the class allows it
    (``automation != "none"`` and an ``auto_action``), except for the holdout:
    when ``holdout_draw`` (uniform in [0, 1), ``None`` for no draw) falls under
    ``DOCKET["HOLDOUT_RATE"]`` the signal is queued for a human instead.
    """
    return _disposition(
        score=score,
        source_kind=source_kind,
        source_status=source_status,
        threshold=threshold,
        threat_class=threat_class,
        holdout_draw=holdout_draw,
    )[0]


# --- validation -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    index: int
    source: SignalSource
    external_id: str
    threat_class: ThreatClass
    kind: str
    subject_external_id: str
    owner: str | None
    reach: int
    attributes: dict[str, list[str]]
    score: float | None
    reporter: str | None
    reason: str
    occurred_at: datetime
    # filled while storing
    key: tuple = ()
    subject_id: int | None = None
    reporter_id: int | None = None
    disposition: str = ""
    holdout: bool = False
    case_id: int | None = None
    signal_id: int | None = None


class _Invalid(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _text(value, what, *, max_len=MAX_TEXT, empty=False):
    if not isinstance(value, str):
        raise _Invalid("invalid", f"{what} must be a string.")
    if "\x00" in value:
        raise _Invalid("invalid", f"{what} must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") PostgreSQL cannot store
        raise _Invalid("invalid", f"{what} must be valid Unicode.") from None
    if not empty and not value.strip():
        raise _Invalid("invalid", f"{what} must not be blank.")
    if len(value) > max_len:
        raise _Invalid("invalid", f"{what} must be at most {max_len} characters.")
    return value


def _attributes(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid("invalid", "attributes must be an object of lists of strings.")
    out, total = {}, 0
    for kind, values in value.items():
        _text(kind, "An attribute kind", max_len=MAX_ATTRIBUTE_KIND)
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list):
            raise _Invalid("invalid", f"attributes.{kind} must be a list of strings.")
        clean = {_text(v, f"A value of attributes.{kind}", max_len=MAX_ATTRIBUTE_VALUE) for v in values}
        total += len(clean)
        if total > MAX_ATTRIBUTE_VALUES:
            raise _Invalid("invalid", f"At most {MAX_ATTRIBUTE_VALUES} attribute values per subject.")
        if clean:
            out[kind] = sorted(clean)
    return out


def _subject(value, errors):
    if not isinstance(value, dict):
        errors["subject"] = ["subject must be an object with kind and external_id."]
        return None
    sub = {}
    out = {}
    for name in ("kind", "external_id", "owner", "reach", "attributes"):
        try:
            raw = value.get(name)
            if name == "kind":
                if raw not in ("account", "content"):
                    raise _Invalid("invalid", "kind must be account or content.")
                out[name] = raw
            elif name == "external_id":
                out[name] = _text(raw, "external_id")
            elif name == "owner":
                if raw is not None:
                    raw = _text(raw, "owner")
                    if value.get("kind") != "content":
                        raise _Invalid("invalid", "Only content has an owner.")
                out[name] = raw
            elif name == "reach":
                if raw is None:
                    out[name] = 0
                elif isinstance(raw, bool) or not isinstance(raw, int | float):
                    raise _Invalid("invalid", "reach must be a whole number.")
                elif isinstance(raw, float) and (not math.isfinite(raw) or not raw.is_integer()):
                    raise _Invalid("invalid", "reach must be a whole number.")
                elif not 0 <= raw <= BIGINT_MAX:
                    raise _Invalid("invalid", f"reach must be between 0 and {BIGINT_MAX}.")
                else:
                    out[name] = int(raw)
            else:
                out[name] = _attributes(raw)
        except _Invalid as e:
            sub[name] = [e.message]
    if sub:
        errors["subject"] = sub
        return None
    return out


def _occurred_at(value, now):
    if value is None:
        return now
    if not isinstance(value, str) or "\x00" in value or len(value) > 64:
        raise _Invalid("invalid", "occurred_at must be an ISO 8601 time with a zone.")
    try:
        at = parse_datetime(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise _Invalid("invalid", "occurred_at must be an ISO 8601 time with a zone.")
    if at.year < 2000:
        raise _Invalid("invalid", "occurred_at is implausibly old.")
    # A platform clock slightly ahead must not fail intake; a signal never occurs after receipt.
    return min(at, now)


def _validate_one(index, raw, ref, now):
    """``(_Item, None)`` or ``(None, (code, {field: [messages]}))``."""
    if not isinstance(raw, dict):
        return None, ("invalid", {"non_field_errors": ["A signal must be an object."]})
    errors: dict = {}
    codes: list[str] = []

    def check(name, fn):
        try:
            return fn()
        except _Invalid as e:
            errors[name] = [e.message]
            codes.append(e.code)
            return None

    def source():
        slug = _text(raw.get("source"), "source", max_len=60)
        found = ref.sources.get(slug)
        if found is None:
            raise _Invalid("unknown_source", f"Unknown source '{slug}'.")
        return found

    def threat_class():
        slug = _text(raw.get("threat_class"), "threat_class", max_len=40)
        found = ref.classes.get(slug)
        if found is None:
            raise _Invalid("unknown_threat_class", f"Unknown threat class '{slug}'.")
        return found

    src = check("source", source)
    external_id = check("external_id", lambda: _text(raw.get("external_id"), "external_id"))
    tc = check("threat_class", threat_class)
    subject = _subject(raw.get("subject"), errors)
    if subject is None and "subject" in errors:
        codes.append("invalid")

    def score():
        value = raw.get("score")
        if value is None:
            if src is not None and src.kind in SignalSource.SCORED_KINDS:
                raise _Invalid("invalid", f"score is required for {src.kind} sources.")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _Invalid("invalid", "score must be a number between 0 and 1.")
        if not 0 <= value <= 1:
            raise _Invalid("invalid", "score must be between 0 and 1.")
        return float(value)

    def reporter():
        value = raw.get("reporter")
        if value is None:
            if src is not None and src.kind == SignalSource.Kind.USER_REPORT:
                raise _Invalid("invalid", "reporter is required for user reports.")
            return None
        return _text(value, "reporter")

    def reason():
        value = raw.get("reason")
        return "" if value is None else _text(value, "reason", max_len=MAX_REASON, empty=True)

    sc = check("score", score)
    rep = check("reporter", reporter)
    why = check("reason", reason)
    at = check("occurred_at", lambda: _occurred_at(raw.get("occurred_at"), now))
    if errors:
        return None, (codes[0] if codes else "invalid", errors)
    return (
        _Item(
            index=index,
            source=src,
            external_id=external_id,
            threat_class=tc,
            kind=subject["kind"],
            subject_external_id=subject["external_id"],
            owner=subject["owner"],
            reach=subject["reach"],
            attributes=subject["attributes"],
            score=sc,
            reporter=rep,
            reason=why,
            occurred_at=at,
        ),
        None,
    )


@dataclass
class IntakeReference:
    """What a batch resolves once: its sources, classes, thresholds and queues (also used by source confirm)."""

    sources: dict[str, SignalSource]
    classes: dict[str, ThreatClass]
    thresholds: dict[tuple[int, int], Threshold] = field(default_factory=dict)
    queues: dict[int, int] = field(default_factory=dict)


def _reference(raw_items) -> IntakeReference:
    slugs = {i.get("source") for i in raw_items if isinstance(i, dict) and isinstance(i.get("source"), str)}
    slugs = {s for s in slugs if "\x00" not in s}
    sources = {s.slug: s for s in SignalSource.objects.filter(slug__in=slugs)} if slugs else {}
    classes = {c.slug: c for c in ThreatClass.objects.all()}
    return IntakeReference(sources=sources, classes=classes)


def routes_resolve(ref, items):
    """Thresholds of the batch's (source, class) pairs and the queue of each class (two queries)."""
    source_ids = {i.source.id for i in items}
    class_ids = {i.threat_class.id for i in items}
    ref.thresholds = {
        (t.source_id, t.threat_class_id): t
        for t in Threshold.objects.filter(source_id__in=source_ids, threat_class_id__in=class_ids)
    }
    through = Queue.threat_classes.through
    routes = through.objects.filter(threatclass_id__in=class_ids).order_by("queue__position", "queue__slug")
    for class_id, queue_id in routes.values_list("threatclass_id", "queue_id"):
        ref.queues.setdefault(class_id, queue_id)
    missing = class_ids - ref.queues.keys()
    if missing:
        # A class no queue takes still reaches humans: the escalations queue.
        fallback = Queue.objects.filter(slug="escalations").values_list("id", flat=True).first()
        if fallback is None:
            raise DocketError("unroutable", "No queue takes this threat class and there is no escalations queue.")
        for class_id in missing:
            ref.queues[class_id] = fallback


# --- the service ----------------------------------------------------------------------------


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
    ref = _reference(raw)
    parsed, errors, first_code = [], {}, None
    for index, entry in enumerate(raw):
        item, problem = _validate_one(index, entry, ref, now)
        if problem is not None:
            code, errs = problem
            first_code = first_code or code
            errors[str(index)] = errs
        else:
            parsed.append(item)
    if errors:
        detail = "The signal is invalid." if single else f"{len(errors)} of {len(raw)} signals are invalid."
        raise DocketError(first_code, detail, errors=errors["0"] if single else errors)
    routes_resolve(ref, parsed)

    attempts = 1 if connection.in_atomic_block else DEADLOCK_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                results, created, touched = _store(parsed, ref=ref, actor=actor, now=now)
                if touched:
                    # A broker outage only logs: the beat sweep recomputes every active case.
                    enqueue_on_commit(
                        REPRIORITISE_TASK, sorted(touched), what=f"reprioritisation of {len(touched)} case(s)"
                    )
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


def _fetch(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _json(rows) -> str:
    """Rows for a bulk statement as one JSON text parameter (``json_array_elements`` reads it).

    One string is far cheaper to bind than a dozen arrays of a thousand elements each.
    """
    return json.dumps(rows, separators=(",", ":"), default=str)


def _stored(keys):
    """Stored signals for ``(source_id, external_id)`` keys: ``{key: (id, case_id, disposition)}``."""
    if not keys:
        return {}
    rows = _fetch(
        """
        SELECT s.source_id, s.external_id, s.id, s.case_id, s.disposition
        FROM (SELECT (r->>0)::bigint AS source_id, r->>1 AS external_id FROM json_array_elements(%s::json) r) k
        JOIN casework_signal s ON s.source_id = k.source_id AND s.external_id = k.external_id
        """,
        [_json(keys)],
    )
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


def _store(items, *, ref, actor, now):
    """Write a validated batch; returns ``(results by input index, created count, touched case ids)``."""
    by_key: dict[tuple, _Item] = {}
    for item in items:
        item.key = (item.source.id, item.external_id)
        by_key.setdefault(item.key, item)  # a repeat inside the batch answers like the first
    results: dict[int, dict] = {}

    def answer_stored(stored):
        for item in items:
            hit = stored.get(item.key)
            if hit is not None:
                results[item.index] = _result(hit[0], item.external_id, hit[1], hit[2])

    stored = _stored(list(by_key))
    answer_stored(stored)
    new = [item for key, item in sorted(by_key.items()) if key not in stored]
    if not new:
        return results, 0, set()

    _subjects_upsert(new, now)
    _reporters_upsert(new)
    draws = random.random
    for item in new:
        scored_auto = item.score is not None and item.source.status == SignalSource.Status.HEALTHY
        item.disposition, item.holdout = _disposition(
            score=item.score,
            source_kind=item.source.kind,
            source_status=item.source.status,
            threshold=ref.thresholds.get((item.source.id, item.threat_class.id)),
            threat_class=item.threat_class,
            holdout_draw=draws() if scored_auto else None,
        )

    folded = [i for i in new if i.disposition in FOLDED]
    cases = cases_open_or_join(folded, ref=ref, now=now)
    _automation_scope(folded, cases)
    inserted = _signals_insert(new, now)

    created = 0
    lost = []  # keys a concurrent request stored first
    for item in new:
        item.signal_id = inserted.get(item.key)
        if item.signal_id is None:
            lost.append(item.key)
        else:
            created += 1
    if lost:
        answer_stored(_stored(lost))

    kept = [i for i in folded if i.signal_id is not None]
    touched = {i.case_id for i in kept}
    opened = {cid for cid, (_status, _holdout, is_new) in cases.items() if is_new}
    empty = opened - touched
    if empty:
        # Opened for signals a concurrent request stored first: nothing to review, no event yet.
        _fetch("DELETE FROM casework_case WHERE id = ANY(%s)", [sorted(empty)])
    if touched:
        case_reprioritise(case_ids=touched, now=now)
        _events_write(kept, opened & touched, actor=actor, now=now)
        _automation_decide(kept, now=now)
    mine = {item.key: item for item in new if item.signal_id is not None}
    for item in items:
        stored_here = mine.get(item.key)
        if stored_here is not None:
            case_id = stored_here.case_id if stored_here.disposition in FOLDED else None
            results[item.index] = _result(stored_here.signal_id, item.external_id, case_id, stored_here.disposition)
    return results, created, touched


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

    seen_at: dict[tuple[str, str], datetime] = {}
    for item in items:
        bucket = accounts if item.kind == "account" else contents
        merge(bucket, item.subject_external_id, item.reach, item.attributes, item.owner)
        if item.owner is not None:
            merge(accounts, item.owner, 0, {})
        k = (item.kind, item.subject_external_id)
        if item.attributes:
            seen_at[k] = max(seen_at.get(k, item.occurred_at), item.occurred_at)

    ids = _subject_rows_upsert("account", accounts, {}, now)
    owner_ids = {ext: sid for (kind, ext), sid in ids.items()}
    if contents:
        ids.update(_subject_rows_upsert("content", contents, owner_ids, now))
    for item in items:
        item.subject_id = ids[(item.kind, item.subject_external_id)]

    attr_rows = sorted(
        [ids[k], kind, value, at]
        for k, at in seen_at.items()
        for kind, values in (accounts if k[0] == "account" else contents)[k[1]]["attributes"].items()
        for value in values
    )
    if attr_rows:
        _fetch(
            """
            INSERT INTO casework_subjectattribute AS a (subject_id, kind, value, seen_at)
            SELECT (r->>0)::bigint, r->>1, r->>2, (r->>3)::timestamptz FROM json_array_elements(%s::json) r
            ORDER BY 1, 2, 3
            ON CONFLICT (subject_id, kind, value) DO UPDATE SET seen_at = EXCLUDED.seen_at
                -- to the hour is enough for campaign windows, and spares a rewrite per signal
                WHERE a.seen_at < EXCLUDED.seen_at - interval '1 hour'
            """,
            [_json(attr_rows)],
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
    params = {"kind": kind, "rows": _json(ordered), "now": now}
    found = _fetch(
        f"""
        INSERT INTO casework_subject AS s (kind, external_id, owner_id, reach, attributes, created_at, updated_at)
        SELECT %(kind)s, r->>0, (r->>1)::bigint, (r->>2)::bigint, (r->3)::jsonb, %(now)s, %(now)s
        FROM json_array_elements(%(rows)s::json) r
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
            for sid, ext in _fetch(
                "SELECT s.id, s.external_id FROM json_array_elements_text(%s::json) e(ext)"
                " JOIN casework_subject s ON s.kind = %s AND s.external_id = e.ext",
                [_json(unchanged), kind],
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
    _fetch(
        """
        INSERT INTO casework_reporter (external_id, first_seen_at, reports_decided, reports_upheld)
        SELECT r->>0, (r->>1)::timestamptz, 0, 0 FROM json_array_elements(%s::json) r
        ORDER BY r->>0
        ON CONFLICT (external_id) DO NOTHING
        """,
        [_json([[n, first[n]] for n in names])],
    )
    ids = dict(
        _fetch(
            "SELECT r.external_id, r.id FROM json_array_elements_text(%s::json) e(ext)"
            " JOIN casework_reporter r ON r.external_id = e.ext",
            [_json(names)],
        )
    )
    for item in items:
        if item.reporter is not None:
            item.reporter_id = ids[item.reporter]


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
        rows = _fetch(
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
                "rows": _json(
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
            rows = _fetch(
                f"""
                SELECT c.id, c.subject_id, c.threat_class_id, c.status, c.holdout
                FROM (
                    SELECT (r->>0)::bigint AS subject_id, (r->>1)::bigint AS tc FROM json_array_elements(%s::json) r
                ) k
                JOIN casework_case c ON c.subject_id = k.subject_id AND c.threat_class_id = k.tc
                WHERE c.status IN ({_ACTIVE_SQL})
                ORDER BY c.subject_id, c.threat_class_id
                FOR UPDATE OF c
                """,
                [_json(rest)],
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


def _automation_scope(items, cases):
    """Automation decides only an open case that is not a holdout sample; otherwise a human does."""
    holdout_cases = {i.case_id for i in items if i.holdout}
    for item in items:
        if item.disposition != AUTO_ACTIONED:
            continue
        status, holdout, _ = cases[item.case_id]
        if status != "open" or holdout or item.case_id in holdout_cases:
            item.disposition = QUEUED


def _signals_insert(items, now):
    """Insert the new signals; ``{key: id}`` for those stored here (a concurrent twin wins silently)."""
    rows = _fetch(
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
            "rows": _json(
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
    _fetch(
        """
        INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
        SELECT (r->>0)::bigint, %(at)s, %(actor)s, %(label)s, r->>1, (r->2)::jsonb
        FROM json_array_elements(%(rows)s::json) r
        """,
        {"rows": _json(rows), "at": now, "actor": user.pk if user else None, "label": label},
    )


# The automated decision is the reviews app's (a layer above): it registers it at start-up.
_automation = None


def automation_register(decide) -> None:
    """Register ``decide(*, case, action, at)``, the automated decision intake asks for (reviews does, when ready).

    It raises ``DocketError`` to refuse (the case then stays open for a human).
    """
    global _automation
    _automation = decide


def _automation_decide(items, *, now):
    """Automation decides each open case an auto-actioned signal joined (through the registered decision)."""
    auto_cases = sorted({i.case_id for i in items if i.disposition == AUTO_ACTIONED})
    if not auto_cases:
        return
    if _automation is None:
        raise RuntimeError("no automated decision registered (the reviews app registers it when ready)")
    actions = {i.case_id: i.threat_class.auto_action for i in items if i.disposition == AUTO_ACTIONED}
    for case in Case.objects.filter(pk__in=auto_cases).select_related("threat_class").order_by("pk"):
        try:
            with transaction.atomic():
                _automation(case=case, action=actions[case.pk], at=now)
        except DocketError as e:
            # Misconfigured automation (e.g. the action left the ladder) must not lose the
            # signals: the case stays open for a human.
            log.warning("automation could not decide case %s: %s; queued for review", case.pk, e.detail)
            ids = [i.signal_id for i in items if i.case_id == case.pk and i.disposition == AUTO_ACTIONED]
            Signal.objects.filter(pk__in=ids).update(disposition=QUEUED)
            for i in items:
                if i.case_id == case.pk and i.disposition == AUTO_ACTIONED:
                    i.disposition = QUEUED


__all__ = ["IntakeResult", "disposition_for", "signals_ingest"]
