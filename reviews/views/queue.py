"""The moderator's queues: home (my queues, capacity, exposure), claims and leases, a queue's list."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from docket import roles
from docket.errors import DocketError
from docket.views import landing
from policies.models import ThreatClass
from reviews.models import Assignment
from reviews.selectors import assignments_held, claimable_queue_slugs, queues_overview, reviewer_load
from reviews.services import assignment_release, assignment_renew, assignment_skip

from .bulk import queue_page, visible_queue
from .common import claim_next, duration, refused, reviewer_for, staff_required

# --- home: my queues, capacity, exposure -----------------------------------------------


@require_GET
@login_required
def home(request):
    if not roles.has_any(request.user, (roles.MODERATOR, roles.SENIOR)):
        # Appeals staff, policy admins, the superuser, platform accounts: their own start page, not a 403.
        return landing(request)
    reviewer = reviewer_for(request.user)
    overview = queues_overview(request.user)
    own_slugs = set()
    load = None
    my_cases = []
    clearances = []
    if reviewer is not None:
        own_slugs = claimable_queue_slugs(request.user)
        load = reviewer_load(reviewer)
        my_cases = list(assignments_held(reviewer))
        if reviewer.clearances:  # shown by the classes' names
            clearances = list(
                ThreatClass.objects.filter(slug__in=reviewer.clearances).order_by("name").values_list("name", flat=True)
            )
    queues = []
    for row in overview:
        row = dict(row)
        row["mine"] = row["slug"] in own_slugs
        row["oldest_wait"] = duration(row.get("oldest_wait_seconds"))
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
            "clearances": clearances,
            "shortcut_queue": shortcut_queue,
        },
    )


@require_POST
@staff_required
def queue_claim_view(request, slug):
    return claim_next(request, slug)


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
        refused(request, e)
        return redirect("reviews:home")
    messages.success(request, f"Case {assignment.case_id} went back to the {assignment.case.queue.name} queue.")
    return redirect("reviews:home")


@require_POST
@staff_required
def assignment_skip_view(request, assignment_id):
    assignment = _own_assignment(assignment_id)
    try:
        assignment_skip(assignment_id=assignment_id, reviewer=request.user)
    except DocketError as e:
        refused(request, e)
        return redirect("reviews:home")
    messages.info(request, f"Skipped case {assignment.case_id}; it will not be served to you again for a while.")
    return claim_next(request, assignment.case.queue.slug)


@require_GET
@staff_required
def queue_detail(request, slug):
    return queue_page(request, visible_queue(request.user, slug))
