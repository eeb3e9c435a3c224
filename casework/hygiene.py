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

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.text import slugify

from docket.batches import BATCH_SIZE, batches
from docket.conf import setting
from docket.errors import DocketError
from policies.models import SignalSource, ThreatClass

from . import events
from .intake.fold import cases_settle, signals_fold
from .models import Signal, SourceIncident
from .services import actor_fields, case_events_add_bulk

BASELINE_WEEKS = 4
WEEK = timedelta(days=7)
HOUR = timedelta(hours=1)
BUCKETS = 10  # score histogram: ten equal bins over [0, 1]
SCORE_SAMPLE = 5000  # at most this many newest scored signals per distribution: bounded work at any volume


@dataclass(frozen=True)
class HealthRules:
    """When a source's last hour is anomalous, and what counts as corroboration.

    An anomaly is a ``rate_spike`` (at least ``min_spike`` signals and ``rate_factor`` times the
    same hour of week) or a ``score_shift`` (binned score distributions of the hour and of the past
    four weeks at least ``score_shift`` apart, each with ``min_scored`` signals). An anomaly nobody
    else sees is a broken pipeline until an admin says otherwise (the source becomes suspect and its
    signals are held); a corroborated one is real abuse (an incident; the signals flow).

    Corroboration is evidence from *other* healthy sources, judged by these rules, one method each:

    ``same_subjects``
        Other sources reported at least ``corroboration_share`` of the spike's own subjects within
        ``corroboration_hours``. Independent eyes on the same accounts are the strongest evidence
        there is, and it needs no history, so it is also how a source without a baseline is judged.
    ``class_rise``
        Other sources' signals of the spike's classes rose with it. Every condition must hold,
        because "five reports of spam somewhere" excuses any classifier on a busy platform:
        - the anomaly is a rate spike from a positive baseline: a class rise explains *more*
          signals, not differently scored ones, and a source without history has no factor to
          compare (it is judged by its score distribution and the subject overlap alone);
        - the other sources have a baseline to rise from: only sources that were already sending
          in a week count, over those weeks, and the class had signals then;
        - the rise is comparable to the spike: at least ``class_rise_min`` signals, at least
          ``class_rise_factor`` times their baseline, and at least ``class_rise_share`` of the
          spike's own factor (a classifier sees a wave more completely than users do, but a 2x
          rise of reports does not explain a 20x classifier spike);
        - the spike's subjects are related to the rising ones: at least ``related_share`` of them
          are the rising signals' subjects or share an attribute value (device, link domain, ...)
          with them. A rise in the same class on unrelated accounts is a coincidence, not evidence.
    ``confirmed_by_admin``
        An admin confirmed the source (within ``confirm_grace_hours``) or its open incident: their
        word holds until the anomaly is over.
    """

    rate_factor: float = 5.0
    min_spike: int = 20
    score_shift: float = 0.5
    min_scored: int = 20
    corroboration_hours: int = 6
    corroboration_share: float = 0.1
    class_rise_factor: float = 2.0
    class_rise_min: int = 5
    class_rise_share: float = 0.5
    related_share: float = 0.1
    confirm_grace_hours: int = 6

    @classmethod
    def from_settings(cls):
        return cls(
            rate_factor=setting("SOURCE_RATE_FACTOR"),
            min_spike=setting("SOURCE_MIN_SPIKE"),
            score_shift=setting("SOURCE_SCORE_SHIFT"),
        )

    def _share(self, share, subjects):
        """How many of ``subjects`` make ``share`` of them (at least one)."""
        return max(1, math.ceil(share * subjects))

    def same_subjects(self, c) -> bool:
        return bool(c["subjects"]) and c["corroborated_subjects"] >= self._share(
            self.corroboration_share, c["subjects"]
        )

    def class_rise(self, c) -> bool:
        if c["spike_factor"] is None or c["class_factor"] is None or not c["subjects"]:
            return False
        return (
            c["class_current"] >= self.class_rise_min
            and c["class_factor"] >= max(self.class_rise_factor, self.class_rise_share * c["spike_factor"])
            and c["related_subjects"] >= self._share(self.related_share, c["subjects"])
        )

    def corroborated_by(self, c) -> str | None:
        """The first rule the figures ``c`` satisfy, by name, or None: the spike is not corroborated."""
        if c.get("confirmed_by_admin"):
            return "confirmed_by_admin"
        if self.same_subjects(c):
            return "same_subjects"
        if self.class_rise(c):
            return "class_rise"
        return None

    def explain(self, c) -> list[dict]:
        """Each rule's figures in words, and whether it held: what a page shows beside the source's status."""
        if c.get("confirmed_by_admin"):
            who = c.get("confirmed_by") or "an admin"
            return [{"rule": "confirmed_by_admin", "held": True, "text": f"Confirmed real by {who}."}]
        if "subjects" not in c:
            return []
        subjects = c["subjects"]
        lines = [
            {
                "rule": "same_subjects",
                "held": self.same_subjects(c),
                "text": f"{c['corroborated_subjects']} of its {subjects} subjects also reported by other sources "
                f"within {self.corroboration_hours} h (needs {self._share(self.corroboration_share, subjects)}).",
            }
        ]
        if c.get("spike_factor") is None:
            why = "the anomaly is not a rate spike from a baseline, so it is judged by its scores and subjects alone"
            lines.append({"rule": "class_rise", "held": False, "text": f"Class-wide rise not considered: {why}."})
        elif c.get("class_factor") is None:
            lines.append(
                {
                    "rule": "class_rise",
                    "held": False,
                    "text": f"Class-wide rise not considered: other sources have no baseline for this hour "
                    f"({c['class_current']} signals of the class in the hour).",
                }
            )
        else:
            need = max(self.class_rise_factor, self.class_rise_share * c["spike_factor"])
            lines.append(
                {
                    "rule": "class_rise",
                    "held": self.class_rise(c),
                    "text": f"Other sources' signals of the class: {c['class_current']} in the hour against "
                    f"{c['class_baseline']:g} usual, x{c['class_factor']:g} beside the source's "
                    f"x{c['spike_factor']:g} (needs x{need:g}); {c['related_subjects']} of its {subjects} subjects "
                    f"linked to theirs (needs {self._share(self.related_share, subjects)}).",
                }
            )
        return lines


