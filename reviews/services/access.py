"""Access changes: nobody lifts a restriction alone.

A reviewer's clearances, and a threat class's ``restricted`` and ``legal_escalation``
flags, change only through an ``AccessChange``: proposed by a policy admin with a reason,
applied when a *different* policy admin approves, audited at every step (the access log's
``audit`` rows: ``access_change_proposed``, ``access_change_applied``,
``access_change_rejected``). Nobody proposes or approves a change of their own
clearances. The database agrees: the reviewer and class rows refuse such a change unless
the writing transaction opened ``docket.visibility.access_change_allowed`` (only
``access_change_approve`` here, and the installer's ``docket_user`` / single sign-on), and
the proposal table refuses an approval by the proposer or by the reviewer concerned.

Shaped as threshold governance (``policies.services.threshold_change_*``): the values in
force when proposed are stored, and an approval of a proposal whose values moved since
is refused (``stale_proposal``).
"""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from docket import roles
from docket.audit import access_log_add
from docket.errors import DocketError, conflict, forbidden, not_found
from docket.identity.services import account_grants_changed, grants_of
from docket.models import AccessLog
from docket.visibility import access_change_allowed
from policies.models import ThreatClass

from ..models import AccessChange, Reviewer

REASON_MAX = 2000


def _require_policy_admin(actor):
    if not roles.has(actor, roles.POLICY_ADMIN):
        raise forbidden("Only policy admins change clearances and restricted classes.")


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise DocketError("invalid", "Say why.", errors={"reason": ["Say why this access should change."]})
    return reason[:REASON_MAX]


def _audit(*, action, actor, change, request=None):
    """One audit row naming the change, what it concerns and its before/after values."""
    if change.kind == AccessChange.Kind.CLEARANCES:
        object_type, object_id, threat_class = "reviewer", change.account.get_username(), ""
        before, after = {"clearances": change.old_clearances}, {"clearances": change.clearances}
    else:
        object_type, object_id = "threat_class", change.threat_class.slug
        threat_class = change.threat_class.slug
        before = {"restricted": change.old_restricted, "legal_escalation": change.old_legal_escalation}
        after = {"restricted": change.restricted, "legal_escalation": change.legal_escalation}
    detail = {
        "change": change.pk,
        "kind": change.kind,
        "before": before,
        "after": after,
        "reason": change.reason,
        "proposed_by": change.proposed_by.get_username(),
    }
    if request is not None:
        detail["ip"] = request.META.get("REMOTE_ADDR", "")
    return access_log_add(
        user=actor,
        action=action,
        kind=AccessLog.Kind.AUDIT,
        object_type=object_type,
        object_id=object_id,
        threat_class=threat_class,
        detail=detail,
    )


def _create(fields, *, actor, request):
    try:
        with transaction.atomic():
            change = AccessChange.objects.create(**fields, proposed_by=actor, created_at=timezone.now())
    except IntegrityError:
        # The partial unique constraint: a concurrent proposal for the same reviewer or class won.
        raise conflict(
            "already_proposed", "A change of this is already proposed; approve or reject it first."
        ) from None
    _audit(action="access_change_proposed", actor=actor, change=change, request=request)
    return change


def _open_proposal_refuse(**lookup):
    if AccessChange.objects.filter(status=AccessChange.Status.PROPOSED, **lookup).exists():
        raise conflict("already_proposed", "A change of this is already proposed; approve or reject it first.")


@transaction.atomic
def access_change_propose_clearances(*, reviewer_id, clearances, reason, actor, request=None) -> AccessChange:
    """Propose that a reviewer hold exactly ``clearances`` (threat class slugs); nothing changes yet.

    Refuses a non-admin (403 ``forbidden``), a change of one's own clearances (403
    ``self_grant``), unknown classes and a change that changes nothing (400 ``invalid``),
    and a second open proposal for the same reviewer (409 ``already_proposed``).
    """
    _require_policy_admin(actor)
    reviewer = Reviewer.objects.select_related("user").filter(pk=reviewer_id).first() if reviewer_id else None
    if reviewer is None:
        raise DocketError("invalid", "No such reviewer.", errors={"reviewer": ["No such reviewer."]})
    if reviewer.user_id == actor.pk:
        raise forbidden("Nobody changes their own clearances; another policy admin proposes it.", code="self_grant")
    wanted = sorted({str(c).strip() for c in clearances or [] if str(c).strip()})
    known = set(ThreatClass.objects.filter(slug__in=wanted).values_list("slug", flat=True))
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise DocketError(
            "invalid", f"Unknown clearance(s): {', '.join(unknown)}.", errors={"clearances": ["Unknown class."]}
        )
    if wanted == sorted(reviewer.clearances):
        raise DocketError(
            "invalid", "These are the reviewer's clearances already.", errors={"clearances": ["Nothing changes."]}
        )
    reason = _reason(reason)
    _open_proposal_refuse(reviewer=reviewer)
    return _create(
        {
            "kind": AccessChange.Kind.CLEARANCES,
            "reviewer": reviewer,
            "account": reviewer.user,
            "old_clearances": sorted(reviewer.clearances),
            "clearances": wanted,
            "reason": reason,
        },
        actor=actor,
        request=request,
    )


