"""Appeals: filing within the window, an independent review queue, resolution by a named human.

Independence: a reviewer who made any decision on the appealed case is never
served its appeal and may not resolve it (``conflict_of_interest``). There is
no automated path: ``appeal_resolve`` demands a ``Reviewer`` holding the
appeal, and the database refuses a resolved appeal without ``resolved_by``.
Reversal and re-enforcement go through ``reviews.services`` (one rule, one
place); this module only orders the steps and keeps the case timeline.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from casework import events
from casework.services import (
    case_event_add,
    case_events_add_bulk,
    case_transition,
    lock_case,
    transition_allowed,
)
from docket import roles
from docket.batches import BATCH_SIZE, batches
from docket.conf import setting
from docket.errors import DocketError, conflict, forbidden, not_found
from reviews.models import Decision, Reviewer
from reviews.notices import appeal_outcome_queue
from reviews.services import ReviewerLoad, decision_overturn, decision_replace, eligibility_check
from reviews.webhooks import enforcement_payloads_fix

from .models import Appeal
from .selectors import appeal_outcome_notice, decided_on_case_q, has_conflict, visible_q

OPEN_STATUSES = (Appeal.Status.RECEIVED, Appeal.Status.IN_REVIEW)
_ONCE_PER_APPELLANT = "appeal_once_per_appellant_decision"


def _constraint_name(error):
    return getattr(getattr(error.__cause__, "diag", None), "constraint_name", None) or str(error)


def _appeals_reviewer(reviewer):
    """The reviewer, if a named human with the appeals role; automation and other roles are refused."""
    if not isinstance(reviewer, Reviewer) or not roles.has(reviewer.user, roles.APPEALS):
        raise forbidden("Appeals are reviewed by a named member of the appeals staff.")
    return reviewer


def _lock_appeal(appeal_id, reviewer):
    """Lock one appeal the reviewer may see (404 otherwise: restricted appeals do not exist for them)."""
    appeal = (
        Appeal.objects.select_for_update(no_key=True, of=("self",))
        .select_related("decision__case__threat_class")
        .filter(visible_q(reviewer.user), pk=appeal_id)
        .first()
    )
    if appeal is None:
        raise not_found("No such appeal.")
    return appeal


@transaction.atomic
def appeal_file(*, decision_id, appellant, statement, actor, language="en", at=None) -> Appeal:
    """File an appeal against a decision, for the platform.

    Accepted within ``DOCKET["APPEAL_WINDOW_DAYS"]`` of the decision being
    communicated (its ``created_at``), else ``400 appeal_window_closed``; once
    per appellant and decision (``409 already_appealed``, enforced by the
    unique constraint so concurrent filings cannot both pass); never against
    an overturned decision (``400 invalid``). The deadline is
    ``DOCKET["APPEAL_SLA_HOURS"]`` from receipt. The case becomes
    ``appealed`` (or, already appealed by someone else, gains the event).
    """
    at = at or timezone.now()
    appellant = (appellant or "").strip()
    if not appellant:
        raise DocketError("invalid", "An appeal names its appellant.", errors={"appellant": ["Required."]})
    case_id = Decision.objects.filter(pk=decision_id).values_list("case_id", flat=True).first()
    if case_id is None:
        raise DocketError("invalid", "No such decision.", errors={"decision": ["No such decision."]})
    case = lock_case(case_id)
    decision = Decision.objects.select_for_update(no_key=True, of=("self",)).get(pk=decision_id)
    if decision.overturned:
        raise DocketError("invalid", "This decision has been overturned; there is nothing left to appeal.")
    window = setting("APPEAL_WINDOW_DAYS")
    if at > decision.created_at + timedelta(days=window):
        raise DocketError(
            "appeal_window_closed", f"Appeals are accepted for {window} days after the decision was communicated."
        )
    try:
        with transaction.atomic():
            appeal = Appeal.objects.create(
                decision=decision,
                appellant=appellant,
                statement=statement or "",
                language=(language or "en").strip().lower()[:8] or "en",
                received_at=at,
                deadline=at + timedelta(hours=setting("APPEAL_SLA_HOURS")),
            )
    except IntegrityError as e:
        if _ONCE_PER_APPELLANT in _constraint_name(e):
            raise conflict("already_appealed", "This appellant has already appealed this decision.") from None
        raise
    filed = {"appeal": appeal.pk, "decision": decision.pk, "appellant": appellant}
    if transition_allowed(case.status, "appealed"):
        event = events.appeal_filed(from_status=case.status, **filed)
        case_transition(case=case, to="appealed", actor=actor, event=event, at=at)
    else:
        # Already appealed by another appellant (or closed): the timeline still records it.
        case_event_add(case=case, actor=actor, at=at, event=events.appeal_filed(**filed))
    return appeal


@transaction.atomic
def appeal_claim(*, reviewer, at=None) -> Appeal | None:
    """Hand this appeals reviewer the received appeal with the oldest deadline they may take, or None.

    Never an appeal on a case they made a decision on; restricted classes only
    with the clearance. ``FOR NO KEY UPDATE SKIP LOCKED``: concurrent claimers never
    get one appeal twice. Refusals: ``403 forbidden`` (not appeals staff),
    ``409 off_shift``, ``409 capacity_reached`` (holding ``max_active`` appeals).
    """
    at = at or timezone.now()
    _appeals_reviewer(reviewer)
    # Serialises this reviewer's own claims so capacity holds under double clicks.
    me = Reviewer.objects.select_for_update(no_key=True, of=("self",)).select_related("user").get(pk=reviewer.pk)
    load = ReviewerLoad(
        username=me.user.get_username(),
        on_shift=me.on_shift,
        max_active=me.max_active,
        clearances=frozenset(me.clearances),
        active=Appeal.objects.filter(assigned_to=me, status=Appeal.Status.IN_REVIEW).count(),
    )
    eligibility_check(load, holds="appeal(s)")
    appeal = (
        Appeal.objects.filter(visible_q(me.user), status=Appeal.Status.RECEIVED)
        .exclude(decided_on_case_q(me))
        .order_by("deadline", "id")
        .select_for_update(no_key=True, of=("self",), skip_locked=True)
        .first()
    )
    if appeal is None:
        return None
    appeal.status = Appeal.Status.IN_REVIEW
    appeal.assigned_to = me
    appeal.claimed_at = at
    appeal.save(update_fields=["status", "assigned_to", "claimed_at"])
    case_id = Decision.objects.filter(pk=appeal.decision_id).values_list("case_id", flat=True).get()
    case_events_add_bulk([(case_id, events.appeal_claimed(appeal=appeal.pk), me, at)])
    return appeal


@transaction.atomic
def appeal_release(*, appeal_id, reviewer, at=None) -> Appeal:
    """Give a held appeal back to the queue; only its holder may (``403 not_assignee``)."""
    at = at or timezone.now()
    _appeals_reviewer(reviewer)
    appeal = _lock_appeal(appeal_id, reviewer)
    if appeal.status != Appeal.Status.IN_REVIEW or appeal.assigned_to_id != reviewer.pk:
        raise forbidden("Only the reviewer holding this appeal may release it.", code="not_assignee")
    appeal.status = Appeal.Status.RECEIVED
    appeal.assigned_to = None
    appeal.claimed_at = None
    appeal.save(update_fields=["status", "assigned_to", "claimed_at"])
    case_events_add_bulk([(appeal.decision.case_id, events.appeal_released(appeal=appeal.pk), reviewer, at)])
    return appeal


def appeals_release_stale(*, now=None, batch: int = BATCH_SIZE) -> int:
    """Return to the queue appeals held longer than ``DOCKET["APPEAL_CLAIM_HOURS"]`` (default 24); how many.

    Set-based, in short batches (``docket.batches``), longest held first: a
    backlog of stale claims (staff away for a weekend) never holds every appeal
    it releases in one transaction. Claims another transaction holds (their
    holder resolving or releasing them now) are skipped. Releasing is not
    resolving: the appeals go back to a human.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(hours=setting("APPEAL_CLAIM_HOURS"))

    def release(size):
        stale = list(
            Appeal.objects.filter(status=Appeal.Status.IN_REVIEW, claimed_at__lt=cutoff)
            .order_by("claimed_at", "id")
            .select_for_update(no_key=True, of=("self",), skip_locked=True)
            .values_list("id", "decision__case_id", "assigned_to_id")[:size]
        )
        if not stale:
            return 0
        Appeal.objects.filter(pk__in=[s[0] for s in stale]).update(
            status=Appeal.Status.RECEIVED, assigned_to=None, claimed_at=None
        )
        case_events_add_bulk(
            [
                (case_id, events.appeal_released(appeal=appeal_id, held_by=holder, expired=True), "system", now)
                for appeal_id, case_id, holder in stale
            ]
        )
        return len(stale)

    return batches(release, size=batch)


