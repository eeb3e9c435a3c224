"""The case timeline's event kinds, and one small builder per kind.

Every ``CaseEvent`` row is written from an ``Event`` built here, whether by the
ORM (``casework.services.case_event_add`` / ``case_transition``) or by the
set-based SQL paths (claim, decision, lease expiry, intake), which insert the
builder's ``kind`` and ``detail`` as parameters. So a kind's detail has one
shape whichever path wrote it. This module imports no model.
"""

from typing import NamedTuple

from django.db import models


class Kind(models.TextChoices):
    OPENED = "opened"
    SIGNALS_ADDED = "signals_added"
    SIGNALS_RELEASED = "signals_released"
    CAMPAIGN_JOINED = "campaign_joined"
    CLAIMED = "claimed"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    RELEASED = "released"
    SKIPPED = "skipped"
    LEASE_EXPIRED = "lease_expired"
    ESCALATED = "escalated"
    SLA_ESCALATED = "sla_escalated"
    DECIDED = "decided"
    DECISION_RECORDED = "decision_recorded"
    DECISION_OVERTURNED = "decision_overturned"
    DECISION_REPLACED = "decision_replaced"
    QA_REVIEWED = "qa_reviewed"
    NOTE = "note"
    LEGAL_HOLD_SET = "legal_hold_set"
    LEGAL_HOLD_RELEASED = "legal_hold_released"
    PERSONAL_DATA_PURGED = "personal_data_purged"
    APPEAL_FILED = "appeal_filed"
    APPEAL_CLAIMED = "appeal_claimed"
    APPEAL_RELEASED = "appeal_released"
    APPEAL_RESOLVED = "appeal_resolved"
    APPEAL_CLOSED = "appeal_closed"
    # Status changes before every transition named its own kind: kept for the rows written then, built no more.
    STATUS_OPEN = "status_open"
    STATUS_IN_REVIEW = "status_in_review"
    STATUS_ESCALATED = "status_escalated"
    STATUS_DECIDED = "status_decided"
    STATUS_APPEALED = "status_appealed"
    STATUS_CLOSED = "status_closed"


class Event(NamedTuple):
    """What one timeline row says: its kind and its JSON detail (actor and time are the writer's)."""

    kind: str
    detail: dict


def _moved(kind, from_status, to, **detail) -> Event:
    return Event(kind, {"from": from_status, "to": to, **detail})


# --- intake and hygiene ---------------------------------------------------------------------


def opened() -> Event:
    return Event(Kind.OPENED, {})


def signals_added(*, signals, reporters, sources) -> Event:
    return Event(Kind.SIGNALS_ADDED, {"signals": signals, "reporters": reporters, "sources": sorted(sources)})


def signals_released(*, signals, source) -> Event:
    return Event(Kind.SIGNALS_RELEASED, {"signals": signals, "source": source})


def campaign_joined(*, campaign, previous=None, merged_from=None, dismissed_from=None) -> Event:
    if merged_from is not None:
        return Event(Kind.CAMPAIGN_JOINED, {"campaign": campaign, "merged_from": merged_from})
    if dismissed_from is not None:  # the part of a campaign a senior dismissed, apart from what is hidden from them
        return Event(Kind.CAMPAIGN_JOINED, {"campaign": campaign, "dismissed_from": dismissed_from})
    return Event(Kind.CAMPAIGN_JOINED, {"campaign": campaign, "previous": previous})


# --- claims and leases ----------------------------------------------------------------------


def claimed(*, from_status, assignment, reviewer) -> Event:
    return _moved(Kind.CLAIMED, from_status, "in_review", assignment=assignment, reviewer=reviewer)


def assigned(*, from_status, assignment, reviewer, assigned_by) -> Event:
    return _moved(
        Kind.ASSIGNED, from_status, "in_review", assignment=assignment, reviewer=reviewer, assigned_by=assigned_by
    )


def unassigned(*, from_status, assignment) -> Event:
    return _moved(Kind.UNASSIGNED, from_status, "open", assignment=assignment)


