"""Campaign decisions: one service for the API and the UI.

The semantics (one rule for both, where the API used to decide every member
and close the campaign while the UI decided any subset and left it open): a
senior's decision applies to the campaign's open member cases the senior may
see, all of them or the ones selected; it is all or nothing (a member the
action does not fit refuses the whole decision, naming it); the campaign
becomes ``decided`` once no open member is left (members hidden from this
senior, or not selected, keep it open for someone else to finish).
"""

from django.db import transaction
from django.utils import timezone

from casework.models import Campaign, Case
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
        Case.objects.visible_to(actor)
        .active()
        .filter(campaign_id=campaign.pk)
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
    """A senior judges the cluster coincidental: it is dismissed, its cases stay as they are."""
    if not roles.has(actor, roles.SENIOR):
        raise forbidden("Only a senior dismisses a campaign.")
    campaign = _lock_open_campaign(campaign_id, actor, "dismissed")
    campaign.status = Campaign.Status.DISMISSED
    campaign.save(update_fields=["status", "updated_at"])
    return campaign
