"""Relabelling: when a policy version is activated, a sample of recent decisions is re-reviewed, blind, under it.

Policies announces the activation (``policies.services.version_activated``); reviews registers
``relabel_sample_start`` there when ready, so the sample is taken in the activation's transaction.
"""

from django.db import transaction
from django.utils import timezone

from docket.conf import setting
from docket.errors import DocketError
from policies.models import VIOLATIONS

from ..models import Decision, RelabelItem


def relabel_sample_start(*, version, size=None):
    """Queue up to ``size`` recent human decisions of the version's class for relabelling under it.

    Takes the most recent human, non-relabel decisions made under any other
    version of the same policy (``DOCKET["RELABEL_SAMPLE_SIZE"]``, default 50)
    and creates one pending ``RelabelItem`` each, in one set-based INSERT.
    Idempotent: a decision is sampled at most once per version. Returns the
    number of items created.
    """
    size = setting("RELABEL_SAMPLE_SIZE") if size is None else size
    if size <= 0:
        return 0
    recent = (
        Decision.objects.filter(policy_version__policy_id=version.policy_id, automated=False, relabel=False)
        .exclude(policy_version=version)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)[:size]
    )
    now = timezone.now()
    items = [RelabelItem(policy_version=version, decision_id=d, created_at=now) for d in recent]
    created = RelabelItem.objects.bulk_create(items, ignore_conflicts=True)
    return len(created)


@transaction.atomic
def relabel_item_complete(*, item_id, reviewer, action, rule=""):
    """Record a blind relabel of a sampled decision under the new version.

    ``reviewer`` is a Reviewer; the action must be on the new version's ladder.
    Records whether the relabel agrees with the original decision on
    violation versus no violation. Refuses (409) an item already done and
    (403) the reviewer who made the original decision.
    """
    try:
        item = (
            RelabelItem.objects.select_for_update(no_key=True, of=("self",))
            .select_related("decision", "policy_version")
            .get(pk=item_id)
        )
    except RelabelItem.DoesNotExist:
        raise DocketError("not_found", "No such relabel item.", status=404) from None
    if item.status != RelabelItem.Status.PENDING:
        raise DocketError("invalid_transition", "This relabel item is already done.", status=409)
    if item.decision.reviewer_id == reviewer.pk:
        raise DocketError("conflict_of_interest", "You made the original decision.", status=403)
    if action not in item.policy_version.ladder:
        raise DocketError("action_not_allowed", f"{action!r} is not on this version's ladder.")
    item.reviewer = reviewer
    item.action = action
    item.rule = rule
    item.agrees = (action in VIOLATIONS) == (item.decision.action in VIOLATIONS)
    item.status = RelabelItem.Status.DONE
    item.completed_at = timezone.now()
    item.save(update_fields=["reviewer", "action", "rule", "agrees", "status", "completed_at"])
    return item