@dataclass
class SourceHealth:
    """One source's figures for the hour ending at ``now``."""

    source_id: int
    first_at: datetime | None  # the source's first signal: weeks before it have no history
    current: int
    baseline: float | None  # None: no history for this hour of week yet
    recent_scores: dict
    baseline_scores: dict
    distance: float | None
    anomaly: str | None = None  # rate_spike | score_shift
    corroboration: dict = field(default_factory=dict)
    # Per threat class slug: {"current", "baseline"}, the rates' parts (they add up to the source's), so a
    # page shows each reader the rates of the classes they may see (``sources_overview``).
    classes: dict = field(default_factory=dict)

    def summary(self):
        return {
            "baseline": self.baseline_scores,
            "recent": self.recent_scores,
            "distance": self.distance,
            "anomaly": self.anomaly,
            "corroboration": self.corroboration,
            "classes": self.classes,
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
    FROM policies_signalsource s
    CROSS JOIN LATERAL ({_SCORES}) recent
    CROSS JOIN LATERAL ({_SCORES}) base
    ORDER BY s.id
"""


# Per source and class, the signals of the last hour and of the same hour of each past week (the windows of
# ``_HEALTH_SQL``): range scans of the (source, occurred_at) index, grouped by class.
_CLASSES_SQL = """
    SELECT s.id, c.*
    FROM policies_signalsource s
    CROSS JOIN LATERAL (
        SELECT tc.slug, {counts}
        FROM casework_signal g JOIN policies_threatclass tc ON tc.id = g.threat_class_id
        WHERE g.source_id = s.id AND ({windows})
        GROUP BY tc.slug
    ) c
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
    in_window = [f"(g.occurred_at > %(lo{k})s AND g.occurred_at <= %(hi{k})s)" for k in range(len(windows))]
    by_class = defaultdict(dict)
    with connection.cursor() as cur:
        cur.execute(_HEALTH_SQL, params)
        rows = cur.fetchall()
        cur.execute(
            _CLASSES_SQL.format(
                counts=", ".join(f"count(*) FILTER (WHERE {w})" for w in in_window), windows=" OR ".join(in_window)
            ),
            {f"{edge}{k}": t for k, (lo, hi) in enumerate(windows) for edge, t in (("lo", lo), ("hi", hi))},
        )
        for source_id, slug, *counts in cur.fetchall():
            by_class[source_id][slug] = counts
    result = []
    for row in rows:
        source_id, first_at = row[0], row[1]
        counts = row[2 : 3 + BASELINE_WEEKS]
        rn, rmean, rhist, bn, bmean, bhist = row[3 + BASELINE_WEEKS :]
        # A week counts towards the baseline only if the source was sending by the start of its window:
        # a new source has no baseline, rather than a baseline of zero.
        weeks = [first_at is not None and first_at <= lo for lo, _ in windows[1:]]
        history = [c for c, counted in zip(counts[1:], weeks, strict=True) if counted]
        baseline = sum(history) / len(history) if history else None
        classes = {}
        for slug, (current, *past) in sorted(by_class[source_id].items()):
            part = [c for c, counted in zip(past, weeks, strict=True) if counted]
            classes[slug] = {"current": current, "baseline": round(sum(part) / len(part), 3) if part else None}
        result.append(
            SourceHealth(
                source_id=source_id,
                first_at=first_at,
                current=counts[0],
                baseline=baseline,
                recent_scores=_distribution(rn, rmean, rhist),
                baseline_scores=_distribution(bn, bmean, bhist),
                distance=_cdf_distance(rhist or [], bhist or []),
                classes=classes,
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

# The spike's classes, as a subquery of the two statements below.
_SPIKE_CLASSES = """
    SELECT DISTINCT threat_class_id FROM casework_signal
    WHERE source_id = %(source)s AND occurred_at > %(hour_lo)s AND occurred_at <= %(now)s
"""

# Per other source, its signals of the spike's classes in the hour and in the same hour of each past week.
_CLASS_SQL = """
    SELECT o.source_id, {counts}
    FROM casework_signal o
    WHERE o.threat_class_id IN ({classes}) AND o.source_id = ANY(%(others)s) AND ({windows})
    GROUP BY o.source_id
"""

# How many of the spike's subjects are the rising signals' subjects or share an attribute value with one.
# A value carried by more subjects than a campaign may share (a CDN address, a big mail domain) links nothing.
_RELATED_SQL = """
    WITH mine AS (
        SELECT DISTINCT subject_id FROM casework_signal
        WHERE source_id = %(source)s AND occurred_at > %(hour_lo)s AND occurred_at <= %(now)s
    ), rising AS MATERIALIZED (
        SELECT DISTINCT o.subject_id FROM casework_signal o
        WHERE o.threat_class_id IN ({classes}) AND o.source_id = ANY(%(rising)s)
          AND o.occurred_at > %(hour_lo)s AND o.occurred_at <= %(now)s
    ), shared AS MATERIALIZED (
        SELECT v.kind, v.value FROM (
            SELECT DISTINCT a.kind, a.value
            FROM casework_subjectattribute a JOIN rising r ON r.subject_id = a.subject_id
        ) v
        WHERE (SELECT count(*) FROM (
                  SELECT 1 FROM casework_subjectattribute x WHERE x.kind = v.kind AND x.value = v.value
                  LIMIT %(max_share)s + 1
              ) n) <= %(max_share)s
    )
    SELECT count(*) FROM mine m
    WHERE EXISTS (SELECT 1 FROM rising r WHERE r.subject_id = m.subject_id)
       OR EXISTS (
           SELECT 1 FROM casework_subjectattribute a JOIN shared s ON s.kind = a.kind AND s.value = a.value
           WHERE a.subject_id = m.subject_id
       )
"""


def _corroboration(h: SourceHealth, *, others: list[int], first_seen: dict, now, rules: HealthRules) -> dict:
    """What independent sources saw: the spike's own subjects, and the spike's classes rising elsewhere.

    ``first_seen`` maps each source to its first signal: a week counts towards another source's
    class baseline only if that source was sending by the start of the week's window.
    """
    windows = _windows(now)
    params = {
        "source": h.source_id,
        "others": others,
        "now": now,
        "hour_lo": now - HOUR,
        "corroboration_lo": now - timedelta(hours=rules.corroboration_hours),
        "max_share": setting("CAMPAIGN_MAX_VALUE_SHARE"),
    }
    for k, (lo, hi) in enumerate(windows):
        params[f"lo{k}"], params[f"hi{k}"] = lo, hi
    in_window = [f"(o.occurred_at > %(lo{k})s AND o.occurred_at <= %(hi{k})s)" for k in range(len(windows))]
    class_current, class_baseline, rising, related = 0, None, [], 0
    with connection.cursor() as cur:
        cur.execute(_CORROBORATION_SQL, params)
        subjects, corroborated = cur.fetchone()
        if others:
            sql = _CLASS_SQL.format(
                counts=", ".join(f"count(*) FILTER (WHERE {w})" for w in in_window),
                classes=_SPIKE_CLASSES,
                windows=" OR ".join(in_window),
            )
            cur.execute(sql, params)
            for source_id, current, *weeks in cur.fetchall():
                first = first_seen.get(source_id)
                history = [n for (lo, _), n in zip(windows[1:], weeks, strict=True) if first and first <= lo]
                if not history:  # nothing to rise from
                    continue
                rising.append(source_id)
                class_current += current
                class_baseline = (class_baseline or 0.0) + sum(history) / len(history)
        if rising:
            cur.execute(_RELATED_SQL.format(classes=_SPIKE_CLASSES), {**params, "rising": rising})
            (related,) = cur.fetchone()
    spike_factor = h.current / h.baseline if h.anomaly == "rate_spike" and h.baseline else None
    c = {
        "subjects": subjects,
        "corroborated_subjects": corroborated,
        "related_subjects": related,
        "class_current": class_current,
        "class_baseline": None if class_baseline is None else round(class_baseline, 3),
        "class_factor": round(class_current / class_baseline, 2) if class_baseline else None,
        "spike_factor": None if spike_factor is None else round(spike_factor, 2),
    }
    c["by"] = rules.corroborated_by(c)
    return c


# --- the periodic check ------------------------------------------------------------------------------------------


def _admin_confirmation(source, incident, *, grace) -> dict | None:
    """An admin's word that the source's anomaly is real: a confirm within the grace hours, or on its open incident.

    Only an admin makes a source healthy again, so a recent ``status_changed_at`` on a
    healthy source is a confirm.
    """
    admin = (source.score_summary or {}).get("admin") or {}
    if source.status_changed_at and source.status_changed_at >= grace:
        by = admin.get("by") if admin.get("action") == "confirmed" else None
        return {"confirmed_by": by, "confirmed_at": source.status_changed_at.isoformat()}
    if incident is not None and incident.detail.get("confirmed_at"):
        return {"confirmed_by": incident.detail.get("confirmed_by"), "confirmed_at": incident.detail["confirmed_at"]}
    return None


def _summary(h: SourceHealth, source, *, verdict: bool, now) -> dict:
    """The source's new score summary, keeping the last admin action and, while not healthy, why it was held."""
    previous = source.score_summary or {}
    summary = h.summary()
    if "admin" in previous:
        summary["admin"] = previous["admin"]
    if verdict:
        summary["suspected"] = {
            "at": now.isoformat(),
            "anomaly": h.anomaly,
            "current_rate": h.current,
            "baseline_rate": h.baseline,
            "distance": h.distance,
            "corroboration": h.corroboration,
        }
    elif source.status != SignalSource.Status.HEALTHY and "suspected" in previous:
        summary["suspected"] = previous["suspected"]
    return summary


def _incidents_resolve(*, source_ids, at, resolution):
    """Resolve the open incidents of these sources, saying why (``calm``, ``suspect``, ``quarantined``)."""
    if not source_ids:
        return
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE casework_sourceincident SET status = %s, resolved_at = %s,"
            " detail = detail || jsonb_build_object('resolution', %s::text)"
            " WHERE source_id = ANY(%s) AND status = %s",
            [SourceIncident.Status.RESOLVED, at, resolution, list(source_ids), SourceIncident.Status.OPEN],
        )


def sources_check_health(*, now: datetime | None = None, rules: HealthRules | None = None) -> dict:
    """Refresh every source's rates and score summary, and act on anomalies.

    An uncorroborated anomaly (``HealthRules``) turns a healthy source ``suspect``
    (intake then holds its new signals, and an open incident of it is resolved: the
    status says what it is now); a corroborated one opens the source's incident (at
    most one open, its detail naming the rule and the figures) and leaves it healthy;
    a calm hour resolves an open incident. Sources already suspect or quarantined
    keep their status: only an admin moves them. Held signals of a healthy source
    (left by a race with a confirm) are released. Returns the slugs acted on.
    """
    now = now or timezone.now()
    rules = rules or HealthRules.from_settings()
    # The figures and the corroboration are reads over the last weeks of signals (seconds at a
    # flood): made before any source is locked, so an admin action on a source never waits on them.
    figures = sources_health(now=now)
    first_seen = {h.source_id: h.first_at for h in figures}
    statuses = dict(SignalSource.objects.values_list("pk", "status"))
    healthy = [pk for pk, status in statuses.items() if status == SignalSource.Status.HEALTHY]
    anomalies = {}
    for h in figures:
        h.anomaly = _anomaly(h, rules)
        if h.anomaly and statuses.get(h.source_id) == SignalSource.Status.HEALTHY:
            others = [pk for pk in healthy if pk != h.source_id]
            anomalies[h.source_id] = _corroboration(h, others=others, first_seen=first_seen, now=now, rules=rules)
    # One short transaction writes the verdicts. FOR NO KEY UPDATE: intake's signals reference their
    # source (a foreign key checked at commit with FOR KEY SHARE), which this lock never blocks.
    with transaction.atomic():
        sources = {s.pk: s for s in SignalSource.objects.select_for_update(no_key=True)}
        open_incidents = {i.source_id: i for i in SourceIncident.objects.filter(status=SourceIncident.Status.OPEN)}
        grace = now - timedelta(hours=rules.confirm_grace_hours)
        suspect, incidents, calm = [], [], []
        for h in figures:
            source = sources[h.source_id]
            held_now = False
            if h.anomaly and source.status == SignalSource.Status.HEALTHY:
                confirmed = _admin_confirmation(source, open_incidents.get(h.source_id), grace=grace)
                if confirmed:
                    h.corroboration = {"confirmed_by_admin": True, **confirmed, "by": "confirmed_by_admin"}
                elif h.source_id in anomalies:
                    h.corroboration = anomalies[h.source_id]
                else:  # it became healthy while the figures were read: corroborate now
                    others = [
                        pk for pk, s in sources.items() if pk != h.source_id and s.status == SignalSource.Status.HEALTHY
                    ]
                    h.corroboration = _corroboration(h, others=others, first_seen=first_seen, now=now, rules=rules)
                held_now = not h.corroboration["by"]
                (suspect if held_now else incidents).append(h)
            elif not h.anomaly:
                calm.append(h.source_id)
            source.baseline_rate = None if h.baseline is None else round(h.baseline, 3)
            source.current_rate = float(h.current)
            source.score_summary = _summary(h, source, verdict=held_now, now=now)
            source.health_checked_at = now
        SignalSource.objects.bulk_update(
            sources.values(), ["baseline_rate", "current_rate", "score_summary", "health_checked_at"]
        )
        SignalSource.objects.filter(pk__in=[h.source_id for h in suspect], status="healthy").update(
            status=SignalSource.Status.SUSPECT, status_changed_at=now
        )
        _incidents_resolve(source_ids=[h.source_id for h in suspect], at=now, resolution="suspect")
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
        _incidents_resolve(source_ids=calm, at=now, resolution="calm")
    # One probe of the held-signals index per healthy source, not a scan of everything held.
    holds = Signal.objects.filter(source_id=OuterRef("pk"), disposition=Signal.Disposition.HELD)
    stray = list(
        SignalSource.objects.filter(Exists(holds), status=SignalSource.Status.HEALTHY).values_list("pk", flat=True)
    )
    # A chunk per source and run, each its own transaction (the job stays short; the next run releases the rest).
    released = 0
    for pk in stray:
        with transaction.atomic():
            released += _held_release(source_id=pk, actor=None, at=now, limit=RELEASE_CHUNK)
    return {
        "checked": len(figures),
        "suspect": sorted(sources[h.source_id].slug for h in suspect),
        "incidents": sorted(sources[h.source_id].slug for h in incidents),
        "released": released,
    }


def incidents_open():
    """Open source incidents, newest first, for the dashboard."""
    return SourceIncident.objects.filter(status=SourceIncident.Status.OPEN).select_related("source")


# --- what pages show ---------------------------------------------------------------------------------------------


def _explained(source, incident, rules):
    """Why the source is what it is, in ``rules``' words: the open incident's corroboration, or why it was held."""
    if incident is not None:
        c = dict(incident.detail.get("corroboration") or {})
        if incident.detail.get("confirmed_at"):
            c |= {"confirmed_by_admin": True, "confirmed_by": incident.detail.get("confirmed_by")}
        return rules.explain(c)
    suspected = (source.score_summary or {}).get("suspected")
    if source.status != SignalSource.Status.HEALTHY and suspected:
        return rules.explain(suspected.get("corroboration") or {})
    return []


def _figures_for_reader(source, hidden: frozenset[str]):
    """The source's rates over the classes the reader may see (its stored rates count every class).

    ``current_rate`` and ``baseline_rate`` become the sums of the visible classes' parts, and
    ``score_shift`` the score distribution's distance only for a reader from whom no class is
    hidden (a distance over every class's scores cannot be split by class). Before the health job
    has split a source's rates by class, a reader with hidden classes is shown none.
    """
    summary = source.score_summary or {}
    source.score_shift = summary.get("distance")
    if not hidden:
        return
    source.score_shift = None
    classes = summary.get("classes")
    if classes is None:
        source.current_rate = source.baseline_rate = None
        return
    seen = [figures for class_slug, figures in classes.items() if class_slug not in hidden]
    source.current_rate = float(sum(f["current"] for f in seen))
    if source.baseline_rate is not None:
        source.baseline_rate = round(sum(f["baseline"] or 0.0 for f in seen), 3)


def sources_overview(*, user, slug: str | None = None) -> list[SignalSource]:
    """Sources (all, or the one with ``slug``) as ``user`` may see them, in three queries.

    Each carries ``held`` (how many signals of the classes the user may see it holds:
    a count on the held-signals index), its rates and ``score_shift`` as the user may
    see them (``_figures_for_reader``), ``incident`` (its open incident or None),
    ``suspected`` (why it was held, while it is) and ``reasons`` (``HealthRules.explain``
    lines: what corroborated the incident, or why the source was held). A source's
    status and incidents are the source's own, whatever class moved it: they are shown
    to every reader, as is what holding it means for their queue.
    """
    rules = HealthRules.from_settings()
    hidden = frozenset(ThreatClass.objects.hidden_from(user).values_list("slug", flat=True))
    held = (
        Signal.objects.visible_to(user)
        .filter(source_id=OuterRef("pk"), disposition=Signal.Disposition.HELD)
        .order_by()
        .values("source_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    sources = SignalSource.objects.annotate(held=Coalesce(Subquery(held), 0)).order_by("slug")
    incidents = SourceIncident.objects.filter(status=SourceIncident.Status.OPEN)
    if slug is not None:
        sources = sources.filter(slug=slug)
        incidents = incidents.filter(source__slug=slug)
    result = list(sources)
    open_by_source = {i.source_id: i for i in incidents} if result else {}
    for source in result:
        suspected = (source.score_summary or {}).get("suspected")
        source.suspected = suspected and {**suspected, "at": datetime.fromisoformat(suspected["at"])}
        source.incident = open_by_source.get(source.pk)
        source.reasons = _explained(source, source.incident, rules)
        _figures_for_reader(source, hidden)
    return result


def source_overview(*, user, slug: str) -> SignalSource:
    """One source as its page shows it to ``user`` (see ``sources_overview``), with its ``recent_incidents``."""
    found = sources_overview(user=user, slug=slug)
    if not found:
        raise DocketError("not_found", "No such source.", status=404)
    source = found[0]
    source.recent_incidents = list(source.incidents.order_by("-opened_at")[:10])
    admin = (source.score_summary or {}).get("admin")
    source.admin_action = admin and {**admin, "at": datetime.fromisoformat(admin["at"])}
    return source


# --- admin actions -----------------------------------------------------------------------------------------------


def _lock_source(slug):
    try:
        return SignalSource.objects.select_for_update(no_key=True).get(slug=slug)
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


# Held signals folded per transaction: each may open or join a case, so a chunk holds as many case rows as the
# periodic jobs' batches do (docket.batches), never a thousand while a claim or a decision waits on one.
RELEASE_CHUNK = BATCH_SIZE


def _held_release(*, source_id, actor, at, limit) -> int:
    """Fold up to ``limit`` held signals of the source into cases, exactly as intake folds new ones.

    Released signals become ``queued`` (``released_at`` set): an admin confirmed
    the spike is real, so they go to humans rather than to automation. Cases are
    joined or opened by intake's own folding, their counts and priority refreshed
    from their signals, and each case gets an ``opened`` and a ``signals_released`` event.
    Returns how many signals were released (fewer than ``limit``: none are left).
    """
    held = list(
        Signal.objects.select_for_update(no_key=True)
        .filter(source_id=source_id, disposition=Signal.Disposition.HELD)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not held:
        return 0
    source = SignalSource.objects.get(pk=source_id)
    rows = Signal.objects.filter(pk__in=held).select_related("threat_class", "reporter").order_by("pk")
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
    fold = signals_fold(items)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE casework_signal s SET disposition = %s, case_id = m.case_id, released_at = %s"
            " FROM unnest(%s::bigint[], %s::bigint[]) AS m(id, case_id) WHERE s.id = m.id",
            [Signal.Disposition.QUEUED, at, [i.signal_id for i in items], [i.case_id for i in items]],
        )
    cases_settle(fold, items, now=at)
    touched = sorted({i.case_id for i in items})
    per_case = defaultdict(int)
    for item in items:
        per_case[item.case_id] += 1
    event_rows = []
    for case_id in touched:
        if fold.cases[case_id][2]:
            event_rows.append((case_id, events.opened(), actor, at))
        released = events.signals_released(signals=per_case[case_id], source=source.slug)
        event_rows.append((case_id, released, actor, at))
    case_events_add_bulk(event_rows)
    return len(held)


def _admin_note(source, *, action, actor, at):
    """Record the admin's last action on the source (kept across health checks) and return its label."""
    _, label = actor_fields(actor)
    source.score_summary = {
        **(source.score_summary or {}),
        "admin": {"action": action, "by": label, "at": at.isoformat()},
    }
    return label


def source_confirm(*, source_slug: str, actor, now: datetime | None = None) -> dict:
    """The spike is real: the source becomes healthy and every held signal enters the queue.

    Held signals fold into cases as intake folds new ones (counts, events,
    priority), ``RELEASE_CHUNK`` signals per transaction so a large release
    never holds the cases it touches for long; should one chunk fail, the
    chunks before it stay released and confirming again releases the rest.
    For a few hours afterwards the same spike opens an incident rather than
    making the source suspect again; an open incident is marked confirmed
    (by whom, when) and stays open until the source is calm. Idempotent on a
    healthy source. Returns ``{"source", "released"}``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        source = _lock_source(source_slug)
        label = _admin_note(source, action="confirmed", actor=actor, at=now)
        fields = ["score_summary"]
        if source.status != SignalSource.Status.HEALTHY:
            source.status = SignalSource.Status.HEALTHY
            source.status_changed_at = now
            fields += ["status", "status_changed_at"]
        source.save(update_fields=fields)
        incident = SourceIncident.objects.select_for_update(no_key=True).filter(source=source, status="open").first()
        if incident is not None and not incident.detail.get("confirmed_at"):
            incident.detail = {**incident.detail, "confirmed_by": label, "confirmed_at": now.isoformat()}
            incident.save(update_fields=["detail"])
    released = batches(
        lambda size: _held_release(source_id=source.pk, actor=actor, at=now, limit=size),
        size=RELEASE_CHUNK,
        budget_seconds=None,
    )
    return {"source": source, "released": released}


@transaction.atomic
def source_quarantine(*, source_slug: str, actor, now: datetime | None = None) -> SignalSource:
    """The pipeline is broken: the source is quarantined and its signals stay held (stored, no case).

    An open incident of the source is resolved (``quarantined``): the source's status
    now says what it is.
    """
    now = now or timezone.now()
    source = _lock_source(source_slug)
    if source.status != SignalSource.Status.QUARANTINED:
        _admin_note(source, action="quarantined", actor=actor, at=now)
        source.status = SignalSource.Status.QUARANTINED
        source.status_changed_at = now
        source.save(update_fields=["status", "status_changed_at", "score_summary"])
    _incidents_resolve(source_ids=[source.pk], at=now, resolution="quarantined")
    return source


@transaction.atomic
def source_incident_resolve(*, source_slug: str, actor, now: datetime | None = None) -> SourceIncident:
    """An admin closes the source's open incident (the spike is over or handled): resolved, by whom, when.

    The source keeps its status. Refuses (``conflict``, nothing written) when the source has no open incident.
    """
    now = now or timezone.now()
    source = _lock_source(source_slug)
    incident = SourceIncident.objects.select_for_update(no_key=True).filter(source=source, status="open").first()
    if incident is None:
        raise DocketError("conflict", f"{source.slug} has no open incident.", status=409)
    _, label = actor_fields(actor)
    incident.status = SourceIncident.Status.RESOLVED
    incident.resolved_at = now
    incident.detail = {**incident.detail, "resolution": "resolved", "resolved_by": label}
    incident.save(update_fields=["status", "resolved_at", "detail"])
    return incident


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
