"""The case page and what a reviewer does from it: decide, escalate, note, assign."""

from datetime import timedelta

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from casework.models import Campaign
from casework.priority import FACTORS, priority_explain, priority_shown
from casework.selectors import case_in_context, case_signals_shown, recommended_action, reporter_records, subject_facts
from casework.services import ESCALATION_QUEUES, case_note_add
from docket import roles
from docket.audit import access_log_case_read
from docket.errors import DocketError
from reviews.forms import AssignForm, DecisionForm, EscalateForm, NoteForm, form_errors
from reviews.selectors import (
    account_record,
    case_decisions_shown,
    case_signals_by_hour,
    cases_linked,
    reviewer_load,
)
from reviews.services import active_version_for, case_assign, case_escalate, decision_make

from .charts import sparkline
from .common import (
    ACTION_LABELS,
    claim_next,
    decision_fields,
    duration,
    link_maker,
    refused,
    reviewer_for,
    staff_required,
    visible_case,
)
from .timeline import events_told

# --- the case page ----------------------------------------------------------------------


EVENTS_SHOWN = 200
LINKED_SHOWN = 20


@require_GET
@staff_required
def case_detail(request, case_id):
    return _case_page(request, case_id)


def _case_page(request, case_id, *, forms=None, status=200):
    """The case page; ``forms`` replaces the decision, note or escalation form with a bound, refused one.

    A refused form is shown again with everything the user entered and the
    reason beside its field, never a redirect to a fresh form.
    """
    user = request.user
    reviewer = reviewer_for(user)  # first: its clearances serve the visibility checks below
    # (The campaign is read below as the user may know it, not through the case.)
    case = case_in_context(user=user, case_id=case_id)
    if case is None:  # a hidden case answers exactly like a missing one
        raise Http404("No such case.")
    if request.method == "GET":
        # A refused form shown again repeats the page the reviewer opened (and that read was logged).
        access_log_case_read(user=user, case=case, via="ui")
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

    signals, signals_more = case_signals_shown(case)
    # Each reporter's record over the classes the user may see (a restricted decision tells nothing).
    records = reporter_records(user=user, reporter_ids=[s.reporter_id for s in signals])
    for signal in signals:
        signal.reporter_record = records.get(signal.reporter_id)
    # A decision under a blind second review the user may do is left out, with its events.
    decisions, hidden = case_decisions_shown(user, case)
    events = case.events.order_by("-at", "-id")  # the timeline tells the actor by its stored label
    if hidden:
        events = events.exclude(detail__decision__in=hidden)
    events = list(events[:EVENTS_SHOWN])
    events_told(events)
    linked = cases_linked(user, case, limit=LINKED_SHOWN)
    case_url = link_maker("reviews:case", "case_id")
    for other in linked:
        other.url = case_url(other.pk)
    # The case's campaign as the user may know it (a campaign of a class hidden from them is not named).
    campaign = (
        Campaign.objects.visible_to(user).with_visible_figures(user).filter(pk=case.campaign_id).first()
        if case.campaign_id
        else None
    )
    try:
        version = active_version_for(case.threat_class)
    except DocketError:
        version = None
    # The account's active strikes the user may see, newest first: the latest one's action is what the
    # recommendation steps up from (the same strikes ``strike_actions`` would read again).
    record = account_record(user=user, case=case, now=now)
    for prior in record["decisions"]:
        prior.case_url = case_url(prior.case_id)
    latest = {record["account"].pk: record["strikes"][0].decision.action} if record["strikes"] else {}
    recommended = recommended_action(
        case, user=user, now=now, versions={case.threat_class_id: version}, last_actions=latest
    )
    hourly = case_signals_by_hour(case, since=now - timedelta(hours=24))

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
            "load": reviewer_load(reviewer, now) if reviewer else None,
            "assignment": active,
            "mine": mine,
            "lost": lost,
            "signals": signals,
            "signals_more": signals_more,
            "events": events,
            "linked": linked,
            "campaign": campaign,
            "record": record,
            "version": version,
            "ladder": ladder,
            "decisions": decisions,
            "recommended": recommended,
            "recommended_label": ACTION_LABELS.get(recommended, recommended),
            "priority": shown_priority,
            "breakdown": _breakdown(shown_breakdown),
            "attributes": _attributes(subject_facts(user=user, subjects=[case.subject])[case.subject.pk]["attributes"]),
            "velocity_chart": sparkline(hourly, now),
            "sla_left": duration((case.sla_due_at - now).total_seconds()) if case.sla_due_at > now else None,
            "sla_overdue": duration((now - case.sla_due_at).total_seconds()) if case.sla_due_at <= now else None,
            "why": priority_explain(shown_breakdown),
            "decision_form": DecisionForm(initial={"action": ""}),
            "note_form": NoteForm(),
            "escalate_form": EscalateForm(),
            "escalation_queues": ESCALATION_QUEUES,
            "is_senior": roles.has(user, roles.SENIOR),
            **(forms or {}),
        },
        status=status,
    )


