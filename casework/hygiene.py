"""Signal hygiene: per-source health, incidents, and an admin's confirm / quarantine.

A source's health compares its last hour of signals with the same hour of week
over the previous four weeks, and the score distribution of that hour with the
source's recent past. Rates count signals by ``occurred_at`` (never later than
receipt), so a history can be backfilled. A jump that nobody else sees is a
broken pipeline until an admin says otherwise: the source becomes ``suspect``
and intake holds its new signals (stored, no case). A jump that independent
sources corroborate is real abuse: it opens a ``SourceIncident`` for the
dashboard and the source stays healthy.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.text import slugify

from docket.errors import DocketError

from .models import Signal, SignalSource, SourceIncident
from .services import case_events_add_bulk


def _setting(name, default):
    return settings.DOCKET.get(name, default)


BASELINE_WEEKS = 4
WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)
BUCKETS = 10  # score histogram: ten equal bins over [0, 1]
SCORE_SAMPLE = 5000  # at most this many newest scored signals per distribution: bounded work at any volume


@dataclass(frozen=True)
class HealthRules:
    """When a source's last hour is anomalous, and what counts as corroboration."""

    rate_factor: float = 5.0  # current >= factor x baseline (same hour of week)...
    min_spike: int = 20  # ...and at least this many signals in the hour
    score_shift: float = 0.5  # max distance between binned score CDFs (Kolmogorov–Smirnov on bins)
    min_scored: int = 20  # signals needed on each side before distributions are compared
    corroboration_hours: int = 6  # other sources' signals on the same subjects this recently corroborate
    corroboration_share: float = 0.1  # ...if they cover at least this share of the spike's subjects
    class_rise_factor: float = 2.0  # or other sources' signals of the same classes rose this much...
    class_rise_min: int = 5  # ...and number at least this many in the hour
    confirm_grace_hours: int = 6  # after an admin's confirm, a spike opens an incident instead

    @classmethod
    def from_settings(cls):
        return cls(
            rate_factor=_setting("SOURCE_RATE_FACTOR", cls.rate_factor),
            min_spike=_setting("SOURCE_MIN_SPIKE", cls.min_spike),
            score_shift=_setting("SOURCE_SCORE_SHIFT", cls.score_shift),
        )


@dataclass
class SourceHealth:
    """One source's figures for the hour ending at ``now``."""

    source_id: int
    current: int
    baseline: float | None  # None: no history for this hour of week yet
    recent_scores: dict
    baseline_scores: dict
    distance: float | None
    anomaly: str | None = None  # rate_spike | score_shift
    corroboration: dict = field(default_factory=dict)

    def summary(self):
        return {
            "baseline": self.baseline_scores,
            "recent": self.recent_scores,
            "distance": self.distance,
            "anomaly": self.anomaly,
            "corroboration": self.corroboration,
        }


# --- reading the figures -----------------------------------------------------------------------------------------

_HISTOGRAM = "ARRAY[{}]".format(", ".join(f"count(*) FILTER (WHERE b = {i})" for i in range(1, BUCKETS + 1)))

_SCORES = f"""
    SELECT count(*) AS n, avg(score) AS mean, {_HISTOGRAM} AS hist
    FROM (
        SELECT least(width_bucket(g.score, 0, 1, {BUCKETS}), {BUCKETS}) AS b, g.score
        FROM casework_signal g
        WHERE g.source_id = s.id AND g.score IS NOT NULL AND g.occurred_at > %s AND g.occurred_at <= %s
        ORDER BY g.occurred_at DESC
        LIMIT {SCORE_SAMPLE}
    ) x
"""

_COUNT = (
    "(SELECT count(*) FROM casework_signal g WHERE g.source_id = s.id AND g.occurred_at > %s AND g.occurred_at <= %s)"
)

# One row per source; every count is an index range scan on (source, occurred_at).
_HEALTH_SQL = f"""
    SELECT s.id,
           (SELECT min(g.occurred_at) FROM casework_signal g WHERE g.source_id = s.id) AS first_at,
           {", ".join(_COUNT for _ in range(BASELINE_WEEKS + 1))},
           recent.n, recent.mean, recent.hist, base.n, base.mean, base.hist
    FROM casework_signalsource s
    CROSS JOIN LATERAL ({_SCORES}) recent
    CROSS JOIN LATERAL ({_SCORES}) base
    ORDER BY s.id
"""


def _windows(now):
    """(lo, hi] of the last hour and of the same hour of week 1..4 weeks back."""
    return [(now - k * WEEK - HOUR, now - k * WEEK) for k in range(BASELINE_WEEKS + 1)]


def _distribution(n, mean, hist):
    return {"n": n, "mean": None if mean is None else round(float(mean), 4), "histogram": list(hist or [])}


