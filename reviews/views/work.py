"""Pages for reviewer work that had only an API: blind QA reviews, relabels, my decisions, campaigns.

Thin views over the same services and selectors as the API. A refused
submission re-renders its form with the choice kept and the service's
reason beside the field; nothing is written.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from casework.models import Campaign, Case
from casework.selectors import campaign_links_visible
from docket import roles
from docket.errors import DocketError
from policies.models import Action

from ..forms import SecondReviewForm
from ..models import QualityReview, Reviewer
from ..selectors import decisions_visible_to, quality_reviews_pending, relabel_items_for
from ..services import quality_review_complete, relabel_item_complete

ACTION_LABELS = dict(Action.choices)
SIGNALS_SHOWN = 20
PAGE_SIZE = 50

case_workers = roles.role_required(roles.MODERATOR, roles.SENIOR)
reviewers = roles.role_required(*roles.REVIEWING)
staff_required = roles.role_required(*roles.STAFF)


def _reviewer(user):
    reviewer = Reviewer.objects.filter(user=user).first()
    if reviewer is None:
        raise Http404("You have no reviewer profile.")
    return reviewer


def _page(request, items):
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def _case_evidence(case):
    """What a blind reviewer reads: the case and its signals, never the decision under review."""
    return list(case.signals.select_related("source").order_by("-occurred_at", "-id")[:SIGNALS_SHOWN])


def _refusal_to_form(form, error):
    """Put a service refusal beside the field it concerns (``errors`` or the code), else on the form."""
    fields = (error.errors or {}).keys() & form.fields.keys()
    if fields:
        for field in fields:
            for problem in error.errors[field]:
                form.add_error(field, problem)
    elif error.code == "action_not_allowed":
        form.add_error("action", error.detail)
    else:
        form.add_error(None, error.detail)


# --- QA: blind second reviews ------------------------------------------------------------------------


@require_GET
@case_workers
def qa_list(request):
    reviewer = _reviewer(request.user)
    pending = quality_reviews_pending(reviewer).select_related(
        "decision__case__threat_class", "decision__case__subject"
    )
    return render(request, "reviews/qa_list.html", {"page": _page(request, pending)})


@require_http_methods(["GET", "POST"])
@case_workers
def qa_detail(request, review_id):
    reviewer = _reviewer(request.user)
    review = (
        QualityReview.objects.filter(pk=review_id, decision__case__in=Case.objects.visible_to(request.user))
        .select_related("decision__policy_version__policy", "decision__case__threat_class", "decision__case__subject")
        .first()
    )
    if review is None:
        raise Http404("No such quality review.")
    return _second_review(
        request,
        kind="QA review",
        item=review,
        version=review.decision.policy_version,
        reviewer=reviewer,
        complete=lambda action, rule: quality_review_complete(
            review_id=review.pk, reviewer=request.user, action=action, rule=rule
        ),
        done=f"Second review of case {review.decision.case_id} recorded.",
        back="reviews:qa-reviews",
    )


# --- relabels under a new policy version ------------------------------------------------------------------


@require_GET
@reviewers
def relabel_list(request):
    pending = relabel_items_for(request.user).filter(status="pending").order_by("created_at", "id")
    return render(request, "reviews/relabel_list.html", {"page": _page(request, pending)})


@require_http_methods(["GET", "POST"])
@reviewers
def relabel_detail(request, item_id):
    reviewer = _reviewer(request.user)
    item = relabel_items_for(request.user).filter(pk=item_id).first()
    if item is None:
        raise Http404("No such relabel item.")
    return _second_review(
        request,
        kind="Relabel",
        item=item,
        version=item.policy_version,
        reviewer=reviewer,
        complete=lambda action, rule: relabel_item_complete(
            item_id=item.pk, reviewer=reviewer, action=action, rule=rule
        ),
        done=f"Relabel of case {item.decision.case_id} recorded.",
        back="reviews:relabel-items",
    )


def _second_review(request, *, kind, item, version, reviewer, complete, done, back):
    """The blind second-review page (QA or relabel): the form, its refusal kept beside the field, or done."""
    form = SecondReviewForm(request.POST or None, version=version)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            complete(form.cleaned_data["action"], form.cleaned_data["rule"])
        except DocketError as e:
            if e.status == 404:
                raise Http404(e.detail) from None
            _refusal_to_form(form, e)
            status = e.status
        else:
            messages.success(request, done)
            return redirect(back)
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "reviews/second_review.html",
        {
            "kind": kind,
            "item": item,
            "case": item.decision.case,
            "signals": _case_evidence(item.decision.case),
            "version": version,
            "form": form,
            "own": item.decision.reviewer_id == reviewer.pk,
            "done": item.status != "pending",
            "back": back,
        },
        status=status,
    )


# --- my recent decisions -----------------------------------------------------------------------------------


@require_GET
@case_workers
def my_decisions(request):
    decisions = decisions_visible_to(request.user).filter(reviewer__user=request.user).order_by("-created_at", "-id")
    page = _page(request, decisions)
    for d in page:
        d.action_label = ACTION_LABELS.get(d.action, d.action)
    return render(request, "reviews/my_decisions.html", {"page": page})


# --- campaigns -------------------------------------------------------------------------------------------------


@require_GET
@staff_required
def campaigns_index(request):
    status = request.GET.get("status") or "open"
    campaigns = (
        Campaign.objects.visible_to(request.user)
        .select_related("threat_class")
        .with_visible_figures(request.user)
        .order_by("-detected_at", "-id")
    )
    if status != "all":
        campaigns = campaigns.filter(status=status)
    page = _page(request, campaigns)
    campaign_links_visible(request.user, page)
    return render(
        request,
        "reviews/campaigns.html",
        {"page": page, "status": status, "statuses": ["open", "decided", "dismissed", "all"]},
    )
