"""The case timeline in words, for the case page and the appeal page: labels of actions, queues and statuses,
never their slugs."""

from casework.models import Case
from reviews.selectors import queue_names

from .common import ACTION_LABELS

STATUS_WORDS = {value: label.lower() for value, label in Case.Status.choices}
# Event kinds whose name with its underscores replaced would not read as words.
EVENT_WORDS = {
    "qa_reviewed": "QA second review recorded",
    "status_open": "reopened",
    "status_in_review": "in review",
    "status_escalated": "escalated",
    "status_decided": "decided",
    "status_appealed": "appealed",
    "status_closed": "closed",
    "personal_data_purged": "personal data purged",
}


def status_word(status):
    return STATUS_WORDS.get(status, str(status).replace("_", " "))


def event_summary(event, queue_names):
    """What the timeline says of an event, in words: labels of actions, queues and statuses, never their slugs."""
    d = event.detail or {}
    kind = event.kind
    if kind == "note":
        return "added a note"
    if kind in ("claimed", "assigned"):
        who = d.get("reviewer", "")
        return f"{kind} the case" if kind == "claimed" else f"assigned the case to {who}"
    if kind == "decided":
        text = f"decided: {ACTION_LABELS.get(d.get('action'), d.get('action'))}"
        return text + (f" under {d['rule']}" if d.get("rule") else "")
    if kind in ("escalated", "sla_escalated"):
        to = d.get("to_queue", "?")
        text = "escalated" if kind == "escalated" else "escalated past its SLA"
        return f"{text} to the {queue_names.get(to, to)} queue"
    if kind == "lease_expired":
        return "lease expired; back to the queue"
    if kind in ("released", "skipped"):
        return f"{kind} the case back to the queue"
    if kind == "signals_released":
        return f"{d.get('signals', 0)} held signal(s) released into the case"
    text = EVENT_WORDS.get(kind, kind.replace("_", " "))
    if d.get("to") and d.get("from"):
        text += f" ({status_word(d['from'])} → {status_word(d['to'])})"
    return text


def events_told(events):
    """Set ``summary`` on each event (the queue names read once, only when an event moved a case between
    queues); returns the events."""
    names = queue_names() if any(e.detail and ("to_queue" in e.detail) for e in events) else {}
    for event in events:
        event.summary = event_summary(event, names)
    return events