@transaction.atomic
def access_change_propose_class_flags(
    *, threat_class_id, restricted, legal_escalation, reason, actor, request=None
) -> AccessChange:
    """Propose new ``restricted`` / ``legal_escalation`` flags for a threat class; nothing changes yet.

    Refuses a non-admin (403 ``forbidden``), an unknown class or a change that changes
    nothing (400 ``invalid``) and a second open proposal for the class (409 ``already_proposed``).
    """
    _require_policy_admin(actor)
    tc = ThreatClass.objects.filter(pk=threat_class_id).first() if threat_class_id else None
    if tc is None:
        raise DocketError("invalid", "No such threat class.", errors={"threat_class": ["No such threat class."]})
    restricted, legal_escalation = bool(restricted), bool(legal_escalation)
    if (restricted, legal_escalation) == (tc.restricted, tc.legal_escalation):
        raise DocketError(
            "invalid", "These are the class's flags already.", errors={"restricted": ["Nothing changes."]}
        )
    reason = _reason(reason)
    _open_proposal_refuse(threat_class=tc)
    return _create(
        {
            "kind": AccessChange.Kind.CLASS_FLAGS,
            "threat_class": tc,
            "old_restricted": tc.restricted,
            "restricted": restricted,
            "old_legal_escalation": tc.legal_escalation,
            "legal_escalation": legal_escalation,
            "reason": reason,
        },
        actor=actor,
        request=request,
    )


def _lock_change(change_id):
    try:
        return (
            AccessChange.objects.select_for_update(no_key=True, of=("self",))
            .select_related("account", "proposed_by", "threat_class")
            .get(pk=change_id)
        )
    except (AccessChange.DoesNotExist, ValueError, TypeError):
        raise not_found("No such access change.") from None


def _stale():
    return conflict(
        "stale_proposal",
        "What this change would replace moved since it was proposed; propose it again.",
    )


@transaction.atomic
def access_change_approve(*, change_id, actor, request=None) -> AccessChange:
    """A second policy admin approves: the clearances or flags change now, atomically, audited.

    Refuses a non-admin (403 ``forbidden``), the proposer (403 ``self_approval``), the
    reviewer whose clearances would change (403 ``self_grant``), a change no longer
    proposed (409 ``invalid_transition``) and one whose values moved since it was
    proposed (409 ``stale_proposal``). A reviewer whose clearances change is signed out
    everywhere (``account_grants_changed``).
    """
    _require_policy_admin(actor)
    change = _lock_change(change_id)
    if change.status != AccessChange.Status.PROPOSED:
        raise conflict("invalid_transition", f"This change is already {change.status}.")
    if change.proposed_by_id == actor.pk:
        raise forbidden("An access change must be approved by another policy admin.", code="self_approval")
    if change.account_id is not None and change.account_id == actor.pk:
        raise forbidden("Nobody approves a change of their own clearances.", code="self_grant")
    now = timezone.now()
    if change.kind == AccessChange.Kind.CLEARANCES:
        reviewer = Reviewer.objects.select_for_update(no_key=True).get(pk=change.reviewer_id)
        if sorted(reviewer.clearances) != sorted(change.old_clearances):
            raise _stale()
        user = get_user_model().objects.get(pk=change.account_id)
        before = grants_of(user)
        reviewer.clearances = list(change.clearances)
        with access_change_allowed():
            reviewer.save(update_fields=["clearances"])
    else:
        tc = ThreatClass.objects.select_for_update(no_key=True).get(pk=change.threat_class_id)
        if (tc.restricted, tc.legal_escalation) != (change.old_restricted, change.old_legal_escalation):
            raise _stale()
        tc.restricted, tc.legal_escalation = change.restricted, change.legal_escalation
        with access_change_allowed():
            tc.save(update_fields=["restricted", "legal_escalation"])
    change.status = AccessChange.Status.APPLIED
    change.decided_by = actor
    change.decided_at = now
    change.save(update_fields=["status", "decided_by", "decided_at"])
    _audit(action="access_change_applied", actor=actor, change=change, request=request)
    if change.kind == AccessChange.Kind.CLEARANCES:
        account_grants_changed(
            user=user, before=before, after=grants_of(user), by=actor, via="access_change", request=request
        )
    return change


@transaction.atomic
def access_change_reject(*, change_id, actor, request=None) -> AccessChange:
    """Withdraw (the proposer) or turn down (another admin) a proposed access change; nothing changes. Audited."""
    _require_policy_admin(actor)
    change = _lock_change(change_id)
    if change.status != AccessChange.Status.PROPOSED:
        raise conflict("invalid_transition", f"This change is already {change.status}.")
    change.status = AccessChange.Status.REJECTED
    change.decided_by = actor
    change.decided_at = timezone.now()
    change.save(update_fields=["status", "decided_by", "decided_at"])
    _audit(action="access_change_rejected", actor=actor, change=change, request=request)
    return change
