"""Pages for sources and threshold governance: thin views over the hygiene and threshold services.

A refusal of a service is shown on the page it came from, with nothing
changed; a threshold change or source that does not exist is a 404.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from docket import roles
from docket.errors import DocketError
from policies.selectors import threshold_changes_list, thresholds_list
from policies.services import threshold_change_approve, threshold_change_reject

from .hygiene import sources_overview

staff_required = roles.role_required(*roles.STAFF)
policy_admin_required = roles.role_required(roles.POLICY_ADMIN)

DISPOSITIONS = [
    ("queued", "Queued for review"),
    ("auto_actioned", "Actioned automatically"),
    ("below_threshold", "Below the review threshold (stored, no case)"),
    ("held", "Held (source suspect or quarantined)"),
]
CHANGES_SHOWN = 50


@require_GET
@staff_required
def sources_index(request):
    """Every registered source with its health, what it holds and its open incident."""
    return render(
        request,
        "casework/sources.html",
        {"sources": sources_overview(user=request.user), "can_decide": roles.has(request.user, roles.POLICY_ADMIN)},
    )


@require_GET
@policy_admin_required
def thresholds_index(request):
    """Thresholds in force, changes waiting for a second admin, and the recent history."""
    changes = list(threshold_changes_list(user=request.user)[:CHANGES_SHOWN])
    return render(
        request,
        "casework/thresholds.html",
        {
            "thresholds": thresholds_list(),
            "waiting": [c for c in changes if c.status == "proposed"],
            "decided": [c for c in changes if c.status != "proposed"],
        },
    )


def _change(request, change_id):
    change = threshold_changes_list(user=request.user).filter(pk=change_id).first()
    if change is None:
        raise Http404("No such threshold change.")
    return change


def blast_radius_rows(radius):
    """The stored blast radius as table rows: disposition, signals before, after and the difference."""
    before, after = radius.get("before") or {}, radius.get("after") or {}
    rows = []
    for key, label in DISPOSITIONS:
        b, a = before.get(key, 0), after.get(key, 0)
        rows.append({"key": key, "label": label, "before": b, "after": a, "delta": a - b})
    return rows


@require_GET
@policy_admin_required
def threshold_change_detail(request, change_id):
    change = _change(request, change_id)
    return _detail(request, change)


def _detail(request, change, status=200):
    radius = change.blast_radius or {}
    return render(
        request,
        "casework/threshold_change.html",
        {
            "change": change,
            "radius": radius,
            "rows": blast_radius_rows(radius),
            "own": change.proposed_by_id == request.user.pk,
        },
        status=status,
    )


def _decide(request, change_id, service, done):
    change = _change(request, change_id)
    try:
        service(change_id=change.pk, actor=request.user)
    except DocketError as e:
        if e.status == 404:
            raise Http404(e.detail) from None
        messages.error(request, e.detail)
        return _detail(request, _change(request, change_id), status=e.status)
    messages.success(request, done.format(id=change.pk))
    return redirect("casework:threshold-change", change_id=change.pk)


@require_POST
@policy_admin_required
def threshold_change_approve_view(request, change_id):
    return _decide(request, change_id, threshold_change_approve, "Threshold change {id} approved and applied.")


@require_POST
@policy_admin_required
def threshold_change_reject_view(request, change_id):
    return _decide(request, change_id, threshold_change_reject, "Threshold change {id} rejected; nothing moved.")