def _cdf_distance(a, b):
    """Largest gap between two binned cumulative distributions (0 identical, 1 disjoint)."""
    na, nb = sum(a), sum(b)
    if not na or not nb:
        return None
    gap, ca, cb = 0.0, 0, 0
    for x, y in zip(a, b, strict=True):
        ca, cb = ca + x, cb + y
        gap = max(gap, abs(ca / na - cb / nb))
    return round(gap, 4)


def sources_health(*, now: datetime) -> list[SourceHealth]:
    """Each source's current rate, hour-of-week baseline and score distributions, in one query."""
    windows = _windows(now)
    params = [p for w in windows for p in w]
    params += [now - HOUR, now, now - BASELINE_WEEKS * WEEK, now - HOUR]
    with connection.cursor() as cur:
        cur.execute(_HEALTH_SQL, params)
        rows = cur.fetchall()
    result = []
    for row in rows:
        source_id, first_at = row[0], row[1]
        counts = row[2 : 3 + BASELINE_WEEKS]
        rn, rmean, rhist, bn, bmean, bhist = row[3 + BASELINE_WEEKS :]
        # A week counts towards the baseline only if the source was sending by the start of its window:
        # a new source has no baseline, rather than a baseline of zero.
        history = [c for (lo, _), c in zip(windows[1:], counts[1:], strict=True) if first_at and first_at <= lo]
        baseline = sum(history) / len(history) if history else None
        result.append(
            SourceHealth(
                source_id=source_id,
                current=counts[0],
                baseline=baseline,
                recent_scores=_distribution(rn, rmean, rhist),
                baseline_scores=_distribution(bn, bmean, bhist),
                distance=_cdf_distance(rhist or [], bhist or []),
            )
        )
    return result


def _anomaly(h: SourceHealth, rules: HealthRules):
    if h.baseline is not None and h.current >= rules.min_spike and h.current >= rules.rate_factor * h.baseline:
        return "rate_spike"
    if (
        h.distance is not None
        and h.distance >= rules.score_shift
        and h.recent_scores["n"] >= rules.min_scored
        and h.baseline_scores["n"] >= rules.min_scored
    ):
        return "score_shift"
    return None


_CORROBORATION_SQL = """
    WITH mine AS (
        SELECT DISTINCT subject_id FROM casework_signal
        WHERE source_id = %(source)s AND occurred_at > %(hour_lo)s AND occurred_at <= %(now)s
    )
    SELECT count(*),
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM casework_signal o
               WHERE o.subject_id = mine.subject_id AND o.source_id = ANY(%(others)s)
                 AND o.occurred_at > %(corroboration_lo)s AND o.occurred_at <= %(now)s
           ))
    FROM mine
"""

_CLASS_RISE_SQL = """
    WITH classes AS (
        SELECT DISTINCT threat_class_id AS id FROM casework_signal
        WHERE source_id = %(source)s AND occurred_at > %(hour_lo)s AND occurred_at <= %(now)s
    )
    SELECT count(*) FILTER (WHERE o.occurred_at > %(hour_lo)s),
           count(*) FILTER (WHERE o.occurred_at <= %(hour_lo)s)
    FROM classes c
    JOIN casework_signal o ON o.threat_class_id = c.id
    WHERE o.source_id = ANY(%(others)s)
      AND ((o.occurred_at > %(hour_lo)s AND o.occurred_at <= %(now)s) OR {weeks})
"""


def _corroboration(h: SourceHealth, *, others: list[int], now, rules: HealthRules):
    """What independent sources saw in the same window: the same subjects, or the same classes rising."""
    if not others:
        return {"subjects": 0, "corroborated_subjects": 0, "class_current": 0, "class_baseline": 0.0}
    windows = _windows(now)
    weeks = " OR ".join(
        f"(o.occurred_at > %(lo{k})s AND o.occurred_at <= %(hi{k})s)" for k in range(1, BASELINE_WEEKS + 1)
    )
    params = {
        "source": h.source_id,
        "others": others,
        "now": now,
        "hour_lo": now - HOUR,
        "corroboration_lo": now - timedelta(hours=rules.corroboration_hours),
    }
    for k, (lo, hi) in enumerate(windows):
        params[f"lo{k}"], params[f"hi{k}"] = lo, hi
    with connection.cursor() as cur:
        cur.execute(_CORROBORATION_SQL, params)
        subjects, corroborated = cur.fetchone()
        cur.execute(_CLASS_RISE_SQL.format(weeks=weeks), params)
        class_current, class_weeks = cur.fetchone()
    return {
        "subjects": subjects,
        "corroborated_subjects": corroborated,
        "class_current": class_current,
        "class_baseline": round(class_weeks / BASELINE_WEEKS, 3),
    }


