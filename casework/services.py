"""Case state changes and the case timeline.

Every change of a case's status goes through ``case_transition``, which checks
the move against ``TRANSITIONS`` and writes the ``CaseEvent`` in the same
transaction. Intake lives in ``casework.intake``, priority in
``casework.priority``.
"""

from django.db import transaction
from django.utils import timezone

from docket import roles
from docket.errors import DocketError

from . import events
from .models import Case, CaseEvent

SYSTEM = "system"
AUTOMATION = "automation"

# The queues a case is escalated to (by a reviewer, or by the SLA sweep); they are served to seniors.
ESCALATION_QUEUES = ("escalations", "legal")

# from-status -> statuses it may move to
TRANSITIONS = {
    "open": {"in_review", "escalated", "decided", "closed"},
    "in_review": {"open", "escalated", "decided"},
    "escalated": {"in_review", "open", "decided", "escalated"},
    "decided": {"appealed", "closed"},
    "appealed": {"decided", "closed"},
    "closed": set(),
}


def transition_allowed(from_status, to) -> bool:
    """Whether the transition table lets a case that is ``from_status`` become ``to``."""
    return to in TRANSITIONS.get(from_status, ())


def transition_check(from_status, to, *, verb=None) -> None:
    """Refuse (409 ``invalid_transition``) a move the transition table does not allow.

    Every path that changes a case's status asks here, the set-based SQL ones
    (claim, lease expiry, SLA escalation, decision) included.
    """
    if not transition_allowed(from_status, to):
        raise DocketError(
            "invalid_transition", f"A case that is {from_status} cannot {verb or 'become ' + to}.", status=409
        )


def actor_fields(actor):
    """``(actor user or None, label)`` for a user, a reviewer, or a string like ``"system"``."""
    if actor is None:
        return None, SYSTEM
    if isinstance(actor, str):
        return None, actor
    user = getattr(actor, "user", actor)  # a Reviewer carries its user
    return user, user.get_username()


def case_event_add(*, case, event, actor=None, at=None):
    """Append one event to the case's timeline: an ``Event`` from a ``casework.events`` builder (the only way a
    kind and its detail are written)."""
    kind, detail = event
    user, label = actor_fields(actor)
    return CaseEvent.objects.create(
        case=case, kind=kind, actor=user, actor_label=label, detail=detail or {}, at=at or timezone.now()
    )


def case_events_add_bulk(rows):
    """Append many events at once.

    ``rows`` are ``(case_id, event, actor, at)`` with an ``Event`` from a ``casework.events`` builder.
    """
    written = []
    for case_id, (kind, detail), actor, at in rows:
        user, label = actor_fields(actor)
        written.append(CaseEvent(case_id=case_id, kind=kind, actor=user, actor_label=label, detail=detail or {}, at=at))
    return CaseEvent.objects.bulk_create(written)


def lock_case(case_id):
    """Lock one case row for the rest of the transaction."""
    try:
        return Case.objects.select_for_update(no_key=True, of=("self",)).select_related("threat_class").get(pk=case_id)
    except Case.DoesNotExist:
        raise DocketError("not_found", "No such case.", status=404) from None


@transaction.atomic
def case_transition(*, case, to, event, actor=None, at=None, extra_fields=()):
    """Move a locked case to ``to`` if the transition table allows it, with its event.

    The event is an ``Event`` from a ``casework.events`` builder; its detail always says ``from`` and
    ``to``. Sets the time fields that go with the status (``decided_at``, ``closed_at``,
    ``first_action_at``) and saves only the changed fields.
    """
    at = at or timezone.now()
    kind, detail = event
    transition_check(case.status, to)
    previous = case.status
    case.status = to
    fields = {"status", "updated_at", *extra_fields}
    if to == "decided":
        case.decided_at = at
        fields.add("decided_at")
    if to in ("decided", "escalated") and case.first_action_at is None:
        case.first_action_at = at
        fields.add("first_action_at")
    if to == "closed":
        case.closed_at = at
        fields.add("closed_at")
    case.save(update_fields=sorted(fields))
    moved = events.Event(kind, {"from": previous, "to": to, **detail})
    case_event_add(case=case, actor=actor, at=at, event=moved)
    return case


NOTE_MAX_CHARS = 4000


@transaction.atomic
def case_note_add(*, case_id, actor, text) -> CaseEvent:
    """Append an internal note (kind ``note``, staff only) to the timeline of a case the actor may see.

    Refuses ``forbidden`` (403) for non-staff, ``not_found`` (404) for a case
    hidden from the actor, ``invalid`` for empty or over-long text.
    """
    if not roles.has_any(actor, roles.STAFF):
        raise DocketError("forbidden", "Only staff can add notes.", status=403)
    text = (text or "").strip()
    if not text or len(text) > NOTE_MAX_CHARS:
        raise DocketError(
            "invalid", f"A note needs 1 to {NOTE_MAX_CHARS} characters.", errors={"text": ["Invalid length."]}
        )
    case = Case.objects.visible_to(actor).filter(pk=case_id).first()
    if case is None:
        raise DocketError("not_found", "No such case.", status=404)
    return case_event_add(case=case, actor=actor, event=events.note(text=text))
