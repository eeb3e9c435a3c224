"""Intake, step one: a batch checked whole (types, sizes, known sources and classes) before anything is written."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.dateparse import parse_datetime

from docket.errors import DocketError
from policies.models import SignalSource, ThreatClass, Threshold

MAX_TEXT = 200
MAX_REASON = 10_000
MAX_ATTRIBUTE_KIND = 40
MAX_ATTRIBUTE_VALUE = 300
MAX_ATTRIBUTE_VALUES = 100
BIGINT_MAX = 2**63 - 1


@dataclass(slots=True)
class IntakeItem:
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


def _known(raw, field, table, *, max_len):
    """The row ``table`` holds under the slug in ``raw[field]``; ``unknown_<field>`` when it holds none."""
    slug = _text(raw.get(field), field, max_len=max_len)
    found = table.get(slug)
    if found is None:
        raise _Invalid(f"unknown_{field}", f"Unknown {field.replace('_', ' ')} '{slug}'.")
    return found


def _validate_one(index, raw, ref, now):
    """``(IntakeItem, None)`` or ``(None, (code, {field: [messages]}))``."""
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

    src = check("source", lambda: _known(raw, "source", ref.sources, max_len=60))
    external_id = check("external_id", lambda: _text(raw.get("external_id"), "external_id"))
    tc = check("threat_class", lambda: _known(raw, "threat_class", ref.classes, max_len=40))
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
        IntakeItem(
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


def intake_reference(raw_items) -> IntakeReference:
    slugs = {i.get("source") for i in raw_items if isinstance(i, dict) and isinstance(i.get("source"), str)}
    slugs = {s for s in slugs if "\x00" not in s}
    sources = {s.slug: s for s in SignalSource.objects.filter(slug__in=slugs)} if slugs else {}
    classes = {c.slug: c for c in ThreatClass.objects.all()}
    return IntakeReference(sources=sources, classes=classes)


def signals_validate(raw, *, ref, now, single) -> list[IntakeItem]:
    """Every item of the batch checked and parsed, or ``DocketError`` (400) naming each bad item's fields.

    The code is the first error's (``unknown_source``, ``unknown_threat_class`` or ``invalid``);
    errors are keyed by input index for a list. Nothing is written here.
    """
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
    return parsed
