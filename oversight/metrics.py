"""Guard metrics: is the queue keeping up, and how good are our decisions and the machine's?

``metrics_snapshot(user)`` is what ``GET /api/v1/metrics/`` serves and the
dashboard draws. Every figure comes from a handful of aggregate queries
(``FILTER`` clauses, ``percentile_cont``, ``GROUPING SETS`` so one scan of the
window's decisions serves the threat class, policy version and reviewer
views), never a Python loop over rows. Restricted threat classes appear only
for users cleared for them, so a snapshot depends on the user only through
their clearance set: it is cached per clearance set for
``DOCKET["METRICS_CACHE_SECONDS"]`` or until what it reads changes, but never
recomputed so often that computing it takes more than ``BUSY_SHARE`` of the
time (at a million cases a snapshot reads for seconds: under a flood it is
served with its ``generated_at`` for minutes), warmed by the
``refresh_metrics`` beat task, and computed directly when the cache (Redis) is
down. On an empty system
rates and percentiles are ``null`` and counts ``0``; nothing divides by zero.

Definitions. Backlog figures are now; flow figures cover the last
``DOCKET["METRICS_WINDOW_DAYS"]`` days (default 7: a guard shows a regression
within days, not diluted by a month):
- ``open``: cases awaiting a decision (open, in review or escalated);
  ``breaching``: those past their SLA due time;
- ``time_to_action_p50_s`` / ``_p90_s``: for cases created in the window and
  acted on, seconds from creation to the first action (a decision or an
  escalation, by a human or by automation);
- ``sla_compliance``: of the window's cases acted on or already past due, the
  share acted on by their SLA due time;
- ``appeal_rate``: of the window's violation decisions, the share appealed;
- ``overturn_rate``: of the appeals resolved in the window, the share
  ``overturned``;
- ``qa_agreement``: of the blind second reviews done in the window, the share
  that agree;
- ``auto_action_precision``: of the window's holdout decisions (automation
  would have acted, a human decided instead), the share the human found a
  violation, with its 95% Wilson interval.
"""

import logging
import math
import time
from datetime import timedelta

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from casework.api.hygiene import SourceSerializer
from casework.hygiene import sources_overview
from casework.models import ACTIVE_STATUSES_SQL, SourceIncident
from docket.conf import setting
from docket.visibility import clearances_of
from policies.models import VIOLATIONS, PolicyVersion, ThreatClass
from reviews.api.serializers import QueueSerializer
from reviews.models import Enforcement, RelabelItem, Reviewer
from reviews.selectors import queues_overview

log = logging.getLogger(__name__)

Z95 = 1.959963984540054
SERIES_DAYS = 14
RECENT_FAILURES = 10


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else None


def wilson_interval(successes, n, z=Z95):
    """``{"estimate", "low", "high", "n"}``: the share ``successes / n`` with its Wilson score interval."""
    if not n:
        return {"estimate": None, "low": None, "high": None, "n": 0}
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return {"estimate": p, "low": max(0.0, centre - half), "high": min(1.0, centre + half), "n": n}


# --- the cache --------------------------------------------------------------------------------------------------


