"""Blind QA: a second reviewer's look at a sample of decisions."""

from django.db import transaction
from django.utils import timezone

from casework import events
from casework.services import case_event_add
from docket.errors import DocketError, conflict, forbidden, not_found
from policies.models import LADDER, Action, class_visible

from ..models import QualityReview
from .common import reviewer_of


@transaction.atomic
def quality_review_complete(*, review_id, reviewer, action, rule="") -> QualityReview:
    """Record a blind second review and whether it agrees with the decision (same action).

    The second reviewer must not be the one who decided (``conflict_of_interest``).
    """
    reviewer = reviewer_of(reviewer)
    review = QualityReview.objects.select_for_update(no_key=True, of=("self",)).select_related(
        "decision__case__threat_class"
    )
    review = review.filter(pk=review_id).first()
    if review is None:
        raise not_found("No such quality review.")
    decision = review.decision
    tc = decision.case.threat_class
    if not class_visible(restricted=tc.restricted, slug=tc.slug, clearances=reviewer.clearances):
        raise not_found("No such quality review.")
    if decision.reviewer_id == reviewer.pk:
        raise forbidden("The decider cannot review their own decision.", code="conflict_of_interest")
    if review.status != QualityReview.Status.PENDING:
        raise conflict("already_reviewed", "This quality review is already done.")
    if action not in LADDER or action not in decision.policy_version.ladder:
        label = dict(Action.choices).get(action, action)
        raise DocketError("action_not_allowed", f"{label} is not on the ladder of {decision.policy_version.label}.")
    rule = (rule or "").strip()
    if rule and rule not in decision.policy_version.rule_codes():
        raise DocketError("invalid", f"Unknown rule {rule!r}.", errors={"rule": ["Unknown rule."]})
    now = timezone.now()
    review.reviewer = reviewer
    review.action = action
    review.rule = rule
    review.agrees = action == decision.action
    review.status = QualityReview.Status.DONE
    review.completed_at = now
    review.save(update_fields=["reviewer", "action", "rule", "agrees", "status", "completed_at"])
    case_event_add(
        case=decision.case,
        actor=reviewer,
        at=now,
        event=events.qa_reviewed(decision=decision.pk, agrees=review.agrees),
    )
    return review
