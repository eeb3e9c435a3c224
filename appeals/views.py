"""The appeals UI: the queue, claim next, the appeal page and the resolve form.

Thin views over ``appeals.services`` and ``appeals.selectors``: a refusal is a
message, never an error page; an appeal the user may not see is a 404.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from casework.selectors import case_signals_shown
from docket import roles
from docket.audit import access_log_appeal_read
from docket.errors import DocketError
from policies.models import Action
from reviews.services import active_version_for
from reviews.views.common import link_maker
from reviews.views.timeline import events_told

from . import selectors, services
from .api.filters import AppealFilter
from .forms import ResolveForm
from .models import Appeal

EVENTS_SHOWN = 40
ACTION_LABELS = dict(Action.choices)
# Keys of the outcome radios (the moderator UI's data-action-key convention) and where focus goes next.
OUTCOME_KEYS = {"upheld": ("u", "id_rationale"), "overturned": ("o", "id_rationale"), "modified": ("m", "id_action")}


# Signed-in members of the appeals staff; others get 403.
appeals_staff_required = roles.role_required(roles.APPEALS)


def _reviewer(request):
    """The user's reviewer profile (None without one), kept on the user: its clearances answer the request's
    visibility checks (``reviews.identity``)."""
    return getattr(request.user, "reviewer", None)


def _refused(request, error):
    """A service refusal as a message; a 404 stays a 404 (no hint that it exists)."""
    if error.status == 404:
        raise Http404(error.detail)
    messages.error(request, error.detail)


def _form_errors(form):
    return " ".join(
        f"{(form.fields[name].label or name.replace('_', ' ').capitalize()) if name in form.fields else ''}: "
        f"{' '.join(str(e) for e in errors)}".lstrip(": ")
        for name, errors in form.errors.items()
    )


# What a row of the appeals queue (and of "Appeals you hold") shows.
QUEUE_ROW_FIELDS = (
    "decision__action",
    "decision__case__threat_class__name",
    "decision__case__threat_class__restricted",
    "decision__case__subject__kind",
    "decision__case__subject__external_id",
    "received_at",
    "deadline",
    "status",
    "outcome",
    "assigned_to__user__username",
)


@require_GET
@appeals_staff_required
def appeals_queue(request):
    reviewer = _reviewer(request)
    # Only the columns a row shows: the cases' and subjects' JSON (the priority breakdown, the attributes) and
    # the other wide columns were read and decoded for nothing, 50 rows on every open of the queue.
    visible = (
        selectors.appeals_list(request.user)
        .select_related(None)
        .select_related("decision__case__threat_class", "decision__case__subject", "assigned_to__user")
        .only(*QUEUE_ROW_FIELDS)
    )
    params = request.GET.copy()
    params.setdefault("status", Appeal.Status.RECEIVED)
    filtered = AppealFilter(params, queryset=visible)
    rows = filtered.qs if filtered.is_valid() else visible.none()
    counts = selectors.appeals_visible_to(request.user).aggregate(
        total=Count("id"),
        received=Count("id", filter=Q(status="received")),
        in_review=Count("id", filter=Q(status="in_review")),
        resolved=Count("id", filter=Q(status="resolved")),
        overdue=Count("id", filter=Q(status__in=services.OPEN_STATUSES, deadline__lt=timezone.now())),
    )
    paginator = Paginator(rows, 50)
    if filtered.is_valid() and not filtered.form.cleaned_data.get("outcome"):
        # The list is the visible appeals of one status, or all of them: the figures just counted it.
        status = filtered.form.cleaned_data.get("status")
        paginator.count = counts[status] if status else counts["total"]
    page = paginator.get_page(request.GET.get("page"))
    mine = list(visible.filter(status="in_review", assigned_to=reviewer)) if reviewer else []
    appeal_url = link_maker("appeals:appeal", "appeal_id")
    for appeal in (*page, *mine):  # the row links, one reverse for all
        appeal.url = appeal_url(appeal.pk)
    return render(
        request,
        "appeals/queue.html",
        {
            "page": page,
            "status": params.get("status", ""),
            "statuses": [("received", "Waiting"), ("in_review", "In review"), ("resolved", "Resolved"), ("", "All")],
            "counts": counts,
            "mine": mine,
            "reviewer": reviewer,
            "now": timezone.now(),
        },
    )


@require_POST
@appeals_staff_required
def appeal_claim_view(request):
    try:
        appeal = services.appeal_claim(reviewer=_reviewer(request))
    except DocketError as e:
        _refused(request, e)
        return redirect("appeals:queue")
    if appeal is None:
        messages.info(request, "No appeal is waiting for you right now.")
        return redirect("appeals:queue")
    return redirect("appeals:appeal", appeal_id=appeal.pk)


@require_GET
@appeals_staff_required
def appeal_detail(request, appeal_id):
    reviewer = _reviewer(request)  # first: its clearances serve the visibility check below
    appeal = selectors.appeal_for(request.user, appeal_id)
    if appeal is None:
        raise Http404("No such appeal.")
    access_log_appeal_read(user=request.user, appeal=appeal, via="ui")
    decision = appeal.decision
    case = decision.case
    signals, signals_more = case_signals_shown(case)
    events = list(case.events.order_by("-at", "-id")[:EVENTS_SHOWN])
    events_told(events)
    decisions = list(case.decisions.select_related("reviewer__user", "policy_version__policy").order_by("created_at"))
    try:
        version = active_version_for(case.threat_class)
    except DocketError:
        version = None
    mine = appeal.status == "in_review" and reviewer is not None and appeal.assigned_to_id == reviewer.pk
    outcomes = [
        {"value": value, "label": label, "key": OUTCOME_KEYS[value][0], "focus": OUTCOME_KEYS[value][1]}
        for value, label in Appeal.Outcome.choices
    ]
    return render(
        request,
        "appeals/detail.html",
        {
            "appeal": appeal,
            "decision": decision,
            "case": case,
            "sor": _sor_rows(decision.statement),
            "decision_rule_title": _rule_title(decision.policy_version, decision.rule),
            "signals": signals,
            "signals_more": signals_more,
            "events": events,
            "decisions": decisions,
            "version": version,
            "ladder": [(a, ACTION_LABELS.get(a, a)) for a in (version.ladder if version else [])],
            "mine": mine,
            "conflict": selectors.has_conflict(reviewer, appeal),
            "outcomes": outcomes,
            "outcome_statement": selectors.appeal_outcome_statement(appeal),
            "outcome_notice": selectors.appeal_outcome_notice(appeal),
            "overdue": appeal.status != "resolved" and appeal.deadline < timezone.now(),
        },
    )


def _sor_rows(sor):
    """The statement of reasons as (field, text) rows, empty fields left out."""
    rows = []
    for key, value in (sor or {}).items():
        if value in (None, "", [], {}):
            continue
        rows.append((key, ", ".join(map(str, value)) if isinstance(value, list) else value))
    return rows


def _rule_title(version, code):
    return next((r.get("title", "") for r in version.rules if r.get("code") == code), "")


@require_POST
@appeals_staff_required
def appeal_resolve_view(request, appeal_id):
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect("appeals:appeal", appeal_id=appeal_id)
    data = form.cleaned_data
    try:
        appeal = services.appeal_resolve(
            appeal_id=appeal_id,
            reviewer=_reviewer(request),
            outcome=data["outcome"],
            action=data["action"] or None,
            rule=data["rule"] if data["action"] else None,
            duration_days=data["duration_days"],
            rationale=data["rationale"],
        )
    except DocketError as e:
        _refused(request, e)
        return redirect("appeals:appeal", appeal_id=appeal_id)
    messages.success(request, f"Appeal {appeal.pk} resolved: {appeal.get_outcome_display().lower()}.")
    return redirect("appeals:queue")


@require_POST
@appeals_staff_required
def appeal_release_view(request, appeal_id):
    try:
        services.appeal_release(appeal_id=appeal_id, reviewer=_reviewer(request))
    except DocketError as e:
        _refused(request, e)
        return redirect("appeals:appeal", appeal_id=appeal_id)
    messages.info(request, f"Appeal {appeal_id} went back to the queue.")
    return redirect("appeals:queue")