def _data_version():
    """A cheap fingerprint of what the metrics read: every state change writes a case event,
    every intake a signal, so the newest ids of those two tables move whenever most
    figures can (delivery failures may lag by the cache time). Two index look-ups."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT max(id) FROM casework_caseevent), (SELECT max(id) FROM casework_signal)")
        return "-".join(str(v or 0) for v in cursor.fetchone())


# At most this share of the time goes to computing one clearance set's snapshot. A snapshot reads
# the backlog (every active case, the window's decisions): milliseconds on a small system, seconds at
# a million cases. Recomputed on every change, a flood (a new signal every millisecond) would have
# one core doing nothing else; with the share, a snapshot that took T seconds is served, with its
# ``generated_at``, for at least T * (1 / share - 1) seconds before the next is computed.
BUSY_SHARE = 0.05

# How long a snapshot is kept at all: the dashboard shows an old one (with its time) rather than
# making a viewer wait for a computation another process has under way.
STORED_SECONDS = 24 * 3600


def _cache_key(clearances):
    return f"metrics:v3:{connection.settings_dict['NAME']}:{','.join(sorted(clearances)) or '-'}"


def _fresh(entry, now) -> bool:
    """Whether a stored snapshot may be served: too recent to recompute, or unchanged and recent.

    It is reused while nothing it reads has changed, and never for longer than
    METRICS_CACHE_SECONDS (time-based figures such as SLA breaches) unless computing
    it again now would exceed ``BUSY_SHARE``.
    """
    age = now - entry["at"]
    if age < entry["cost"] * (1 / BUSY_SHARE - 1):
        return True
    return age < setting("METRICS_CACHE_SECONDS") and entry["version"] == _data_version()


def _writing_transaction():
    """Whether the current transaction has written: then its snapshot is its own, never cached.

    A caller that has just changed something sees the change (read your own
    writes), and a snapshot holding uncommitted rows is never shown to others.
    """
    if not connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current_if_assigned() IS NOT NULL")
        return cursor.fetchone()[0]


def metrics_snapshot(user) -> dict:
    """The guard metrics ``user`` may see, cached per clearance set (``_fresh``)."""
    clearances = clearances_of(user)
    if _writing_transaction():
        return compute_snapshot(clearances=clearances)
    return _cached(clearances)


def _cached(clearances) -> dict:
    """The stored snapshot when ``_fresh``, else a new one, computed here and stored.

    One process computes a clearance set's snapshot at a time: while it does, others are
    served the stored one (a burst of dashboard views under a flood costs one computation).
    """
    key, now = _cache_key(clearances), time.time()
    try:
        entry = cache.get(key)
    except Exception:  # a cache outage (Redis down) must not take the dashboard with it
        log.warning("metrics cache unavailable; computing", exc_info=True)
        return compute_snapshot(clearances=clearances)
    if entry is not None and _fresh(entry, now):
        return entry["snapshot"]
    computing = f"{key}:computing"
    try:
        mine = cache.add(computing, 1, timeout=max(60, int(2 * entry["cost"])) if entry else 60)
    except Exception:
        mine = True
    if not mine and entry is not None:
        return entry["snapshot"]
    version, started = _data_version(), time.monotonic()  # the version first: a change meanwhile is not in it
    snapshot = compute_snapshot(clearances=clearances)
    stored = {"snapshot": snapshot, "version": version, "at": now, "cost": time.monotonic() - started}
    try:
        cache.set(key, stored, STORED_SECONDS)
        if mine:
            cache.delete(computing)
    except Exception:
        log.warning("metrics cache unavailable; not stored", exc_info=True)
    return snapshot


def metrics_refresh() -> int:
    """Warm the snapshot of every clearance set in use (and none) that is due; returns how many sets."""
    sets = {frozenset()}
    for clearances in Reviewer.objects.values_list("clearances", flat=True).distinct():
        sets.add(frozenset(clearances or ()))
    for clearances in sets:
        _cached(clearances)
    return len(sets)


# --- the snapshot -----------------------------------------------------------------------------------------------


def compute_snapshot(*, clearances, now=None) -> dict:
    """Every guard metric over the threat classes visible with ``clearances`` (uncached)."""
    now = now or timezone.now()
    window_days = setting("METRICS_WINDOW_DAYS")
    since = now - timedelta(days=window_days)
    series_start = (now - timedelta(days=SERIES_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    classes = list(ThreatClass.objects.visible_with(clearances).order_by("-severity", "slug"))
    ids = [tc.pk for tc in classes]
    window = {"classes": ids, "since": since, "now": now, "violations": sorted(VIOLATIONS)}

    with transaction.atomic():
        with connection.cursor() as cursor:
            # Short analytic queries: JIT compilation would cost more than it saves.
            cursor.execute("SET LOCAL jit = off")
        cases, days = _case_figures(window, series_start=series_start)
        decisions = _decision_figures(window)
        qa = _qa_figures(window)
        appeals = _appeal_figures(window)
    return {
        "generated_at": now.isoformat(),
        "window_days": window_days,
        "threat_classes": [_class_row(tc, cases, decisions, qa, appeals) for tc in classes],
        "queues": _queues(clearances, now=now),
        "sources": _sources(clearances),
        "policy_versions": _policy_versions(ids, decisions, qa),
        "reviewers": _reviewers(decisions, qa),
        "enforcement": _enforcement(ids),
        "incidents": _incidents(),
        "series": _series(days, series_start=series_start),
    }


def _rows(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# Cases: the backlog (active, any age) per class, and the window's flow per class and per day, in one scan.
_CASES_SQL = f"""
SELECT GROUPING(c.threat_class_id) AS by_day, c.threat_class_id AS class_id,
       CASE WHEN c.created_at >= %(series_start)s THEN (c.created_at AT TIME ZONE 'UTC')::date END AS day,
       count(*) AS total,
       count(*) FILTER (WHERE c.status IN ({ACTIVE_STATUSES_SQL})) AS open,
       count(*) FILTER (WHERE c.status = 'in_review') AS in_review,
       count(*) FILTER (WHERE c.status = 'escalated') AS escalated,
       count(*) FILTER (WHERE c.status IN ({ACTIVE_STATUSES_SQL}) AND c.sla_due_at < %(now)s) AS breaching,
       count(*) FILTER (WHERE c.created_at >= %(since)s) AS created,
       count(*) FILTER (WHERE c.created_at >= %(since)s AND c.first_action_at IS NOT NULL) AS acted,
       count(*) FILTER (WHERE c.created_at >= %(since)s AND c.first_action_at <= c.sla_due_at) AS met,
       count(*) FILTER (WHERE c.created_at >= %(since)s
                          AND (c.first_action_at IS NOT NULL OR c.sla_due_at < %(now)s)) AS due,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.first_action_at - c.created_at))
           FILTER (WHERE c.created_at >= %(since)s) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM c.first_action_at - c.created_at))
           FILTER (WHERE c.created_at >= %(since)s) AS p90,
       count(*) FILTER (WHERE c.first_action_at IS NOT NULL) AS day_acted,
       count(*) FILTER (WHERE c.first_action_at <= c.sla_due_at) AS day_met
  FROM casework_case c
 WHERE c.threat_class_id = ANY(%(classes)s)
   AND (c.status IN ({ACTIVE_STATUSES_SQL}) OR c.created_at >= LEAST(%(since)s, %(series_start)s))
 GROUP BY GROUPING SETS ((c.threat_class_id),
                        (CASE WHEN c.created_at >= %(series_start)s THEN (c.created_at AT TIME ZONE 'UTC')::date END))
