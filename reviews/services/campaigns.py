"""Campaign decisions: one service for the API and the UI.

The semantics (one rule for both, where the API used to decide every member
and close the campaign while the UI decided any subset and left it open): a
senior's decision applies to the campaign's open member cases the senior may
see, all of them or the ones selected; it is all or nothing (a member the
action does not fit refuses the whole decision, naming it); the campaign
becomes ``decided`` once no open member is left (members hidden from this
senior, or not selected, keep it open for someone else to finish).

A dismissal acts on the same members (``_members_seen``): a senior from whom
no member is hidden dismisses the campaign; one from whom some are hidden
dismisses the members they may see, which leave as a dismissed campaign of their
own (their cases with them), and the campaign stays open for the rest.
"""

from django.db import transaction
from django.utils import timezone

from casework import events
from casework.models import Campaign, Case, Subject
from casework.selectors import campaign_links_visible
from casework.services import case_events_add_bulk
from docket import roles
from docket.errors import DocketError, conflict, forbidden, not_found

from .common import reviewer_of
from .decisions import active_version_for, decisions_write, draft_for


def _lock_open_campaign(campaign_id, actor, verb):
    """Lock a campaign the actor may see (404 otherwise) that is still open (409 otherwise)."""
    campaign = (
        Campaign.objects.visible_to(actor).select_for_update(no_key=True, of=("self",)).filter(pk=campaign_id).first()
    )
    if campaign is None:
        raise not_found("No such campaign.")
    if campaign.status != Campaign.Status.OPEN:
        raise conflict("invalid_transition", f"A campaign that is {campaign.status} cannot be {verb}.")
    return campaign


def _members_seen(campaign, actor):
    """The campaign's member cases and member subjects ``actor`` may see (``visible_to``): what a senior's
    decision and dismissal act on; the rest stays for someone cleared for it."""
    cases = Case.objects.visible_to(actor).filter(campaign_id=campaign.pk)
    subjects = Subject.objects.visible_to(actor).filter(campaign_id=campaign.pk)
    return cases, subjects


@transaction.atomic
def campaign_decide(
    *,
    campaign_id: int,
    actor,
    action: str,
    rule: str,
    rationale: str,
    duration_days=None,
    case_ids=None,
    public_explanation: str = "",
) -> list:
    """A senior's one decision on a campaign's open member cases they may see (or the ``case_ids`` among them).

    Each case gets its own decision, statement of reasons and enforcement
    through the decision pipeline, under its class's active version (same
    rules as a single decision). Cases another reviewer holds are decided too,
    ending that assignment: a network is actioned as a whole, not minus the
    members someone happened to be reading. All or nothing. The campaign
    becomes ``decided`` when no open member remains. Returns the decisions, in
    case id order.
    """
    if not roles.has(actor, roles.SENIOR):
        raise forbidden("Only a senior decides a campaign.")
    reviewer = reviewer_of(actor)
    campaign = _lock_open_campaign(campaign_id, actor, "decided")
    members = (
        _members_seen(campaign, actor)[0]
        .active()
        .select_related("threat_class", "subject")
        .select_for_update(no_key=True, of=("self",))
        .order_by("pk")
    )
    if case_ids is not None:
        members = members.filter(pk__in=list(case_ids))
    cases = list(members)
    if case_ids is not None and len(cases) != len(set(case_ids)):
        missing = sorted(set(case_ids) - {c.pk for c in cases})
        raise DocketError(
            "invalid", f"Not open members of this campaign: {', '.join(map(str, missing))}.", errors={"cases": missing}
        )
    versions = {}
    drafts = []
    for case in cases:
        if case.threat_class_id not in versions:
            versions[case.threat_class_id] = active_version_for(case.threat_class)
        try:
            drafts.append(
                draft_for(
                    case,
                    action=action,
                    rule=rule,
                    duration_days=duration_days,
                    version=versions[case.threat_class_id],
                    reviewer_id=reviewer.pk,
                    rationale=rationale,
                    campaign_id=campaign.pk,
                    public_explanation=public_explanation or "",
                )
            )
        except DocketError as e:
            raise DocketError(e.code, f"Case {case.pk}: {e.detail}", status=e.status, errors=e.errors) from None
    decisions = decisions_write(drafts, actor=reviewer, now=timezone.now())
    if not Case.objects.active().filter(campaign_id=campaign.pk).exists():
        campaign.status = Campaign.Status.DECIDED
        campaign.save(update_fields=["status", "updated_at"])
    return decisions


@transaction.atomic
def campaign_dismiss(*, campaign_id: int, actor) -> Campaign:
    """A senior judges the cluster coincidental, as far as they may see it; its cases stay as they are.

    With nothing of the campaign hidden from the senior, the campaign is dismissed. Otherwise the
    member subjects and cases they may see leave it as a new dismissed campaign (its links: the ones
    they were shown; each case's timeline says so) and the campaign stays open, a member smaller for
    each, for a senior cleared for the rest. Returns the dismissed campaign (the campaign, or that part).
    """
    if not roles.has(actor, roles.SENIOR):
        raise forbidden("Only a senior dismisses a campaign.")
    campaign = _lock_open_campaign(campaign_id, actor, "dismissed")
    cases, subjects = _members_seen(campaign, actor)
    everything = Case.objects.filter(campaign_id=campaign.pk).count(), campaign.subjects.count()
    seen_cases = list(cases.select_for_update(of=("self",), no_key=True).order_by("pk").values_list("pk", flat=True))
    seen_subjects = list(
        subjects.select_for_update(of=("self",), no_key=True).order_by("pk").values_list("pk", flat=True)
    )
    if (len(seen_cases), len(seen_subjects)) == everything:
        campaign.status = Campaign.Status.DISMISSED
        campaign.save(update_fields=["status", "updated_at"])
        return campaign
    if not seen_cases and not seen_subjects:
        raise conflict("invalid_transition", "Nothing of this campaign you may see is left to dismiss.")
    now = timezone.now()
    links = campaign_links_visible(actor, [campaign])[0].visible_links
    part = Campaign.objects.create(
        threat_class_id=campaign.threat_class_id,
        link_class_id=campaign.link_class_id,
        status=Campaign.Status.DISMISSED,
        links=links,
        size=len(seen_subjects),
        detected_at=campaign.detected_at,
    )
    Subject.objects.filter(pk__in=seen_subjects).update(campaign=part)
    Case.objects.filter(pk__in=seen_cases).update(campaign=part, updated_at=now)
    case_events_add_bulk(
        [(pk, events.campaign_joined(campaign=part.pk, dismissed_from=campaign.pk), actor, now) for pk in seen_cases]
    )
    campaign.size = everything[1] - len(seen_subjects)
    campaign.save(update_fields=["size", "updated_at"])
    return part
