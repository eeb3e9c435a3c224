"""The moderator web UI: thin views over the reviews and casework services.

Views validate input, call one service and turn its ``DocketError`` into a
message (never an error page); a case the user may not see is a 404. Reads
use ``Case.objects.visible_to(user)`` so a restricted case never leaks.
"""

from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import TruncHour
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_GET, require_POST

from casework.hygiene import source_confirm, source_overview, source_quarantine, sources_overview
from casework.models import Campaign, Case, CaseEvent
from casework.priority import BY_RANK, priority_shown
from casework.selectors import recommended_action
from casework.services import ESCALATION_QUEUES, case_note_add
from docket import roles
from docket.errors import DocketError
from docket.metrics import metrics_snapshot
from docket.views import landing
from docket.visibility import restrict, visible_or_404
from policies.models import LADDER, Action
from reviews.models import Assignment, Queue, Reviewer
from reviews.selectors import claimable_queue_slugs, decisions_visible_to, queues_overview
from reviews.services import (
    active_version_for,
    assignment_release,
    assignment_renew,
    assignment_skip,
    campaign_decide,
    case_assign,
    case_escalate,
    decision_make,
    queue_claim,
)

from .forms import AssignForm, BulkDecisionForm, DecisionForm, EscalateForm, NoteForm, form_errors

ACTION_LABELS = dict(Action.choices)

# --- access -------------------------------------------------------------------------


# Signed-in staff (moderators, seniors, appeals, policy admins); others get 403.
staff_required = roles.role_required(*roles.STAFF)


def _reviewer(user):
    try:
        return Reviewer.objects.get(user=user)
    except Reviewer.DoesNotExist:
        return None


def _cases(user):
    """Cases this user may see: the one visibility rule, applied to every read here."""
    return restrict(Case.objects.all(), user)


def _visible_case(user, case_id, *related):
    return visible_or_404(Case.objects.select_related(*related), user, pk=case_id)


def _refused(request, error):
    """Show a service refusal as a message; a 404 refusal stays a 404 (no hint that it exists)."""
    if error.status == 404:
        raise Http404(error.detail)
    messages.error(request, error.detail)


def _reviewer_load(reviewer, now=None):
    """Active assignments and graphic cases claimed today, in one query."""
    now = now or timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    load = Assignment.objects.filter(reviewer=reviewer).aggregate(
        active=Count("id", filter=Q(state="active")),
        graphic_today=Count("id", filter=Q(graphic=True, claimed_at__gte=day_start)),
    )
    load["max_active"] = reviewer.max_active
    load["graphic_budget"] = reviewer.graphic_budget
    load["graphic_left"] = max(reviewer.graphic_budget - load["graphic_today"], 0)
    load["capacity_pct"] = _pct(load["active"], reviewer.max_active)
    load["budget_pct"] = _pct(load["graphic_left"], reviewer.graphic_budget)
    return load


def _pct(part, whole):
    return 0 if not whole else max(0, min(100, round(100 * part / whole)))


# --- home: my queues, capacity, exposure -----------------------------------------------


@require_GET
@login_required
def home(request):
    if not roles.has_any(request.user, (roles.MODERATOR, roles.SENIOR)):
        # Appeals staff, policy admins, the superuser, platform accounts: their own start page, not a 403.
        return landing(request)
    reviewer = _reviewer(request.user)
    overview = queues_overview(request.user)
    own_slugs = set()
    load = None
    my_cases = []
    if reviewer is not None:
        own_slugs = claimable_queue_slugs(request.user)
        load = _reviewer_load(reviewer)
        my_cases = list(
            Assignment.objects.filter(reviewer=reviewer, state="active")
            .select_related("case__threat_class", "case__subject", "case__queue")
            .order_by("claimed_at")
        )
    queues = []
    for row in overview:
        row = dict(row)
        row["mine"] = row["slug"] in own_slugs
        row["oldest_wait"] = _duration(row.get("oldest_wait_seconds"))
        queues.append(row)
    # Queues this reviewer works come first; others are shown for context only.
    queues.sort(key=lambda r: not r["mine"])
    shortcut_queue = next((q["slug"] for q in queues if q["mine"] and q.get("depth")), None)
    return render(
        request,
        "reviews/home.html",
        {
            "reviewer": reviewer,
            "load": load,
            "queues": queues,
            "my_cases": my_cases,
            "shortcut_queue": shortcut_queue,
        },
    )