def _is_corroborated(c, rules: HealthRules):
    if c.get("confirmed_by_admin"):
        return True
    if c["subjects"] and c["corroborated_subjects"] >= max(1, math.ceil(rules.corroboration_share * c["subjects"])):
        return True
    return c["class_current"] >= rules.class_rise_min and c["class_current"] >= rules.class_rise_factor * max(
        c["class_baseline"], 1.0
    )


# --- the periodic check ------------------------------------------------------------------------------------------


def sources_check_health(*, now: datetime | None = None, rules: HealthRules | None = None) -> dict:
    """Refresh every source's rates and score summary, and act on anomalies.

    An uncorroborated anomaly turns a healthy source ``suspect`` (intake then holds
    its new signals); a corroborated one opens the source's incident (at most one
    open) and leaves it healthy; a calm hour resolves an open incident. Sources
    already suspect or quarantined keep their status: only an admin moves them.
    Held signals of a healthy source (left by a race with a confirm) are released.
    Returns the slugs acted on.
    """
    now = now or timezone.now()
    rules = rules or HealthRules.from_settings()
    with transaction.atomic():
        sources = {s.pk: s for s in SignalSource.objects.select_for_update()}
        healthy = [pk for pk, s in sources.items() if s.status == SignalSource.Status.HEALTHY]
        grace = now - timedelta(hours=rules.confirm_grace_hours)
        suspect, incidents, calm = [], [], []
        figures = sources_health(now=now)
        for h in figures:
            source = sources[h.source_id]
            h.anomaly = _anomaly(h, rules)
            if h.anomaly and source.status == SignalSource.Status.HEALTHY:
                if source.status_changed_at and source.status_changed_at >= grace:
                    h.corroboration = {"confirmed_by_admin": True}
                else:
                    others = [pk for pk in healthy if pk != h.source_id]
                    h.corroboration = _corroboration(h, others=others, now=now, rules=rules)
                (incidents if _is_corroborated(h.corroboration, rules) else suspect).append(h)
            elif not h.anomaly:
                calm.append(h.source_id)
            source.baseline_rate = None if h.baseline is None else round(h.baseline, 3)
            source.current_rate = float(h.current)
            source.score_summary = h.summary()
            source.health_checked_at = now
        SignalSource.objects.bulk_update(
            sources.values(), ["baseline_rate", "current_rate", "score_summary", "health_checked_at"]
        )
        SignalSource.objects.filter(pk__in=[h.source_id for h in suspect], status="healthy").update(
            status=SignalSource.Status.SUSPECT, status_changed_at=now
        )
        SourceIncident.objects.bulk_create(
            [
                SourceIncident(
                    source_id=h.source_id,
                    kind=h.anomaly,
                    opened_at=now,
                    detail={
                        "current_rate": h.current,
                        "baseline_rate": h.baseline,
                        "distance": h.distance,
                        "corroboration": h.corroboration,
                    },
                )
                for h in incidents
            ],
            ignore_conflicts=True,  # one open incident per source (partial unique constraint)
        )
        SourceIncident.objects.filter(source_id__in=calm, status=SourceIncident.Status.OPEN).update(
            status=SourceIncident.Status.RESOLVED, resolved_at=now
        )
        # One probe of the held-signals index per healthy source, not a scan of everything held.
        holds = Signal.objects.filter(source_id=OuterRef("pk"), disposition=Signal.Disposition.HELD)
        stray = list(
            SignalSource.objects.filter(Exists(holds), status=SignalSource.Status.HEALTHY).values_list("pk", flat=True)
        )
        released = sum(_held_release(source_id=pk, actor=None, at=now) for pk in stray)
    return {
        "checked": len(figures),
        "suspect": sorted(sources[h.source_id].slug for h in suspect),
        "incidents": sorted(sources[h.source_id].slug for h in incidents),
        "released": released,
    }


def incidents_open():
    """Open source incidents, newest first, for the dashboard."""
    return SourceIncident.objects.filter(status=SourceIncident.Status.OPEN).select_related("source")


# --- admin actions -----------------------------------------------------------------------------------------------


def _lock_source(slug):
    try:
        return SignalSource.objects.select_for_update().get(slug=slug)
    except SignalSource.DoesNotExist:
        raise DocketError("not_found", "No such source.", status=404) from None


@dataclass
class _Held:
    """A held signal in the shape intake's folding reads (subject, class, time, source, reporter)."""

    signal_id: int
    subject_id: int
    threat_class: object
    occurred_at: datetime
    source: SignalSource
    reporter: str | None
    case_id: int | None = None


RELEASE_CHUNK = 5000


