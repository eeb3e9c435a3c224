"""The dashboard: the guard metrics drawn, with live source health and delivery; it reads every app."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from casework.hygiene import sources_overview
from reviews.models import Enforcement
from reviews.selectors import decisions_visible_to
from reviews.statements import transparency_db_overview
from reviews.views.charts import queue_chart, series_chart, sla_chart, source_chart
from reviews.views.common import ACTION_LABELS, drain_forecast, duration, parse_time, staff_required

from .metrics import metrics_snapshot

# --- dashboard -------------------------------------------------------------------------------------


@require_GET
@staff_required
def dashboard(request):
    snapshot = metrics_snapshot(request.user)
    queues = snapshot.get("queues", [])
    classes = [dict(c) for c in snapshot.get("threat_classes", [])]
    # Sources and incidents live, not from the cached snapshot: a status and its incident never disagree.
    sources = sources_overview(user=request.user)
    enforcement = snapshot.get("enforcement", {})
    recent = list(decisions_visible_to(request.user).order_by("-created_at")[:15])
    transparency_db = transparency_db_overview(request.user)
    kinds = dict(Enforcement.Kind.choices)
    failures = [
        {**f, "kind_label": kinds.get(f["kind"], f["kind"]), "action_label": ACTION_LABELS.get(f["action"])}
        for f in enforcement.get("recent_failures", [])
    ]
    for q in queues:
        q["forecast"] = drain_forecast(q)
    for c in classes:
        c["sla_pct"] = None if c.get("sla_compliance") is None else round(100 * c["sla_compliance"], 1)
        c["p50"] = duration(c.get("time_to_action_p50_s"))
        c["p90"] = duration(c.get("time_to_action_p90_s"))
    totals = {
        "depth": sum(q.get("depth") or 0 for q in queues),
        "in_review": sum(q.get("in_review") or 0 for q in queues),
        "breaching": sum(q.get("breaching") or 0 for q in queues),
        "incidents": sum(1 for s in sources if s.incident),
        "pending": enforcement.get("pending", 0),
        "failed": enforcement.get("failed", 0),
        "held": sum(s.held for s in sources),
    }
    return render(
        request,
        "oversight/dashboard.html",
        {
            "generated_at": parse_time(snapshot.get("generated_at")),
            "queues": queues,
            "classes": classes,
            "sources": sources,
            "incidents": sorted((s for s in sources if s.incident), key=lambda s: s.incident.opened_at, reverse=True),
            "failures": failures,
            "recent": recent,
            "totals": totals,
            "queue_chart": queue_chart(queues),
            "sla_chart": sla_chart(classes),
            "series_chart": series_chart(snapshot.get("series", [])),
            "source_chart": source_chart(sources),
            "transparency_db": transparency_db,
        },
    )