def _parse_time(value):
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def _duration(seconds):
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


# --- claims and leases -------------------------------------------------------------------


def _claim_next(request, queue_slug):
    """Claim the next case of the queue and go to it; home with a message when none or refused."""
    try:
        assignment = queue_claim(reviewer=request.user, queue_slug=queue_slug)
    except DocketError as e:
        if e.status == 404:
            raise Http404(e.detail) from None
        messages.error(request, e.detail)
        return redirect("home")
    if assignment is None:
        messages.info(request, f"The {queue_slug} queue has no case for you right now.")
        return redirect("home")
    return redirect("case-detail", case_id=assignment.case_id)


@require_POST
@staff_required
def queue_claim_view(request, slug):
    return _claim_next(request, slug)


@require_POST
@staff_required
def assignment_renew_view(request, assignment_id):
    """Called every minute by the open case page; answers the lease fragment, or the lost-lease alert."""
    try:
        assignment = assignment_renew(assignment_id=assignment_id, reviewer=request.user)
    except DocketError as e:
        return render(request, "reviews/_lease.html", {"lost": True, "detail": e.detail})
    return render(request, "reviews/_lease.html", {"assignment": assignment})


def _own_assignment(assignment_id):
    assignment = Assignment.objects.select_related("case__queue").filter(pk=assignment_id).first()
    if assignment is None:
        raise Http404("No such assignment.")
    return assignment


@require_POST
@staff_required
def assignment_release_view(request, assignment_id):
    assignment = _own_assignment(assignment_id)
    try:
        assignment_release(assignment_id=assignment_id, reviewer=request.user)
    except DocketError as e:
        _refused(request, e)
        return redirect("home")
    messages.success(request, f"Case {assignment.case_id} went back to the {assignment.case.queue.slug} queue.")
    return redirect("home")


@require_POST
@staff_required
def assignment_skip_view(request, assignment_id):
    assignment = _own_assignment(assignment_id)
    try:
        assignment_skip(assignment_id=assignment_id, reviewer=request.user)
    except DocketError as e:
        _refused(request, e)
        return redirect("home")
    messages.info(request, f"Skipped case {assignment.case_id}; it will not be served to you again for a while.")
    return _claim_next(request, assignment.case.queue.slug)


# --- the case page ----------------------------------------------------------------------

SIGNALS_SHOWN = 50
EVENTS_SHOWN = 200
LINKED_SHOWN = 20