def returned(*, kind, from_status, assignment) -> Event:
    """The holder gave the case back: ``released`` or ``skipped``."""
    if kind not in (Kind.RELEASED, Kind.SKIPPED):
        raise ValueError(f"not a return: {kind}")
    return _moved(kind, from_status, "open", assignment=assignment)


def lease_expired(*, from_status, assignment) -> Event:
    return _moved(Kind.LEASE_EXPIRED, from_status, "open", assignment=assignment)


def escalated(*, from_status, from_queue, to_queue, reason) -> Event:
    return _moved(Kind.ESCALATED, from_status, "escalated", from_queue=from_queue, to_queue=to_queue, reason=reason)


def sla_escalated(*, from_status, from_queue, to_queue) -> Event:
    return _moved(Kind.SLA_ESCALATED, from_status, "escalated", from_queue=from_queue, to_queue=to_queue)


# --- decisions ------------------------------------------------------------------------------


def decided(*, from_status, decision, action, rule, policy_version, automated) -> Event:
    """A decision moved the case to decided; the same detail for human, bulk, campaign and automated ones."""
    return _moved(
        Kind.DECIDED,
        from_status,
        "decided",
        decision=decision,
        action=action,
        rule=rule,
        policy_version=policy_version,
        automated=automated,
    )


def decision_recorded(*, decision, replaces, action, rule, policy_version) -> Event:
    """A decision that replaces another (an appeal's "modified" outcome): the case does not move."""
    return Event(
        Kind.DECISION_RECORDED,
        {
            "decision": decision,
            "replaces": replaces,
            "action": action,
            "rule": rule,
            "policy_version": policy_version,
            "automated": False,
        },
    )


def decision_unwound(*, kind, decision, reason, reversals) -> Event:
    """``decision_overturned`` or ``decision_replaced``: the decision's effects are undone."""
    if kind not in (Kind.DECISION_OVERTURNED, Kind.DECISION_REPLACED):
        raise ValueError(f"not an unwinding: {kind}")
    return Event(kind, {"decision": decision, "reason": (reason or "")[:2000], "reversals": reversals})


def qa_reviewed(*, decision, agrees) -> Event:
    return Event(Kind.QA_REVIEWED, {"decision": decision, "agrees": agrees})


def note(*, text) -> Event:
    return Event(Kind.NOTE, {"text": text})


# --- retention ------------------------------------------------------------------------------


def legal_hold(*, released, reason) -> Event:
    """``legal_hold_set`` or ``legal_hold_released``, with the admin's reason."""
    return Event(Kind.LEGAL_HOLD_RELEASED if released else Kind.LEGAL_HOLD_SET, {"reason": reason})


def personal_data_purged() -> Event:
    return Event(Kind.PERSONAL_DATA_PURGED, {})


# --- appeals --------------------------------------------------------------------------------


def appeal_filed(*, appeal, decision, appellant, from_status=None) -> Event:
    """Filed against a decision; ``from_status`` when it moved the case to appealed."""
    detail = {"appeal": appeal, "decision": decision, "appellant": appellant}
    if from_status is not None:
        return _moved(Kind.APPEAL_FILED, from_status, "appealed", **detail)
    return Event(Kind.APPEAL_FILED, detail)


def appeal_claimed(*, appeal) -> Event:
    return Event(Kind.APPEAL_CLAIMED, {"appeal": appeal})


def appeal_released(*, appeal, held_by=None, expired=False) -> Event:
    """Given back to the appeals queue: by its holder, or by the sweep (``expired``) from ``held_by``."""
    if expired:
        return Event(Kind.APPEAL_RELEASED, {"appeal": appeal, "held_by": held_by, "why": "expired"})
    return Event(Kind.APPEAL_RELEASED, {"appeal": appeal})


def appeal_resolved(*, appeal, decision, outcome, new_action, new_decision, rationale) -> Event:
    return Event(
        Kind.APPEAL_RESOLVED,
        {
            "appeal": appeal,
            "decision": decision,
            "outcome": outcome,
            "new_action": new_action,
            "new_decision": new_decision,
            "rationale": rationale,
        },
    )


def appeal_closed(*, from_status, appeal) -> Event:
    return _moved(Kind.APPEAL_CLOSED, from_status, "decided", appeal=appeal)
