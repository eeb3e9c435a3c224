"""The seniors' escalations view: what was escalated, from where, by whom and why."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from casework.services import ESCALATION_QUEUES
from docket import roles
from reviews.selectors import claimable_queue_slugs, escalated_cases, queue_names

from .bulk import QUEUE_LIST_SHOWN
from .common import staff_required


@require_GET
@staff_required
def escalations(request):
    if not roles.has(request.user, roles.SENIOR):
        messages.error(request, "The escalations view is for seniors.")
        return redirect("reviews:home")
    cases = escalated_cases(request.user, limit=QUEUE_LIST_SHOWN)
    claimable = claimable_queue_slugs(request.user)
    names = queue_names()
    for case in cases:
        case.from_queue_name = names.get(case.from_queue, case.from_queue)
    groups = [
        {
            "slug": slug,
            "name": names.get(slug, slug),
            "cases": [c for c in cases if c.queue.slug == slug],
            "can_claim": slug in claimable,
        }
        for slug in ESCALATION_QUEUES
    ]
    return render(request, "reviews/escalations.html", {"groups": groups, "now": timezone.now()})
