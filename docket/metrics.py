"""Guard metrics: is the queue keeping up, and how good are our decisions and the machine's?

``metrics_snapshot(user)`` is what ``GET /api/v1/metrics/`` serves and the
dashboard draws. Every figure is an aggregate query (``FILTER`` clauses,
``percentile_cont``) grouped by threat class, policy version or reviewer, never
a Python loop over rows. Restricted threat classes appear only for users
cleared for them, so a snapshot depends on the user only through their
clearance set: it is cached per clearance set for
``DOCKET["METRICS_CACHE_SECONDS"]``, and computed directly when the cache
(Redis) is down. On an empty system rates and percentiles are ``null`` and
counts ``0``; nothing divides by zero.

Definitions (flow figures cover cases and decisions of the last
``DOCKET["METRICS_WINDOW_DAYS"]`` days, default 30; backlog figures are now):
- ``open``: cases awaiting a decision (open, in review or escalated);
- ``time_to_action_p50_s`` / ``_p90_s``: seconds from a case's creation to its
  first action (decision or escalation, by a human or by automation);
- ``sla_compliance``: cases acted on by their SLA due time, over cases acted on
  or already past due;
- ``overturn_rate``: appeals resolved ``overturned`` over appeals resolved;
  ``appeal_rate``: decisions appealed over violation decisions;
- ``qa_agreement``: blind second reviews that agree, over those done;
- ``auto_action_precision``: of holdout cases (automation would have acted, a
  human decided instead), the share the human found a violation, with its
  95% Wilson interval.
"""

import logging
import math
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, Count, Exists, F, FloatField, Func, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from casework.selectors import clearances_of
from policies.models import VIOLATIONS
from policies.selectors import threat_classes_visible

log = logging.getLogger(__name__)

ACTIVE = ("open", "in_review", "escalated")
Z95 = 1.959963984540054
SERIES_DAYS = 14
RECENT_FAILURES = 10


def _setting(name, default):
    return settings.DOCKET.get(name, default)


def _model(label):
    return apps.get_model(*label.split("."))


