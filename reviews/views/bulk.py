"""Decisions on many cases at once (seniors): a queue's selected cases, and a campaign's (the campaign service)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from casework.models import Campaign, Case, Queue
from casework.selectors import campaign_links_visible
from docket import roles
from docket.errors import DocketError
from docket.visibility import visible_or_404
from policies.models import LADDER
from reviews.forms import BulkDecisionForm, QueueFilterForm, form_errors
from reviews.selectors import campaign_members, claimable_queue_slugs, queue_filter_classes, queue_listing
from reviews.services import active_version_for, campaign_decide, campaign_dismiss, decisions_bulk

from .common import ACTION_LABELS, as_listed, cases_for, decision_fields, staff_required

QUEUE_LIST_SHOWN = 100


def visible_queue(user, slug):
    return visible_or_404(Queue.objects.prefetch_related("threat_classes"), user, slug=slug)


def _rule_group(threat_class):
    """The rules of a class's active policy version, or None when the class has none active."""
    try:
        version = active_version_for(threat_class)
    except DocketError:
        return None
    return {"threat_class": threat_class, "version": version, "rules": version.rules}


def bulk_context(user, cases, *, action_url):
    """What the bulk-decision form needs: the rules of each class present, grouped."""
    classes = {c.threat_class_id: c.threat_class for c in cases}
    groups = (_rule_group(tc) for tc in sorted(classes.values(), key=lambda t: t.slug))
    return {
        "bulk_allowed": roles.has(user, roles.SENIOR),
        "bulk_url": action_url,
        "rule_groups": [g for g in groups if g is not None],
        "ladder_all": [{"value": a, "label": ACTION_LABELS[a]} for a in LADDER],
    }


def visible_campaign(user, campaign_id):
    """The campaign with its size, open members and links over what ``user`` may see; 404 when hidden."""
    campaign = visible_or_404(
        Campaign.objects.select_related("threat_class").with_visible_figures(user), user, pk=campaign_id
    )
    return campaign_links_visible(user, [campaign])[0]


def campaign_context(user, campaign):
    """The campaign page: its open members are selectable; decided ones are listed apart.

    The decision form offers only the campaign's class's ladder (its active policy
    version's actions), the one the campaign service checks every member against.
    """
    members = as_listed(campaign_members(user, campaign))
    group = _rule_group(campaign.threat_class)
    return {
        "campaign": campaign,
        "cases": [c for c in members if c.status in Case.ACTIVE_STATUSES],
        "decided_cases": [c for c in members if c.status not in Case.ACTIVE_STATUSES],
        "now": timezone.now(),
        # Once the members a senior may see are dismissed, what is left is for one cleared for it.
        "can_dismiss": campaign.status == Campaign.Status.OPEN
        and roles.has(user, roles.SENIOR)
        and bool(members or campaign.visible_size),
        "bulk_allowed": roles.has(user, roles.SENIOR),
        "bulk_url": reverse("reviews:campaign-bulk", kwargs={"campaign_id": campaign.pk}),
        "rule_groups": [group] if group else [],
        "ladder_all": [{"value": a, "label": ACTION_LABELS[a]} for a in group["version"].ladder] if group else [],
    }


def kept_input(post, *, selected=None):
    """What the senior entered in a refused bulk form, to put back on the page as it was."""
    if selected is None:
        selected = post.getlist("cases")
    return {
        "selected": {int(v) for v in selected if str(v).isdigit()},
        "action": post.get("action", ""),
        "rule": post.get("rule", ""),
        "duration_days": post.get("duration_days", ""),
        "rationale": post.get("rationale", ""),
    }


def queue_page(request, queue, *, kept=None, status=200):
    """A queue's page of cases, filtered and sorted as the query asks, with the bulk form (filled back in with
    ``kept`` after a refusal). A bad filter is a form error on the page (400), with the input kept."""
    form = QueueFilterForm(
        request.GET,
        classes=list(queue_filter_classes(request.user, queue)),
        campaigns=Campaign.objects.visible_to(request.user),
    )
    listing = queue_listing(request.user, queue, **form.listing_arguments()) if form.is_valid() else None
    if listing is None and status == 200:
        status = 400
    query = form.link_query() if listing else ""
    cases = as_listed(listing.cases) if listing else []
    bulk_url = reverse("reviews:queue-bulk", kwargs={"slug": queue.slug})
    if listing:
        bulk_url += "?" + "&".join(filter(None, (query, f"page={listing.number}")))
    context = {
        "queue": queue,
        "form": form,
        "listing": listing,
        "query": query,
        "filtered": bool(listing) and form.is_filtered(),
        "cases": cases,
        "now": timezone.now(),
        "can_claim": queue.slug in claimable_queue_slugs(request.user),
        "kept": kept or {"selected": ()},
    }
    context.update(bulk_context(request.user, cases, action_url=bulk_url))
    return render(request, "reviews/queue.html", context, status=status)


