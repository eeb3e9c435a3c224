"""What every moderator page shares: access, the visibility helpers, refusals as messages, claim-and-go."""

from datetime import datetime

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from casework.models import Case, Queue
from casework.priority import priority_shown
from docket import roles
from docket.errors import DocketError
from docket.visibility import restrict, visible_or_404
from policies.models import Action
from reviews.services import queue_claim

ACTION_LABELS = dict(Action.choices)

# Signed-in staff (moderators, seniors, appeals, policy admins); others get 403.
staff_required = roles.role_required(*roles.STAFF)


def reviewer_for(user):
    """The user's reviewer profile (None without one), kept on the user: the services this request calls
    read it there, and its clearances answer the request's visibility checks (``reviews.identity``)."""
    return getattr(user, "reviewer", None)


def cases_for(user):
    """Cases this user may see: the one visibility rule, applied to every read here."""
    return restrict(Case.objects.all(), user)


def visible_case(user, case_id, *related):
    return visible_or_404(Case.objects.select_related(*related), user, pk=case_id)


def refused(request, error):
    """Show a service refusal as a message; a 404 refusal stays a 404 (no hint that it exists)."""
    if error.status == 404:
        raise Http404(error.detail)
    messages.error(request, error.detail)


def claim_next(request, queue_slug):
    """Claim the next case of the queue and go to it; home with a message when none or refused."""
    try:
        assignment = queue_claim(reviewer=request.user, queue_slug=queue_slug)
    except DocketError as e:
        if e.status == 404:
            raise Http404(e.detail) from None
        messages.error(request, e.detail)
        return redirect("reviews:home")
    if assignment is None:
        name = Queue.objects.filter(slug=queue_slug).values_list("name", flat=True).first() or queue_slug
        messages.info(request, f"The {name} queue has no case for you right now.")
        return redirect("reviews:home")
    return redirect("reviews:case", case_id=assignment.case_id)


def parse_time(value):
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def duration(seconds):
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


def drain_forecast(queue_row):
    """A queue's drain forecast in words (``queues_overview``'s ``drain_state`` and hours)."""
    if queue_row.get("drain_state") == "growing":
        return "growing"
    hours = queue_row.get("forecast_drain_hours")
    if hours is None:
        return "no decisions lately"
    return f"drains in {hours:.1f} h"


# An id no row has, reversed once in place of each row's: the rest of the path is the same for every row.
_ROW_ID = 9_876_543_210


def link_maker(viewname, kwarg):
    """``reverse(viewname, kwargs={kwarg: id})`` for any id at the cost of one reverse.

    A list page's row links: a ``{% url %}`` per row was a fifth of the appeals queue's template time.
    """
    head, tail = reverse(viewname, kwargs={kwarg: _ROW_ID}).split(str(_ROW_ID))
    return lambda pk: f"{head}{int(pk)}{tail}"


def as_listed(cases):
    """Each case as the list tables show it: its priority as of now (``shown_priority``) and the link to its page
    (``url``)."""
    now = timezone.now()
    case_url = link_maker("reviews:case", "case_id")
    for case in cases:
        case.shown_priority = priority_shown(case, now)[0]
        case.url = case_url(case.pk)
    return cases


def decision_fields(cleaned):
    """What a decision form hands the decision services: action, rule, rationale, duration."""
    return {name: cleaned[name] for name in ("action", "rule", "rationale", "duration_days")}