"""


def _case_figures(window, *, series_start):
    """``({class id: figures}, {date: figures})``."""
    by_class, by_day = {}, {}
    for row in _rows(_CASES_SQL, {**window, "series_start": series_start}):
        if row["by_day"]:
            if row["day"] is not None:
                by_day[row["day"]] = row
        else:
            by_class[row["class_id"]] = row
    return by_class, by_day


# Decisions of the window (relabels aside), one scan grouped three ways. A decision's class is its policy
# version's (decisions are made under the active version of the case's class): no join with the cases.
# Automation's decisions (no reviewer) form a reviewer group of their own, dropped; GROUPING() tells the
# grouping sets apart.
_DECISIONS_SQL = """
SELECT GROUPING(x.class_id) AS no_class, GROUPING(x.policy_version_id) AS no_version,
       x.class_id, x.policy_version_id, x.reviewer_id,
       count(*) AS decisions,
       count(*) FILTER (WHERE x.automated) AS automated,
       count(*) FILTER (WHERE x.violation) AS violations,
       count(*) FILTER (WHERE x.violation AND x.appealed) AS appealed,
       count(*) FILTER (WHERE x.overturned) AS overturned,
       count(*) FILTER (WHERE x.holdout AND NOT x.automated) AS holdout,
       count(*) FILTER (WHERE x.holdout AND NOT x.automated AND x.violation) AS holdout_violations
  FROM (SELECT p.threat_class_id AS class_id, d.policy_version_id, d.reviewer_id, d.automated, d.holdout,
               d.overturned, d.action = ANY(%(violations)s) AS violation,
               EXISTS (SELECT 1 FROM appeals_appeal a WHERE a.decision_id = d.id) AS appealed
          FROM reviews_decision d
          JOIN policies_policyversion pv ON pv.id = d.policy_version_id
          JOIN policies_policy p ON p.id = pv.policy_id
         WHERE d.created_at >= %(since)s AND NOT d.relabel AND p.threat_class_id = ANY(%(classes)s)) x
 GROUP BY GROUPING SETS ((x.class_id), (x.policy_version_id), (x.reviewer_id))
"""

# Blind second reviews done in the window, by the decision's class, version and reviewer.
_QA_SQL = """
SELECT GROUPING(p.threat_class_id) AS no_class, GROUPING(d.policy_version_id) AS no_version,
       p.threat_class_id AS class_id, d.policy_version_id, d.reviewer_id,
       count(*) AS done, count(*) FILTER (WHERE q.agrees) AS agreed
  FROM reviews_qualityreview q
  JOIN reviews_decision d ON d.id = q.decision_id
  JOIN policies_policyversion pv ON pv.id = d.policy_version_id
  JOIN policies_policy p ON p.id = pv.policy_id
 WHERE q.status = 'done' AND q.completed_at >= %(since)s AND p.threat_class_id = ANY(%(classes)s)
 GROUP BY GROUPING SETS ((p.threat_class_id), (d.policy_version_id), (d.reviewer_id))