def _validate_resolution(*, appeal, outcome, action, rule, duration_days, rationale):
    errors = {}
    if outcome not in Appeal.Outcome.values:
        errors["outcome"] = [f"Choose one of {', '.join(Appeal.Outcome.values)}."]
    if not (rationale or "").strip():
        errors["rationale"] = ["The appellant is owed the reasons: a rationale is required."]
    if outcome == Appeal.Outcome.MODIFIED:
        decision = appeal.decision
        if not action:
            errors["action"] = ["A modified decision needs its new action."]
        elif (action, rule if rule is not None else decision.rule, duration_days) == (
            decision.action,
            decision.rule,
            decision.duration_days,
        ):
            errors["action"] = ["This is the decision as it stands: resolve it as upheld."]
    if errors:
        raise DocketError("invalid", "The resolution is invalid.", errors=errors)


def _appeal_outcome_notify(appeal, *, case_id, at):
    """The appellant is told the outcome, whatever it is (``upheld`` included), in their language."""
    rendered = appeal_outcome_notice(appeal)
    appeal_outcome_queue(
        appeal_id=appeal.pk,
        case_id=case_id,
        decision_id=appeal.decision_id,
        appellant=appeal.appellant,
        outcome=appeal.outcome,
        rendered=rendered,
        now=at,
    )


