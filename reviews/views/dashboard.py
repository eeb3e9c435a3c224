"""The dashboard and the source pages (moving to the top-layer oversight app)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from casework.hygiene import (
    source_confirm,
    source_incident_resolve,
    source_overview,
    source_quarantine,
    sources_overview,
)
from docket import roles
from docket.errors import DocketError
from docket.metrics import metrics_snapshot
from reviews.selectors import decisions_visible_to
from reviews.statements import transparency_db_overview

from .charts import queue_chart, series_chart, sla_chart, source_chart
from .common import duration, parse_time, refused, staff_required

# --- dashboard -------------------------------------------------------------------------------------


@require_GET
@staff_required
def dashboard(request):
    snapshot = metrics_snapshot(request.user)
    queues = snapshot.get("queues", [])
    classes = [dict(c) for c in snapshot.get("threat_classes", [])]
    # Sources and incidents live, not from the cached snapshot: a status and its incident never disagree.
    sources = sources_overview()
    enforcement = snapshot.get("enforcement", {})
    recent = list(decisions_visible_to(request.user).order_by("-created_at")[:15])
    transparency_db = transparency_db_overview(request.user)
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
        "reviews/dashboard.html",
        {
            "generated_at": parse_time(snapshot.get("generated_at")),
            "queues": queues,
            "classes": classes,
            "sources": sources,
            "incidents": sorted((s for s in sources if s.incident), key=lambda s: s.incident.opened_at, reverse=True),
            "failures": enforcement.get("recent_failures", []),
            "recent": recent,
            "totals": totals,
            "queue_chart": queue_chart(queues),
            "sla_chart": sla_chart(classes),
            "series_chart": series_chart(snapshot.get("series", [])),
            "source_chart": source_chart(sources),
            "transparency_db": transparency_db,
        },
    )


# --- sources: health, the open incident, an admin's confirm / quarantine ----------------------------------


@require_GET
@staff_required
def source_detail(request, slug):
    try:
        source = source_overview(slug=slug)
    except DocketError as e:
        raise Http404(e.detail) from None
    return render(
        request,
        "reviews/source.html",
        {"source": source, "can_decide": roles.has(request.user, roles.POLICY_ADMIN)},
    )


def _source_action(request, slug, act):
    """Run one admin action on the source; a refusal or a missing role is a message on the source page."""
    if not roles.has(request.user, roles.POLICY_ADMIN):
        messages.error(request, "Only a policy admin confirms or quarantines a source.")
    else:
        try:
            messages.success(request, act())
        except DocketError as e:
            refused(request, e)
    return redirect("source-detail", slug=slug)


@require_POST
@staff_required
def source_confirm_view(request, slug):
    def act():
        released = source_confirm(source_slug=slug, actor=request.user)["released"]
        return f"Confirmed: {slug} is healthy; {released} held signal{'s' if released != 1 else ''} entered the queue."

    return _source_action(request, slug, act)


@require_POST
@staff_required
def source_incident_resolve_view(request, slug):
    def act():
        source_incident_resolve(source_slug=slug, actor=request.user)
        return f"Resolved: {slug}'s incident is closed; the source keeps its status."

    return _source_action(request, slug, act)


@require_POST
@staff_required
def source_quarantine_view(request, slug):
    def act():
        source_quarantine(source_slug=slug, actor=request.user)
        return f"Quarantined: {slug}'s signals stay held, stored and out of the queue."

    return _source_action(request, slug, act)