"""


def _three_ways(rows):
    """Split grouping-set rows into ``{"class": {...}, "version": {...}, "reviewer": {...}}``."""
    out = {"class": {}, "version": {}, "reviewer": {}}
    for row in rows:
        if not row["no_class"]:
            out["class"][row["class_id"]] = row
        elif not row["no_version"]:
            out["version"][row["policy_version_id"]] = row
        elif row["reviewer_id"] is not None:
            out["reviewer"][row["reviewer_id"]] = row
    return out


def _decision_figures(window):
    return _three_ways(_rows(_DECISIONS_SQL, window))


def _qa_figures(window):
    return _three_ways(_rows(_QA_SQL, window))


_APPEALS_SQL = """
SELECT p.threat_class_id AS class_id, count(*) AS resolved,
       count(*) FILTER (WHERE a.outcome = 'overturned') AS overturned
  FROM appeals_appeal a
  JOIN reviews_decision d ON d.id = a.decision_id
  JOIN policies_policyversion pv ON pv.id = d.policy_version_id
  JOIN policies_policy p ON p.id = pv.policy_id
 WHERE a.status = 'resolved' AND a.resolved_at >= %(since)s AND p.threat_class_id = ANY(%(classes)s)
 GROUP BY p.threat_class_id
"""


def _appeal_figures(window):
    return {row["class_id"]: row for row in _rows(_APPEALS_SQL, window)}


def _class_row(tc, cases, decisions, qa, appeals):
    c = cases.get(tc.pk, {})
    d = decisions["class"].get(tc.pk, {})
    q = qa["class"].get(tc.pk, {})
    a = appeals.get(tc.pk, {})
    return {
        "slug": tc.slug,
        "name": tc.name,
        "restricted": tc.restricted,
        "automation": tc.automation,
        "sla_seconds": tc.sla_seconds,
        "open": c.get("open", 0),
        "in_review": c.get("in_review", 0),
        "escalated": c.get("escalated", 0),
        "breaching": c.get("breaching", 0),
        "created": c.get("created", 0),
        "acted": c.get("acted", 0),
        "sla_compliance": _ratio(c.get("met", 0), c.get("due", 0)),
        "time_to_action_p50_s": c.get("p50"),
        "time_to_action_p90_s": c.get("p90"),
        "decisions": d.get("decisions", 0),
        "automated_decisions": d.get("automated", 0),
        "appeal_rate": _ratio(d.get("appealed", 0), d.get("violations", 0)),
        "appeals_resolved": a.get("resolved", 0),
        "overturn_rate": _ratio(a.get("overturned", 0), a.get("resolved", 0)),
        "qa_reviews": q.get("done", 0),
        "qa_agreement": _ratio(q.get("agreed", 0), q.get("done", 0)),
        "auto_action_precision": wilson_interval(d.get("holdout_violations", 0), d.get("holdout", 0)),
    }


# --- per policy version and reviewer --------------------------------------------------------------------------------


def _policy_versions(class_ids, decisions, qa):
    """Decision quality per policy version (labels are never mixed across a version change) and relabel progress.

    Lists the versions with decisions in the window, the active ones and those
    still being relabelled.
    """
    pending = RelabelItem.objects.filter(status="pending").values("policy_version_id")
    versions = list(
        PolicyVersion.objects.filter(policy__threat_class_id__in=class_ids)
        .filter(Q(pk__in=list(decisions["version"])) | Q(status="active") | Q(pk__in=pending))
        .select_related("policy__threat_class")
        .order_by("policy__threat_class__slug", "-number")
    )
    relabels = {
        row["policy_version_id"]: row
        for row in RelabelItem.objects.filter(policy_version__in=versions)
        .values("policy_version_id")
        .annotate(
            n_pending=Count("id", filter=Q(status="pending")),
            n_done=Count("id", filter=Q(status="done")),
            n_agreed=Count("id", filter=Q(agrees=True)),
        )
    }
    out = []
    for v in versions:
        d, q, r = decisions["version"].get(v.pk, {}), qa["version"].get(v.pk, {}), relabels.get(v.pk, {})
        out.append(
            {
                "id": v.pk,
                "threat_class": v.policy.threat_class.slug,
                "policy": v.policy.slug,
                "number": v.number,
                "status": v.status,
                "effective_at": v.effective_at.isoformat() if v.effective_at else None,
                "decisions": d.get("decisions", 0),
                "automated_decisions": d.get("automated", 0),
                "overturn_share": _ratio(d.get("overturned", 0), d.get("decisions", 0)),
                "qa_agreement": _ratio(q.get("agreed", 0), q.get("done", 0)),
                "auto_action_precision": wilson_interval(d.get("holdout_violations", 0), d.get("holdout", 0)),
                "relabel": {
                    "pending": r.get("n_pending", 0),
                    "done": r.get("n_done", 0),
                    "agreement": _ratio(r.get("n_agreed", 0), r.get("n_done", 0)),
                },
            }
        )
    return out


def _reviewers(decisions, qa):
    """Per reviewer with decisions in the window: how many, how often a violation, overturns, QA agreement."""
    names = dict(Reviewer.objects.filter(pk__in=list(decisions["reviewer"])).values_list("pk", "user__username"))
    out = []
    for reviewer_id, d in decisions["reviewer"].items():
        q = qa["reviewer"].get(reviewer_id, {})
        out.append(
            {
                "reviewer": names.get(reviewer_id, str(reviewer_id)),
                "decisions": d["decisions"],
                "violation_share": _ratio(d["violations"], d["decisions"]),
                "overturned": d["overturned"],
                "qa_reviews": q.get("done", 0),
                "qa_agreement": _ratio(q.get("agreed", 0), q.get("done", 0)),
            }
        )
    return sorted(out, key=lambda r: r["reviewer"])


# --- queues, sources, delivery, incidents, series ---------------------------------------------------------------


class _Cleared:
    """Stands for any user with these clearances: what ``docket.visibility.clearances_of`` reads.

    Queue figures depend on the user only through the clearance set, which is
    what lets one cached snapshot serve every user who shares it.
    """

    is_authenticated = True
    pk = None

    def __init__(self, clearances):
        self._docket_clearances = frozenset(clearances)


def _queues(clearances, *, now):
    """Exactly what ``GET /api/v1/queues/`` lists, for users with these clearances."""
    return [dict(row) for row in QueueSerializer(queues_overview(_Cleared(clearances), now=now), many=True).data]


def _sources(clearances):
    """Exactly what ``GET /api/v1/sources/`` lists, for users with these clearances."""
    return [dict(row) for row in SourceSerializer(sources_overview(user=_Cleared(clearances)), many=True).data]


def _enforcement(class_ids):
    """Delivery to the platform: what is waiting, what failed for good (newest failures listed)."""
    # Delivered rows, the vast majority, are never read.
    undelivered = Enforcement.objects.filter(
        status__in=("pending", "failed"), decision__policy_version__policy__threat_class_id__in=class_ids
    )
    counts = undelivered.aggregate(
        pending=Count("id", filter=Q(status="pending")),
        failed=Count("id", filter=Q(status="failed")),
        retrying=Count("id", filter=Q(status="pending", attempts__gt=0)),
    )
    failures = undelivered.filter(status="failed").order_by("-next_attempt_at", "-id")[:RECENT_FAILURES]
    counts["recent_failures"] = [
        {
            "id": str(e["public_id"]),
            "decision": e["decision_id"],
            "kind": e["kind"],
            "action": e["action"],
            "attempts": e["attempts"],
            "last_error": e["last_error"][:200],
        }
        for e in failures.values("public_id", "decision_id", "kind", "action", "attempts", "last_error")
    ]
    return counts


def _incidents():
    return [
        {"source": i["source__slug"], "kind": i["kind"], "opened_at": i["opened_at"].isoformat(), "detail": i["detail"]}
        for i in SourceIncident.objects.filter(status="open")
        .order_by("-opened_at")
        .values("source__slug", "kind", "opened_at", "detail")
    ]


def _series(days, *, series_start):
    """Per day of the last two weeks: cases created, acted on, and acted on within their SLA."""
    out = []
    for i in range(SERIES_DAYS):
        day = (series_start + timedelta(days=i)).date()
        row = days.get(day, {})
        out.append(
            {
                "date": day.isoformat(),
                "created": row.get("total", 0),
                "acted": row.get("day_acted", 0),
                "within_sla": row.get("day_met", 0),
            }
        )
    return out