@transaction.atomic
def appeal_resolve(
    *, appeal_id, reviewer, outcome, rationale, action=None, rule=None, duration_days=None, at=None
) -> Appeal:
    """Resolve a held appeal: ``upheld``, ``overturned`` or ``modified`` (with a new action on the ladder).

    Only a named appeals reviewer holding the appeal (``403 not_assignee``)
    who made no decision on the case (``403 conflict_of_interest``, checked
    first). ``overturned`` calls ``decision_overturn`` (decision marked,
    reversal through the outbox, strike removed, reporters corrected);
    ``modified`` calls ``decision_replace`` (old enforcement reversed, new one
    delivered; its ladder check answers ``400 action_not_allowed``). The case
    timeline gains ``appeal_resolved`` and the case returns to ``decided`` once
    no other appeal on it is open. Everything or nothing is written.
    """
    at = at or timezone.now()
    _appeals_reviewer(reviewer)
    appeal = _lock_appeal(appeal_id, reviewer)
    decision = appeal.decision
    if has_conflict(reviewer, appeal):
        raise forbidden(
            "You made a decision on this case; an appeal is decided by someone else.", code="conflict_of_interest"
        )
    if appeal.assigned_to_id != reviewer.pk:
        raise forbidden("Only the reviewer holding this appeal may resolve it.", code="not_assignee")
    if appeal.status != Appeal.Status.IN_REVIEW:
        raise conflict("invalid_transition", "This appeal is already resolved.")
    _validate_resolution(
        appeal=appeal, outcome=outcome, action=action, rule=rule, duration_days=duration_days, rationale=rationale
    )
    case = lock_case(decision.case_id)
    rationale = rationale.strip()

    # The appeal is resolved before the decision is reversed or replaced, so
    # whatever the outbox builds for the platform already sees the outcome.
    appeal.status = Appeal.Status.RESOLVED
    appeal.outcome = outcome
    appeal.rationale = rationale
    appeal.resolved_by = reviewer
    appeal.resolved_at = at
    appeal.new_action = action if outcome == Appeal.Outcome.MODIFIED else ""
    appeal.save(update_fields=["status", "outcome", "rationale", "resolved_by", "resolved_at", "new_action"])

    if outcome == Appeal.Outcome.OVERTURNED:
        decision_overturn(decision=decision, actor=reviewer, reason=rationale)
    elif outcome == Appeal.Outcome.MODIFIED:
        new_decision = decision_replace(
            decision=decision,
            actor=reviewer,
            action=action,
            rule=rule if rule is not None else decision.rule,
            rationale=rationale,
            duration_days=duration_days,
        )
        appeal.new_decision = new_decision
        appeal.save(update_fields=["new_decision"])
        # Its enforcement's body tells the outcome of this appeal: built again now that it names it.
        enforcement_payloads_fix(decision_id=new_decision.pk, rebuild=True)

    resolved = events.appeal_resolved(
        appeal=appeal.pk,
        decision=decision.pk,
        outcome=outcome,
        new_action=appeal.new_action or None,
        new_decision=appeal.new_decision_id,
        rationale=rationale,
    )
    case_event_add(case=case, actor=reviewer, at=at, event=resolved)
    _appeal_outcome_notify(appeal, case_id=case.pk, at=at)
    case.refresh_from_db(fields=["status"])
    others_open = (
        Appeal.objects.filter(decision__case_id=case.pk, status__in=OPEN_STATUSES).exclude(pk=appeal.pk).exists()
    )
    if case.status == "appealed" and not others_open:
        closed = events.appeal_closed(from_status=case.status, appeal=appeal.pk)
        case_transition(case=case, to="decided", actor=reviewer, event=closed, at=at)
    return appeal


def appeals_purge_personal_data(*, case_ids):
    """Purge the appellants' statements and ids on appeals of these cases (retention; one UPDATE).

    Registered in ``AppealsConfig.ready`` as appeals' part of ``casework.retention``.
    """
    Appeal.objects.filter(decision__case_id__in=case_ids).update(
        statement="", appellant=Concat(Value("redacted-"), Cast("id", CharField()))
    )
