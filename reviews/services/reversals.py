"""Overturning and replacing decisions (an appeal's outcomes): effects undone, a new decision through the pipeline."""

from django.db import transaction
from django.utils import timezone

from casework import events
from casework.services import case_event_add, lock_case
from docket.errors import conflict, not_found
from policies.models import VIOLATIONS

from ..models import Decision, Enforcement, Strike
from .common import reviewer_of
from .decisions import decisions_write, deliveries_enqueue, draft_for, reporters_adjust


def _reverse_enforcements(decision, now):
    """Queue a reversal for each enforcement of the decision that was (or may be) delivered."""
    to_reverse = decision.enforcements.filter(kind="enforce", status__in=["pending", "delivered"])
    rows = [
        Enforcement(
            decision=decision,
            kind=Enforcement.Kind.REVERSE,
            action=e.action,
            duration_days=e.duration_days,
            next_attempt_at=now,
            created_at=now,
        )
        for e in to_reverse
    ]
    return Enforcement.objects.bulk_create(rows)


def _decision_unwind(decision, *, actor, reason, now, kind, count_reporters=True):
    """Mark a decision overturned and undo its effects (lock already held)."""
    if decision.overturned:
        raise conflict("already_overturned", "This decision was already overturned.")
    decision.overturned = True
    decision.overturned_at = now
    decision.save(update_fields=["overturned", "overturned_at"])
    reversals = _reverse_enforcements(decision, now)
    Strike.objects.filter(decision=decision, removed_at__isnull=True).update(removed_at=now)
    if count_reporters:
        # The reports that led here: no longer upheld if it was a violation, upheld if it was not.
        reporters_adjust(decision.case_id, upheld=-1 if decision.action in VIOLATIONS else 1)
    event = events.decision_unwound(kind=kind, decision=decision.pk, reason=reason, reversals=len(reversals))
    case_event_add(case=decision.case, actor=actor, at=now, event=event)
    return reversals


def _lock_decision(decision):
    decision_id = getattr(decision, "pk", decision)
    case_id = Decision.objects.filter(pk=decision_id).values_list("case_id", flat=True).first()
    if case_id is None:
        raise not_found("No such decision.")
    case = lock_case(case_id)
    locked = Decision.objects.select_for_update(no_key=True, of=("self",)).get(pk=decision_id)
    locked.case = case
    return locked


@transaction.atomic
def decision_overturn(*, decision, actor, reason) -> None:
    """Overturn a decision: marked ``overturned``, each enforcement reversed through the outbox,
    its strike removed, its reporters' accuracy corrected. The case status is the caller's.
    """
    decision = _lock_decision(decision)
    reversals = _decision_unwind(
        decision, actor=actor, reason=reason, now=timezone.now(), kind=events.Kind.DECISION_OVERTURNED
    )
    deliveries_enqueue([r.pk for r in reversals])


@transaction.atomic
def decision_replace(
    *, decision, actor, action, rule, rationale, duration_days=None, public_explanation=""
) -> Decision:
    """Replace a decision with another action (an appeal's "modified" outcome).

    The old decision is overturned (enforcement reversed, strike removed); the
    new one goes through the decision pipeline under the class's active
    version, by ``actor``'s reviewer profile, and is delivered like any
    decision; its reports were decided once, only whether they were upheld
    changes. The case status is the caller's.
    """
    old = _lock_decision(decision)
    reviewer = reviewer_of(actor)
    case = old.case
    draft = draft_for(
        case,
        action=action,
        rule=rule,
        duration_days=duration_days,
        reviewer_id=reviewer.pk,
        rationale=rationale,
        public_explanation=public_explanation or "",
    )
    draft.from_status = None  # the case does not move: the appeal's resolution says where it goes
    draft.replaces = old
    now = timezone.now()
    reversals = _decision_unwind(
        old, actor=reviewer, reason=rationale, now=now, kind=events.Kind.DECISION_REPLACED, count_reporters=False
    )
    [new] = decisions_write([draft], actor=reviewer, now=now)
    deliveries_enqueue([r.pk for r in reversals])
    return new