def _held_release(*, source_id, actor, at) -> int:
    """Fold every held signal of the source into cases, exactly as intake folds new ones; returns how many.

    Released signals become ``queued`` (``released_at`` set): an admin confirmed
    the spike is real, so they go to humans rather than to automation. Cases are
    joined or opened by intake's own folding, their counts and priority refreshed
    from their signals, and each case gets an ``opened`` and a ``signals_released`` event.
    """
    from .intake import IntakeReference, cases_open_or_join, routes_resolve
    from .priority import case_reprioritise

    held = list(
        Signal.objects.select_for_update()
        .filter(source_id=source_id, disposition=Signal.Disposition.HELD)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    source = SignalSource.objects.get(pk=source_id)
    for start in range(0, len(held), RELEASE_CHUNK):
        rows = (
            Signal.objects.filter(pk__in=held[start : start + RELEASE_CHUNK])
            .select_related("threat_class", "reporter")
            .order_by("pk")
        )
        items = [
            _Held(
                signal_id=s.pk,
                subject_id=s.subject_id,
                threat_class=s.threat_class,
                occurred_at=s.occurred_at,
                source=source,
                reporter=s.reporter.external_id if s.reporter else None,
            )
            for s in rows
        ]
        ref = IntakeReference(sources={source.slug: source}, classes={})
        routes_resolve(ref, items)
        cases = cases_open_or_join(items, ref=ref, now=at)
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE casework_signal s SET disposition = %s, case_id = m.case_id, released_at = %s"
                " FROM unnest(%s::bigint[], %s::bigint[]) AS m(id, case_id) WHERE s.id = m.id",
                [Signal.Disposition.QUEUED, at, [i.signal_id for i in items], [i.case_id for i in items]],
            )
        touched = sorted({i.case_id for i in items})
        case_reprioritise(case_ids=touched, now=at)
        per_case = defaultdict(int)
        for item in items:
            per_case[item.case_id] += 1
        events = []
        for case_id in touched:
            if cases[case_id][2]:
                events.append((case_id, "opened", actor, {}, at))
            events.append(
                (case_id, "signals_released", actor, {"signals": per_case[case_id], "source": source.slug}, at)
            )
        case_events_add_bulk(events)
    return len(held)


@transaction.atomic
def source_confirm(*, source_slug: str, actor, now: datetime | None = None) -> dict:
    """The spike is real: the source becomes healthy and every held signal enters the queue.

    Held signals fold into cases as intake folds new ones (counts, events,
    priority). For a few hours afterwards the same spike opens an incident
    rather than making the source suspect again. Idempotent on a healthy source.
    Returns ``{"source", "released"}``.
    """
    now = now or timezone.now()
    source = _lock_source(source_slug)
    if source.status != SignalSource.Status.HEALTHY:
        source.status = SignalSource.Status.HEALTHY
        source.status_changed_at = now
        source.save(update_fields=["status", "status_changed_at"])
    released = _held_release(source_id=source.pk, actor=actor, at=now)
    return {"source": source, "released": released}


@transaction.atomic
def source_quarantine(*, source_slug: str, actor, now: datetime | None = None) -> SignalSource:
    """The pipeline is broken: the source is quarantined and its signals stay held (stored, no case)."""
    source = _lock_source(source_slug)
    if source.status != SignalSource.Status.QUARANTINED:
        source.status = SignalSource.Status.QUARANTINED
        source.status_changed_at = now or timezone.now()
        source.save(update_fields=["status", "status_changed_at"])
    return source


def _invalid(errors):
    return DocketError("invalid", "The request is invalid.", errors=errors)


@transaction.atomic
def source_register(*, slug, kind, trust, actor, name: str = "") -> SignalSource:
    """Register a healthy source with no history (so it is never held for lack of a baseline).

    Refuses (``invalid``, per field, nothing written) a malformed or taken slug,
    an unknown kind, or a trust outside [0, 1].
    """
    errors = {}
    if not isinstance(slug, str) or not slug or len(slug) > 60 or slugify(slug) != slug:
        errors["slug"] = ["A slug of lower-case letters, digits and hyphens, at most 60 characters."]
    if kind not in SignalSource.Kind.values:
        errors["kind"] = [f"One of {', '.join(SignalSource.Kind.values)}."]
    if isinstance(trust, bool) or not isinstance(trust, int | float) or not (0 <= trust <= 1):
        errors["trust"] = ["A number from 0 to 1."]
    if not isinstance(name, str) or len(name) > 120:
        errors["name"] = ["At most 120 characters."]
    if errors:
        raise _invalid(errors)
    try:
        with transaction.atomic():
            return SignalSource.objects.create(slug=slug, kind=kind, trust=float(trust), name=name)
    except IntegrityError:
        raise _invalid({"slug": ["A source with this slug exists."]}) from None