@require_GET
@staff_required
def case_detail(request, case_id):
    user = request.user
    case = _visible_case(user, case_id, "subject__owner", "threat_class", "queue", "campaign")
    reviewer = _reviewer(user)
    now = timezone.now()

    assignments = list(case.assignments.select_related("reviewer__user").order_by("-claimed_at")[:10])
    active = next((a for a in assignments if a.state == "active"), None)
    mine = active is not None and reviewer is not None and active.reviewer_id == reviewer.pk
    # The reviewer's lease ran out while they were away: say so instead of a bare read-only page.
    lost = None
    if reviewer is not None and not mine:
        latest_mine = next((a for a in assignments if a.reviewer_id == reviewer.pk), None)
        if latest_mine is not None and latest_mine.state == "expired":
            lost = latest_mine

    signals = list(case.signals.select_related("source", "reporter").order_by("-occurred_at", "-id")[:SIGNALS_SHOWN])
    events = list(case.events.select_related("actor").order_by("-at", "-id")[:EVENTS_SHOWN])
    for event in events:
        event.summary = _event_summary(event)
    linked = _linked_cases(user, case)
    try:
        version = active_version_for(case.threat_class)
    except DocketError:
        version = None
    decisions = list(case.decisions.select_related("reviewer__user", "policy_version__policy"))
    recommended = recommended_action(case)
    hourly = list(
        case.signals.filter(occurred_at__gte=now - timedelta(hours=24))
        .annotate(hour=TruncHour("occurred_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .order_by("hour")
    )

    ladder = []
    if version is not None:
        for i, action in enumerate(version.ladder, 1):
            ladder.append({"value": action, "label": ACTION_LABELS.get(action, action), "key": i if i < 10 else None})

    # As of now (the aging and the breach move with time), from the stored rank and inputs.
    shown_priority, shown_breakdown = priority_shown(case, now)
    return render(
        request,
        "reviews/case.html",
        {
            "case": case,
            "reviewer": reviewer,
            "load": _reviewer_load(reviewer, now) if reviewer else None,
            "assignment": active,
            "mine": mine,
            "lost": lost,
            "signals": signals,
            "signals_more": max(case.signal_count - len(signals), 0),
            "events": events,
            "linked": linked,
            "version": version,
            "ladder": ladder,
            "decisions": decisions,
            "recommended": recommended,
            "recommended_label": ACTION_LABELS.get(recommended, recommended),
            "priority": shown_priority,
            "breakdown": _breakdown(shown_breakdown),
            "attributes": _attributes(case.subject.attributes),
            "velocity_chart": _sparkline(hourly, now),
            "sla_left": _duration((case.sla_due_at - now).total_seconds()) if case.sla_due_at > now else None,
            "sla_overdue": _duration((now - case.sla_due_at).total_seconds()) if case.sla_due_at <= now else None,
            "decision_form": DecisionForm(initial={"action": ""}),
            "note_form": NoteForm(),
            "escalate_form": EscalateForm(),
            "escalation_queues": ESCALATION_QUEUES,
            "is_senior": roles.has(user, roles.SENIOR),
        },
    )


def _linked_cases(user, case):
    """Other cases on the same subject, its owner account, or the owner's other content."""
    subject = case.subject
    account_id = subject.owner_id if subject.kind == "content" else subject.pk
    links = Q(subject_id=subject.pk)
    if account_id is not None:
        links |= Q(subject_id=account_id) | Q(subject__owner_id=account_id)
    return list(
        _cases(user)
        .filter(links)
        .exclude(pk=case.pk)
        .select_related("threat_class", "subject")
        .order_by("-created_at")[:LINKED_SHOWN]
    )


def _attributes(raw):
    if not isinstance(raw, dict):
        return []
    return [(k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in sorted(raw.items())]


def _breakdown(raw):
    """``{factor: value}`` as rows with a bar width relative to the largest factor."""
    if not isinstance(raw, dict):
        return []
    rows = []
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            rows.append({"factor": key.replace("_", " "), "value": value, "width": 0, "text": True})
            continue
        rows.append({"factor": key.replace("_", " "), "value": value, "width": 0, "text": False})
    numeric = [abs(r["value"]) for r in rows if not r["text"]]
    top = max(numeric, default=0) or 1
    for r in rows:
        if not r["text"]:
            r["width"] = round(100 * abs(r["value"]) / top)
    rows.sort(key=lambda r: (r["text"], -abs(r["value"]) if not r["text"] else 0))
    return rows


def _event_summary(event):
    d = event.detail or {}
    kind = event.kind
    if kind == "note":
        return "added a note"
    if kind in ("claimed", "assigned"):
        who = d.get("reviewer", "")
        return f"{kind} the case" if kind == "claimed" else f"assigned the case to {who}"
    if kind == "decided":
        text = f"decided: {ACTION_LABELS.get(d.get('action'), d.get('action'))}"
        return text + (f" under {d['rule']}" if d.get("rule") else "")
    if kind == "escalated":
        return f"escalated to {d.get('to_queue', '?')}"
    if kind == "lease_expired":
        return "lease expired; back to the queue"
    if kind in ("released", "skipped"):
        return f"{kind} the case back to the queue"
    text = kind.replace("_", " ")
    if d.get("to") and d.get("from"):
        text += f" ({d['from']} → {d['to']})"
    return text


# --- decisions, escalation, notes ------------------------------------------------------------


@require_POST
@staff_required
def case_decide(request, case_id):
    case = _visible_case(request.user, case_id, "queue")
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The decision was not recorded. " + form_errors(form))
        return redirect("case-detail", case_id=case.pk)
    data = form.cleaned_data
    try:
        decision_make(
            case_id=case.pk,
            reviewer=request.user,
            action=data["action"],
            rule=data["rule"],
            rationale=data["rationale"],
            duration_days=data["duration_days"],
        )
    except DocketError as e:
        _refused(request, e)
        return redirect("case-detail", case_id=case.pk)
    messages.success(request, f"Case {case.pk} decided: {ACTION_LABELS[data['action']]}.")
    return _claim_next(request, case.queue.slug)


@require_POST
@staff_required
def case_escalate_view(request, case_id):
    case = _visible_case(request.user, case_id, "queue")
    form = EscalateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The case was not escalated. " + form_errors(form))
        return redirect("case-detail", case_id=case.pk)
    try:
        case_escalate(
            case_id=case.pk,
            actor=request.user,
            queue_slug=form.cleaned_data["queue"],
            reason=form.cleaned_data["reason"],
        )
    except DocketError as e:
        _refused(request, e)
        return redirect("case-detail", case_id=case.pk)
    messages.success(request, f"Case {case.pk} escalated to {form.cleaned_data['queue']}.")
    if case.queue.slug in ESCALATION_QUEUES:
        return redirect("escalations")
    return _claim_next(request, case.queue.slug)


@require_POST
@staff_required
def case_note(request, case_id):
    case = _visible_case(request.user, case_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The note was not added. " + form_errors(form))
        return redirect("case-detail", case_id=case.pk)
    try:
        case_note_add(case_id=case.pk, actor=request.user, text=form.cleaned_data["text"])
    except DocketError as e:
        _refused(request, e)
        return redirect("case-detail", case_id=case.pk)
    messages.success(request, "Note added to the timeline.")
    return redirect(reverse("case-detail", kwargs={"case_id": case.pk}) + "#timeline")


@require_POST
@staff_required
def case_assign_view(request, case_id):
    case = _visible_case(request.user, case_id)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The case was not assigned. " + form_errors(form))
        return redirect("case-detail", case_id=case.pk)
    username = form.cleaned_data["reviewer"]
    back = redirect("escalations") if request.POST.get("back") == "escalations" else None
    try:
        case_assign(case_id=case.pk, reviewer_username=username, by=request.user)
    except DocketError as e:
        _refused(request, e)
        return back or redirect("case-detail", case_id=case.pk)
    messages.success(request, f"Case {case.pk} assigned to {username}.")
    if username == request.user.get_username():
        return redirect("case-detail", case_id=case.pk)
    return back or redirect("case-detail", case_id=case.pk)


# --- queue lists, campaigns and bulk decisions (seniors) -----------------------------------------

QUEUE_LIST_SHOWN = 100


def _visible_queue(user, slug):
    return visible_or_404(Queue.objects.prefetch_related("threat_classes"), user, slug=slug)


def _bulk_context(user, cases, *, action_url):
    """What the bulk-decision form needs: the rules of each class present, grouped."""
    classes = {c.threat_class_id: c.threat_class for c in cases}
    rule_groups = []
    for tc in sorted(classes.values(), key=lambda t: t.slug):
        try:
            version = active_version_for(tc)
        except DocketError:
            continue
        rule_groups.append({"threat_class": tc, "version": version, "rules": version.rules})
    return {
        "bulk_allowed": roles.has(user, roles.SENIOR),
        "bulk_url": action_url,
        "rule_groups": rule_groups,
        "ladder_all": [{"value": a, "label": ACTION_LABELS[a]} for a in LADDER],
    }


@require_GET
@staff_required
def queue_detail(request, slug):
    queue = _visible_queue(request.user, slug)
    cases = list(
        _cases(request.user)
        .filter(queue=queue, status__in=Case.ACTIVE_STATUSES)
        .select_related("threat_class", "subject", "campaign")
        .annotate(holder=Subquery(_holder_subquery()))
        .order_by(*BY_RANK)[:QUEUE_LIST_SHOWN]
    )
    context = {
        "queue": queue,
        "cases": _with_shown_priority(cases),
        "now": timezone.now(),
        "can_claim": queue.slug in claimable_queue_slugs(request.user),
    }
    context.update(_bulk_context(request.user, cases, action_url=reverse("queue-bulk", kwargs={"slug": slug})))
    return render(request, "reviews/queue.html", context)


def _with_shown_priority(cases):
    """Each case's priority as of now on ``shown_priority`` (the list tables show it)."""
    now = timezone.now()
    for case in cases:
        case.shown_priority = priority_shown(case, now)[0]
    return cases


def _holder_subquery():
    return Assignment.objects.filter(case_id=OuterRef("pk"), state="active").values("reviewer__user__username")[:1]


@require_GET
@staff_required
def campaign_detail(request, campaign_id):
    campaign = visible_or_404(Campaign.objects.select_related("threat_class"), user=request.user, pk=campaign_id)
    members = list(
        _cases(request.user)
        .filter(campaign=campaign)
        .select_related("threat_class", "subject", "queue")
        .annotate(holder=Subquery(_holder_subquery()))
        .order_by(*BY_RANK)
    )
    context = {"campaign": campaign, "cases": _with_shown_priority(members), "now": timezone.now()}
    context.update(
        _bulk_context(request.user, members, action_url=reverse("campaign-bulk", kwargs={"campaign_id": campaign.pk}))
    )
    return render(request, "reviews/campaign.html", context)


def _bulk_decide(request, cases_qs):
    """Apply one decision to each selected case through ``decision_make``; summarise what happened."""
    form = BulkDecisionForm(request.POST, cases=cases_qs)
    if not form.is_valid():
        messages.error(request, "Nothing was decided. " + form_errors(form))
        return
    data = form.cleaned_data
    done, refused = [], []
    for case in sorted(data["cases"], key=lambda c: c.pk):
        try:
            decision_make(
                case_id=case.pk,
                reviewer=request.user,
                action=data["action"],
                rule=data["rule"],
                rationale=data["rationale"],
                duration_days=data["duration_days"],
                on_behalf_of_senior=True,
            )
        except DocketError as e:
            refused.append(f"case {case.pk}: {e.detail}")
        else:
            done.append(case.pk)
    if done:
        _decided_message(request, data["action"], done)
    if refused:
        messages.error(request, f"{len(refused)} case(s) refused — " + "; ".join(refused))


def _decided_message(request, action, case_ids):
    messages.success(
        request, f"Decided {len(case_ids)} case(s) as {ACTION_LABELS[action]}: {', '.join(map(str, case_ids))}."
    )


@require_POST
@staff_required
def queue_bulk(request, slug):
    queue = _visible_queue(request.user, slug)
    _bulk_decide(request, _cases(request.user).filter(queue=queue))
    return redirect("queue-detail", slug=slug)


@require_POST
@staff_required
def campaign_bulk(request, campaign_id):
    """The campaign decision service (as the API's): the selected open members, all or nothing."""
    # A restricted campaign is as absent here as on its page: 404, not a refusal message that admits it exists.
    campaign = visible_or_404(Campaign.objects.all(), request.user, pk=campaign_id)
    form = BulkDecisionForm(request.POST, cases=_cases(request.user).filter(campaign=campaign))
    if not form.is_valid():
        messages.error(request, "Nothing was decided. " + form_errors(form))
        return redirect("campaign-detail", campaign_id=campaign.pk)
    data = form.cleaned_data
    try:
        decisions = campaign_decide(
            campaign_id=campaign.pk,
            actor=request.user,
            action=data["action"],
            rule=data["rule"],
            rationale=data["rationale"],
            duration_days=data["duration_days"],
            case_ids=[c.pk for c in data["cases"]],
        )
    except DocketError as e:
        if e.status == 404:
            raise Http404(e.detail) from None
        messages.error(request, f"Nothing was decided. {e.detail}")
    else:
        _decided_message(request, data["action"], [d.case_id for d in decisions])
    return redirect("campaign-detail", campaign_id=campaign.pk)


# --- escalations (seniors) ----------------------------------------------------------------------


@require_GET
@staff_required
def escalations(request):
    if not roles.has(request.user, roles.SENIOR):
        messages.error(request, "The escalations view is for seniors.")
        return redirect("home")
    reason = CaseEvent.objects.filter(case_id=OuterRef("pk"), kind="escalated").order_by("-at", "-id")
    cases = list(
        _cases(request.user)
        .filter(queue__slug__in=ESCALATION_QUEUES, status__in=Case.ACTIVE_STATUSES)
        .select_related("threat_class", "subject", "queue")
        .annotate(
            holder=Subquery(_holder_subquery()),
            reason=Subquery(reason.values("detail__reason")[:1]),
            escalated_by=Subquery(reason.values("actor_label")[:1]),
            from_queue=Subquery(reason.values("detail__from_queue")[:1]),
        )
        .order_by("queue__position", *BY_RANK)[:QUEUE_LIST_SHOWN]
    )
    claimable = claimable_queue_slugs(request.user)
    groups = [
        {"slug": slug, "cases": [c for c in cases if c.queue.slug == slug], "can_claim": slug in claimable}
        for slug in ESCALATION_QUEUES
    ]
    return render(request, "reviews/escalations.html", {"groups": groups, "now": timezone.now()})


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
    for c in classes:
        c["sla_pct"] = None if c.get("sla_compliance") is None else round(100 * c["sla_compliance"], 1)
        c["p50"] = _duration(c.get("time_to_action_p50_s"))
        c["p90"] = _duration(c.get("time_to_action_p90_s"))
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
            "generated_at": _parse_time(snapshot.get("generated_at")),
            "queues": queues,
            "classes": classes,
            "sources": sources,
            "incidents": sorted((s for s in sources if s.incident), key=lambda s: s.incident.opened_at, reverse=True),
            "failures": enforcement.get("recent_failures", []),
            "recent": recent,
            "totals": totals,
            "queue_chart": _queue_chart(queues),
            "sla_chart": _sla_chart(classes),
            "series_chart": _series_chart(snapshot.get("series", [])),
            "source_chart": _source_chart(sources),
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
            _refused(request, e)
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
def source_quarantine_view(request, slug):
    def act():
        source_quarantine(source_slug=slug, actor=request.user)
        return f"Quarantined: {slug}'s signals stay held, stored and out of the queue."

    return _source_action(request, slug, act)


# --- charts: inline SVG drawn on the server ------------------------------------------------------

BLUE, GREY, RED, GREEN, AMBER = "#1d5fbf", "#9aa6b6", "#a61b1b", "#1d6b34", "#b7791f"


def _join(parts):
    """Join already-escaped SVG fragments."""
    return format_html_join("", "{}", ((p,) for p in parts))


def _svg(width, height, body, title):
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="xMinYMin meet">'
        "<title>{}</title>{}</svg>",
        width,
        height,
        title,
        title,
        body,
    )


def _nice(value):
    """A round axis maximum at or above ``value`` (4, 8, 10, 20, 50, 100, ...), so ticks are whole."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _hbars(rows, *, title, width=640, label_w=170, note_w=90, value_fmt=None, max_value=None, marker=None):
    """Horizontal stacked bars: ``rows`` are ``(label, [(value, colour)], note)``."""
    bar_h, gap, top = 18, 10, 8
    height = top + len(rows) * (bar_h + gap) + 22
    plot_w = width - label_w - note_w
    top_value = max_value or _nice(max((sum(v for v, _ in segs) for _, segs, _ in rows), default=0))
    value_fmt = value_fmt or (lambda v: f"{v:g}")
    parts = []
    for i in range(5):
        x = label_w + plot_w * i / 4
        parts.append(format_html('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>', x, top, x, height - 20))
        parts.append(
            format_html(
                '<text class="muted" x="{}" y="{}" text-anchor="middle">{}</text>',
                x,
                height - 6,
                value_fmt(top_value * i / 4),
            )
        )
    if marker is not None:
        x = label_w + plot_w * min(marker / top_value, 1)
        parts.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2" stroke-dasharray="4 3"/>',
                x,
                top - 4,
                x,
                height - 20,
                GREEN,
            )
        )
    for i, (label, segs, note) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', label_w - 8, y + bar_h - 4, label))
        x = label_w
        for value, colour in segs:
            w = plot_w * min(value / top_value, 1) if value else 0
            if w:
                parts.append(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" rx="2"/>',
                        x,
                        y,
                        round(w, 1),
                        bar_h,
                        colour,
                    )
                )
            x += w
        parts.append(format_html('<text x="{}" y="{}">{}</text>', x + 6, y + bar_h - 4, note))
    return _svg(width, height, _join(parts), title)


def _queue_chart(queues):
    rows = []
    for q in queues:
        note = f"{q.get('depth') or 0} waiting, {q.get('in_review') or 0} in review"
        if q.get("breaching"):
            note += f", {q['breaching']} late"
        breaching = min(q.get("breaching") or 0, q.get("depth") or 0)
        rows.append(
            (
                q.get("name") or q.get("slug"),
                [(breaching, RED), ((q.get("depth") or 0) - breaching, BLUE), (q.get("in_review") or 0, GREY)],
                note,
            )
        )
    return _hbars(rows, title="Queue depth: past SLA, waiting and in review", width=760, label_w=230, note_w=190)


def _sla_chart(classes):
    rows = []
    for c in classes:
        pct = c.get("sla_pct")
        colour = GREEN if pct is not None and pct >= 95 else AMBER if pct is not None and pct >= 80 else RED
        rows.append((c["slug"], [(pct or 0, colour)], "no decisions yet" if pct is None else f"{pct}%"))
    return _hbars(
        rows,
        title="SLA compliance by threat class (target 95%)",
        max_value=100,
        marker=95,
        value_fmt=lambda v: f"{v:.0f}%",
    )


def _source_chart(sources):
    rows = []
    for s in sources:
        current = s.current_rate or 0
        baseline = s.baseline_rate
        colour = {"healthy": BLUE, "suspect": AMBER, "quarantined": RED}.get(s.status, GREY)
        note = (
            f"{current:.1f}/h"
            + (f" (baseline {baseline:.1f}/h)" if baseline is not None else "")
            + f" · {s.status}"
            + (f", {s.held} held" if s.held else "")
        )
        rows.append((s.slug, [(current, colour)], note))
    return _hbars(rows, title="Signal rate by source, last hour", width=760, label_w=170, note_w=230)


def _series_chart(series):
    """Columns per day: cases created, the part acted on within SLA in green, late in amber."""
    top = _nice(max((d.get("created", 0) for d in series), default=0))
    width, height, left, bottom = 720, 190, 40, 24
    plot_h = height - bottom - 10
    col_w = (width - left - 10) / max(len(series), 1)
    parts = []
    for i in range(3):
        y = 10 + plot_h * i / 2
        parts.append(format_html('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>', left, y, width - 10, y))
        parts.append(
            format_html(
                '<text class="muted" x="{}" y="{}" text-anchor="end">{}</text>',
                left - 4,
                y + 4,
                round(top * (1 - i / 2)),
            )
        )
    for i, day in enumerate(series):
        created, acted, met = day.get("created", 0), day.get("acted", 0), day.get("within_sla", 0)
        x = left + i * col_w + 3
        y = 10 + plot_h
        for value, colour in ((met, GREEN), (acted - met, AMBER), (created - acted, GREY)):
            if value > 0:
                bar = plot_h * value / top
                y -= bar
                parts.append(
                    format_html(
                        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                        round(x, 1),
                        round(y, 1),
                        round(col_w - 6, 1),
                        round(bar, 1),
                        colour,
                    )
                )
        parts.append(
            format_html(
                '<rect x="{}" y="10" width="{}" height="{}" fill="transparent">'
                "<title>{}: {} created, {} acted, {} within SLA</title></rect>",
                round(x, 1),
                round(col_w - 6, 1),
                plot_h,
                day.get("date"),
                created,
                acted,
                met,
            )
        )
        if i % 2 == 0:
            parts.append(
                format_html(
                    '<text class="muted" x="{}" y="{}" text-anchor="middle">{}</text>',
                    round(x + (col_w - 6) / 2, 1),
                    height - 6,
                    (day.get("date") or "")[5:],
                )
            )
    return _svg(width, height, _join(parts), "Cases created per day, and how many were acted on within SLA")


def _sparkline(hourly, now):
    """Signals on this case per hour over the last 24 hours, as a small column chart."""
    counts = {row["hour"]: row["n"] for row in hourly}
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    values = [counts.get(start + timedelta(hours=i), 0) for i in range(24)]
    top = max(values) or 1
    width, height = 240, 40
    col = width / 24
    body = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#5b7db1"/>',
        (
            (
                round(i * col + 1, 1),
                round(height - 2 - (height - 4) * v / top, 1),
                round(col - 2, 1),
                round((height - 4) * v / top, 1),
            )
            for i, v in enumerate(values)
            if v
        ),
    )
    body = format_html('<line x1="0" y1="{}" x2="{}" y2="{}" class="axis"/>{}', height - 1, width, height - 1, body)
    return _svg(width, height, body, f"Signals per hour, last 24 hours: peak {max(values)}")