def campaign_page(request, campaign, *, kept=None, status=200):
    context = campaign_context(request.user, campaign)
    context["kept"] = kept or {"selected": ()}
    return render(request, "reviews/campaign.html", context, status=status)


@require_GET
@staff_required
def campaign_detail(request, campaign_id):
    return campaign_page(request, visible_campaign(request.user, campaign_id))


def _bulk_decide(request, cases_qs):
    """Apply one decision to each selected case through ``decisions_bulk``; summarise what happened.

    Answers the refused case ids (all the selected ones when the form itself is refused), the
    decided ones, and the refusals' status (400 for the form, else theirs when they all agree).
    """
    form = BulkDecisionForm(request.POST, cases=cases_qs)
    if not form.is_valid():
        messages.error(request, "Nothing was decided. " + form_errors(form))
        return request.POST.getlist("cases"), [], 400
    data = form.cleaned_data
    case_ids = sorted(c.pk for c in data["cases"])
    try:
        decisions, errors = decisions_bulk(
            case_ids=case_ids,
            reviewer=request.user,
            public_explanation=data["public_explanation"],
            **decision_fields(data),
        )
    except DocketError as e:  # refused for every case (who decides, or the batch as a whole)
        decisions, errors = [], dict.fromkeys(case_ids, e)
    done = [d.case_id for d in decisions]
    refused = [f"case {case_id}: {e.detail}" for case_id, e in errors.items()]
    refused_ids = list(errors)
    statuses = {e.status for e in errors.values()}
    if done:
        _decided_message(request, data["action"], done)
    if refused:
        messages.error(request, f"{len(refused)} case(s) refused — " + "; ".join(refused))
    return refused_ids, done, statuses.pop() if len(statuses) == 1 else 400


def _decided_message(request, action, case_ids):
    messages.success(
        request, f"Decided {len(case_ids)} case(s) as {ACTION_LABELS[action]}: {', '.join(map(str, case_ids))}."
    )


def _same_query(request):
    return "?" + request.GET.urlencode() if request.GET else ""


@require_POST
@staff_required
def queue_bulk(request, slug):
    queue = visible_queue(request.user, slug)
    refused_ids, done, status = _bulk_decide(request, cases_for(request.user).filter(queue=queue))
    if refused_ids:
        # The page again, the refused cases still ticked and the decision as entered, beside the reason.
        kept = kept_input(request.POST, selected=refused_ids)
        return queue_page(request, queue, kept=kept, status=200 if done else status)
    # Back to the page the senior was on, with its filters (the form's action carries them).
    return redirect(reverse("reviews:queue", kwargs={"slug": slug}) + _same_query(request))


@require_POST
@staff_required
def campaign_bulk(request, campaign_id):
    """The campaign decision service (as the API's): the selected open members, all or nothing."""
    # A restricted campaign is as absent here as on its page: 404, not a refusal message that admits it exists.
    campaign = visible_campaign(request.user, campaign_id)
    form = BulkDecisionForm(request.POST, cases=cases_for(request.user).filter(campaign=campaign))
    if not form.is_valid():
        messages.error(request, "Nothing was decided. " + form_errors(form))
        return campaign_page(request, campaign, kept=kept_input(request.POST), status=400)
    data = form.cleaned_data
    try:
        decisions = campaign_decide(
            campaign_id=campaign.pk,
            actor=request.user,
            case_ids=[c.pk for c in data["cases"]],
            public_explanation=data["public_explanation"],
            **decision_fields(data),
        )
    except DocketError as e:
        if e.status == 404:
            raise Http404(e.detail) from None
        messages.error(request, f"Nothing was decided. {e.detail}")
        return campaign_page(request, campaign, kept=kept_input(request.POST), status=e.status)
    _decided_message(request, data["action"], [d.case_id for d in decisions])
    return redirect("reviews:campaign", campaign_id=campaign.pk)


@require_POST
@staff_required
def campaign_dismiss_view(request, campaign_id):
    """A senior judges the cluster coincidental (the same service as the API); its cases stay as they are."""
    campaign = visible_or_404(Campaign.objects.all(), request.user, pk=campaign_id)
    if request.POST.get("confirm") != "yes":
        messages.error(request, "Tick the confirmation to dismiss the campaign; nothing was changed.")
        return redirect("reviews:campaign", campaign_id=campaign.pk)
    try:
        dismissed = campaign_dismiss(campaign_id=campaign.pk, actor=request.user)
    except DocketError as e:
        if e.status == 404:
            raise Http404(e.detail) from None
        messages.error(request, f"The campaign was not dismissed. {e.detail}")
    else:
        if dismissed.pk == campaign.pk:
            messages.success(
                request, f"Campaign {campaign.pk} dismissed as coincidental; its cases stay in their queues."
            )
        else:  # members hidden from this senior keep the campaign open
            messages.success(
                request,
                f"The members of campaign {campaign.pk} you may see were dismissed as coincidental (now campaign"
                f" {dismissed.pk}); their cases stay in their queues.",
            )
    return redirect("reviews:campaign", campaign_id=campaign.pk)