class Percentile(Aggregate):
    """``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _seconds_between(start, end):
    return Func(F(end) - F(start), template="EXTRACT(EPOCH FROM %(expressions)s)", output_field=FloatField())


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


def _data_version():
    """A cheap fingerprint of the data the snapshot reads, part of the cache key.

    The newest row of each table that a new case, claim, decision, appeal or
    delivery adds (index lookups, well under a millisecond), and the current
    transaction's id when it has written (a test, or a caller that has just
    changed something): a snapshot is never served after rows it does not
    count were added. Status changes without a new row may be up to
    ``METRICS_CACHE_SECONDS`` old.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT max(id) FROM casework_case), (SELECT max(id) FROM reviews_assignment),
                   (SELECT max(id) FROM reviews_decision), (SELECT max(id) FROM appeals_appeal),
                   (SELECT max(id) FROM reviews_enforcement), (SELECT max(id) FROM reviews_qualityreview),
                   txid_current_if_assigned()
            """
        )
        return ".".join(str(v or 0) for v in cursor.fetchone())


def _cache_key(clearances):
    database = connection.settings_dict["NAME"]
    return f"metrics:v1:{database}:{','.join(sorted(clearances)) or '-'}:{_data_version()}"


def metrics_snapshot(user) -> dict:
    """The guard metrics ``user`` may see, cached briefly per clearance set."""
    clearances = clearances_of(user)
    key = _cache_key(clearances)
    try:
        cached = cache.get(key)
    except Exception:  # a cache outage (Redis down) must not take the dashboard with it
        log.warning("metrics cache unavailable; computing", exc_info=True)
        cached = None
    if cached is not None:
        return cached
    return _compute_and_store(clearances, key)


def _compute_and_store(clearances, key):
    snapshot = compute_snapshot(clearances=clearances)
    try:
        cache.set(key, snapshot, _setting("METRICS_CACHE_SECONDS", 30))
    except Exception:
        log.warning("metrics cache unavailable; not stored", exc_info=True)
    return snapshot


def metrics_refresh() -> int:
    """Recompute and cache the snapshot of every clearance set in use (and none); returns how many."""
    Reviewer = _model("reviews.Reviewer")
    sets = {frozenset()}
    for clearances in Reviewer.objects.values_list("clearances", flat=True).distinct():
        sets.add(frozenset(clearances or ()))
    for clearances in sets:
        _compute_and_store(clearances, _cache_key(clearances))
    return len(sets)


def compute_snapshot(*, clearances, now=None) -> dict:
    """Every guard metric over the threat classes visible with ``clearances`` (uncached)."""
    now = now or timezone.now()
    since = now - timedelta(days=_setting("METRICS_WINDOW_DAYS", 30))
    classes = list(threat_classes_visible(clearances).order_by("-severity", "slug"))
    class_ids = [tc.pk for tc in classes]
    return {
        "generated_at": now.isoformat(),
        "window_days": _setting("METRICS_WINDOW_DAYS", 30),
        "threat_classes": _threat_classes(classes, since=since, now=now),
        "queues": _queues(clearances, now=now),
        "sources": _sources(),
        "policy_versions": _policy_versions(class_ids, since=since),
        "reviewers": _reviewers(class_ids, since=since),
        "enforcement": _enforcement(class_ids),
        "incidents": _incidents(),
        "series": _series(class_ids, now=now),
    }


# --- per threat class -------------------------------------------------------------------------------------------


def _threat_classes(classes, *, since, now):
    Case = _model("casework.Case")
    Decision = _model("reviews.Decision")
    Appeal = _model("appeals.Appeal")
    QualityReview = _model("reviews.QualityReview")
    ids = [tc.pk for tc in classes]

    backlog = {
        row["threat_class_id"]: row
        for row in Case.objects.filter(threat_class_id__in=ids, status__in=ACTIVE)
        .values("threat_class_id")
        .annotate(
            open=Count("id"),
            in_review=Count("id", filter=Q(status="in_review")),
            escalated=Count("id", filter=Q(status="escalated")),
            breaching=Count("id", filter=Q(sla_due_at__lt=now)),
        )
    }
    acted = Q(first_action_at__isnull=False)
    flow = {
        row["threat_class_id"]: row
        for row in Case.objects.filter(threat_class_id__in=ids, created_at__gte=since)
        .values("threat_class_id")
        .annotate(
            created=Count("id"),
            acted=Count("id", filter=acted),
            met=Count("id", filter=acted & Q(first_action_at__lte=F("sla_due_at"))),
            due=Count("id", filter=acted | Q(sla_due_at__lt=now)),
            p50=Percentile(_seconds_between("created_at", "first_action_at"), 0.5, filter=acted),
            p90=Percentile(_seconds_between("created_at", "first_action_at"), 0.9, filter=acted),
        )
    }
    appealed = Exists(_model("appeals.Appeal").objects.filter(decision=OuterRef("pk")))
    decisions = {
        row["case__threat_class_id"]: row
        for row in Decision.objects.filter(case__threat_class_id__in=ids, created_at__gte=since, relabel=False)
        .annotate(was_appealed=appealed)
        .values("case__threat_class_id")
        .annotate(
            n_decisions=Count("id"),
            n_automated=Count("id", filter=Q(automated=True)),
            n_violations=Count("id", filter=Q(action__in=sorted(VIOLATIONS))),
            n_appealed=Count("id", filter=Q(was_appealed=True, action__in=sorted(VIOLATIONS))),
            n_holdout=Count("id", filter=Q(holdout=True, automated=False)),
            n_holdout_violations=Count("id", filter=Q(holdout=True, automated=False, action__in=sorted(VIOLATIONS))),
        )
    }
    appeals = {
        row["decision__case__threat_class_id"]: row
        for row in Appeal.objects.filter(decision__case__threat_class_id__in=ids, decision__created_at__gte=since)
        .values("decision__case__threat_class_id")
        .annotate(
            resolved=Count("id", filter=Q(status="resolved")), overturned=Count("id", filter=Q(outcome="overturned"))
        )
    }
    qa = {
        row["decision__case__threat_class_id"]: row
        for row in QualityReview.objects.filter(
            decision__case__threat_class_id__in=ids, decision__created_at__gte=since, status="done"
        )
        .values("decision__case__threat_class_id")
        .annotate(done=Count("id"), agreed=Count("id", filter=Q(agrees=True)))
    }

    out = []
    for tc in classes:
        b = backlog.get(tc.pk, {})
        f = flow.get(tc.pk, {})
        d = decisions.get(tc.pk, {})
        a = appeals.get(tc.pk, {})
        q = qa.get(tc.pk, {})
        out.append(
            {
                "slug": tc.slug,
                "name": tc.name,
                "restricted": tc.restricted,
                "automation": tc.automation,
                "sla_seconds": tc.sla_seconds,
                "open": b.get("open", 0),
                "in_review": b.get("in_review", 0),
                "escalated": b.get("escalated", 0),
                "breaching": b.get("breaching", 0),
                "created": f.get("created", 0),
                "acted": f.get("acted", 0),
                "sla_compliance": _ratio(f.get("met", 0), f.get("due", 0)),
                "time_to_action_p50_s": f.get("p50"),
                "time_to_action_p90_s": f.get("p90"),
                "decisions": d.get("n_decisions", 0),
                "automated_decisions": d.get("n_automated", 0),
                "appeal_rate": _ratio(d.get("n_appealed", 0), d.get("n_violations", 0)),
                "appeals_resolved": a.get("resolved", 0),
                "overturn_rate": _ratio(a.get("overturned", 0), a.get("resolved", 0)),
                "qa_reviews": q.get("done", 0),
                "qa_agreement": _ratio(q.get("agreed", 0), q.get("done", 0)),
                "auto_action_precision": wilson_interval(d.get("n_holdout_violations", 0), d.get("n_holdout", 0)),
            }
        )
    return out


# --- per policy version and reviewer --------------------------------------------------------------------------------


def _policy_versions(class_ids, *, since):
    """Decision quality per policy version: labels are never mixed across a version change."""
    PolicyVersion = _model("policies.PolicyVersion")
    Decision = _model("reviews.Decision")
    QualityReview = _model("reviews.QualityReview")
    RelabelItem = _model("policies.RelabelItem")
    decisions = {
        row["policy_version_id"]: row
        for row in Decision.objects.filter(case__threat_class_id__in=class_ids, created_at__gte=since, relabel=False)
        .values("policy_version_id")
        .annotate(
            n_decisions=Count("id"),
            n_automated=Count("id", filter=Q(automated=True)),
            n_overturned=Count("id", filter=Q(overturned=True)),
            n_holdout=Count("id", filter=Q(holdout=True, automated=False)),
            n_holdout_violations=Count("id", filter=Q(holdout=True, automated=False, action__in=sorted(VIOLATIONS))),
        )
    }
    # Versions with decisions in the window, the active ones, and those still being relabelled.
    versions = list(
        PolicyVersion.objects.filter(policy__threat_class_id__in=class_ids)
        .filter(
            Q(pk__in=list(decisions))
            | Q(status="active")
            | Q(pk__in=RelabelItem.objects.filter(status="pending").values("policy_version_id"))
        )
        .select_related("policy__threat_class")
        .order_by("policy__threat_class__slug", "-number")
    )
    ids = [v.pk for v in versions]
    qa = {
        row["decision__policy_version_id"]: row
        for row in QualityReview.objects.filter(
            decision__policy_version_id__in=ids, decision__created_at__gte=since, status="done"
        )
        .values("decision__policy_version_id")
        .annotate(done=Count("id"), agreed=Count("id", filter=Q(agrees=True)))
    }
    relabels = {
        row["policy_version_id"]: row
        for row in RelabelItem.objects.filter(policy_version_id__in=ids)
        .values("policy_version_id")
        .annotate(
            pending=Count("id", filter=Q(status="pending")),
            done=Count("id", filter=Q(status="done")),
            agreed=Count("id", filter=Q(agrees=True)),
        )
    }
    out = []
    for v in versions:
        d, q, r = decisions.get(v.pk, {}), qa.get(v.pk, {}), relabels.get(v.pk, {})
        out.append(
            {
                "id": v.pk,
                "threat_class": v.policy.threat_class.slug,
                "policy": v.policy.slug,
                "number": v.number,
                "status": v.status,
                "effective_at": v.effective_at.isoformat() if v.effective_at else None,
                "decisions": d.get("n_decisions", 0),
                "automated_decisions": d.get("n_automated", 0),
                "overturn_share": _ratio(d.get("n_overturned", 0), d.get("n_decisions", 0)),
                "qa_agreement": _ratio(q.get("agreed", 0), q.get("done", 0)),
                "auto_action_precision": wilson_interval(d.get("n_holdout_violations", 0), d.get("n_holdout", 0)),
                "relabel": {
                    "pending": r.get("pending", 0),
                    "done": r.get("done", 0),
                    "agreement": _ratio(r.get("agreed", 0), r.get("done", 0)),
                },
            }
        )
    return out


def _reviewers(class_ids, *, since):
    """Per reviewer: decisions in the window, their overturns and their QA agreement."""
    Decision = _model("reviews.Decision")
    QualityReview = _model("reviews.QualityReview")
    rows = (
        Decision.objects.filter(
            case__threat_class_id__in=class_ids, created_at__gte=since, automated=False, relabel=False
        )
        .values("reviewer_id", "reviewer__user__username")
        .annotate(
            n_decisions=Count("id"),
            n_violations=Count("id", filter=Q(action__in=sorted(VIOLATIONS))),
            n_overturned=Count("id", filter=Q(overturned=True)),
        )
        .order_by("reviewer__user__username")
    )
    qa = {
        row["decision__reviewer_id"]: row
        for row in QualityReview.objects.filter(
            decision__case__threat_class_id__in=class_ids, decision__created_at__gte=since, status="done"
        )
        .values("decision__reviewer_id")
        .annotate(done=Count("id"), agreed=Count("id", filter=Q(agrees=True)))
    }
    out = []
    for row in rows:
        q = qa.get(row["reviewer_id"], {})
        out.append(
            {
                "reviewer": row["reviewer__user__username"],
                "decisions": row["n_decisions"],
                "violation_share": _ratio(row["n_violations"], row["n_decisions"]),
                "overturned": row["n_overturned"],
                "qa_reviews": q.get("done", 0),
                "qa_agreement": _ratio(q.get("agreed", 0), q.get("done", 0)),
            }
        )
    return out


# --- queues, sources, delivery, incidents, series ---------------------------------------------------------------


class _Cleared:
    """Stands for any user with these clearances: what ``casework.selectors.clearances_of`` reads.

    Queue figures depend on the user only through the clearance set, which is
    what lets one cached snapshot serve every user who shares it.
    """

    is_authenticated = True
    pk = None

    def __init__(self, clearances):
        self._docket_clearances = frozenset(clearances)


def _queues(clearances, *, now):
    from reviews.selectors import queues_overview

    return queues_overview(_Cleared(clearances), now=now)


def _sources():
    SignalSource = _model("casework.SignalSource")
    return [
        {
            "slug": s["slug"],
            "kind": s["kind"],
            "trust": s["trust"],
            "status": s["status"],
            "baseline_rate": s["baseline_rate"],
            "current_rate": s["current_rate"],
        }
        for s in SignalSource.objects.order_by("slug").values(
            "slug", "kind", "trust", "status", "baseline_rate", "current_rate"
        )
    ]


def _enforcement(class_ids):
    """Delivery to the platform: what is waiting, what failed for good (newest failures listed)."""
    Enforcement = _model("reviews.Enforcement")
    visible = Enforcement.objects.filter(decision__case__threat_class_id__in=class_ids)
    counts = visible.aggregate(
        pending=Count("id", filter=Q(status="pending")),
        failed=Count("id", filter=Q(status="failed")),
        retrying=Count("id", filter=Q(status="pending", attempts__gt=0)),
    )
    failures = visible.filter(status="failed").order_by("-next_attempt_at", "-id")[:RECENT_FAILURES]
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
    SourceIncident = _model("casework.SourceIncident")
    return [
        {"source": i["source__slug"], "kind": i["kind"], "opened_at": i["opened_at"].isoformat(), "detail": i["detail"]}
        for i in SourceIncident.objects.filter(status="open")
        .order_by("-opened_at")
        .values("source__slug", "kind", "opened_at", "detail")
    ]


def _series(class_ids, *, now):
    """Per day of the last two weeks: cases created, and of those acted on within their SLA or not."""
    Case = _model("casework.Case")
    start = (now - timedelta(days=SERIES_DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    acted = Q(first_action_at__isnull=False)
    rows = {
        row["day"]: row
        for row in Case.objects.filter(threat_class_id__in=class_ids, created_at__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            created=Count("id"),
            acted=Count("id", filter=acted),
            met=Count("id", filter=acted & Q(first_action_at__lte=F("sla_due_at"))),
        )
    }
    out = []
    for i in range(SERIES_DAYS):
        day = (start + timedelta(days=i)).date()
        r = rows.get(day, {})
        out.append(
            {
                "date": day.isoformat(),
                "created": r.get("created", 0),
                "acted": r.get("acted", 0),
                "within_sla": r.get("met", 0),
            }
        )
    return out