def _refused_on_form(request, form, error):
    """A service refusal put beside the field it concerns (its ``errors``, or the action for a ladder refusal)."""
    if error.status == 404:
        raise Http404(error.detail)
    messages.error(request, error.detail)
    fields = (error.errors or {}).keys() & form.fields.keys()
    for field in fields:
        for problem in error.errors[field]:
            form.add_error(field, problem)
    if error.code == "action_not_allowed" and "action" in form.fields:
        form.add_error("action", error.detail)
    elif not fields:
        form.add_error(None, error.detail)
    return form


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
            rows.append({**_factor(key), "value": value, "width": 0, "text": True})
            continue
        rows.append({**_factor(key), "value": value, "width": 0, "text": False})
    numeric = [abs(r["value"]) for r in rows if not r["text"]]
    top = max(numeric, default=0) or 1
    for r in rows:
        if not r["text"]:
            r["width"] = round(100 * abs(r["value"]) / top)
    rows.sort(key=lambda r: (r["text"], -abs(r["value"]) if not r["text"] else 0))
    return rows


def _factor(key):
    label, meaning = FACTORS.get(key, (key.replace("_", " "), ""))
    return {"factor": label, "meaning": meaning}


# --- decisions, escalation, notes ------------------------------------------------------------


@require_POST
@staff_required
def case_decide(request, case_id):
    reviewer_for(request.user)  # the profile the decision and the next claim read, and the clearances
    case = visible_case(request.user, case_id, "queue")
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The decision was not recorded. " + form_errors(form))
        return _case_page(request, case.pk, forms={"decision_form": form}, status=400)
    data = form.cleaned_data
    try:
        decision_make(
            case_id=case.pk,
            reviewer=request.user,
            **decision_fields(data),
            public_explanation=data["public_explanation"],
        )
    except DocketError as e:
        _refused_on_form(request, form, e)
        return _case_page(request, case.pk, forms={"decision_form": form}, status=e.status)
    messages.success(request, f"Case {case.pk} decided: {ACTION_LABELS[data['action']]}.")
    return claim_next(request, case.queue.slug)


@require_POST
@staff_required
def case_escalate_view(request, case_id):
    case = visible_case(request.user, case_id, "queue")
    form = EscalateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The case was not escalated. " + form_errors(form))
        return _case_page(request, case.pk, forms={"escalate_form": form}, status=400)
    try:
        case_escalate(
            case_id=case.pk,
            actor=request.user,
            queue_slug=form.cleaned_data["queue"],
            reason=form.cleaned_data["reason"],
        )
    except DocketError as e:
        _refused_on_form(request, form, e)
        return _case_page(request, case.pk, forms={"escalate_form": form}, status=e.status)
    messages.success(request, f"Case {case.pk} escalated to {form.cleaned_data['queue']}.")
    if case.queue.slug in ESCALATION_QUEUES:
        return redirect("reviews:escalations")
    return claim_next(request, case.queue.slug)


@require_POST
@staff_required
def case_note(request, case_id):
    case = visible_case(request.user, case_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The note was not added. " + form_errors(form))
        return _case_page(request, case.pk, forms={"note_form": form}, status=400)
    try:
        case_note_add(case_id=case.pk, actor=request.user, text=form.cleaned_data["text"])
    except DocketError as e:
        _refused_on_form(request, form, e)
        return _case_page(request, case.pk, forms={"note_form": form}, status=e.status)
    messages.success(request, "Note added to the timeline.")
    return redirect(reverse("reviews:case", kwargs={"case_id": case.pk}) + "#timeline")


@require_POST
@staff_required
def case_assign_view(request, case_id):
    case = visible_case(request.user, case_id)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The case was not assigned. " + form_errors(form))
        return redirect("reviews:case", case_id=case.pk)
    username = form.cleaned_data["reviewer"]
    back = redirect("reviews:escalations") if request.POST.get("back") == "escalations" else None
    try:
        case_assign(case_id=case.pk, reviewer_username=username, by=request.user)
    except DocketError as e:
        refused(request, e)
        return back or redirect("reviews:case", case_id=case.pk)
    messages.success(request, f"Case {case.pk} assigned to {username}.")
    if username == request.user.get_username():
        return redirect("reviews:case", case_id=case.pk)
    return back or redirect("reviews:case", case_id=case.pk)
