"""Retention of personal data, legal hold, and chain-of-custody export.

Closed cases keep their decisions and counts for metrics, but after
``DOCKET["RETENTION_DAYS"]`` the personal data in them (reporter ids, reasons,
notes, rationales, appellant statements) is purged. Cases under legal
escalation are on legal hold and kept whole until an admin releases the hold.

Each app purges and exports what it keeps of a case: casework its signals,
events and reporters here; the apps above register their part when ready
(``personal_data_purgers``, ``export_contributions``): reviews its decisions'
rationales and the decisions and enforcements of an export, appeals the
appellants' statements.
"""

import hashlib
import json
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from docket.batches import BATCH_SIZE, batches
from docket.conf import setting
from docket.errors import DocketError
from docket.hooks import Contributions

from . import events
from .models import Case, CaseEvent, Reporter, Signal
from .services import case_event_add, case_events_add_bulk, lock_case

# ``(*, case_ids)``: purge the personal data an app keeps of these cases (same transaction, set-based).
personal_data_purgers = Contributions("casework.personal_data_purgers")
# ``(*, case_id) -> [{"type", "data"}, ...]``: an app's items of a case's chain-of-custody export, in order.
export_contributions = Contributions("casework.export_contributions")

# Keys of event details that can carry personal data or free text.
PERSONAL_KEYS = ["text", "reason", "reporter", "reporters", "rationale", "statement", "appellant"]


def legal_hold_q():
    """Cases whose evidence must be kept: an explicit hold, or a legal case not yet released."""
    legal = Q(threat_class__legal_escalation=True) | Q(queue__slug="legal")
    return Q(legal_hold=True) | (legal & Q(legal_hold_released_at__isnull=True))


def cases_due_for_purge(*, now=None):
    now = now or timezone.now()
    cutoff = now - timedelta(days=setting("RETENTION_DAYS"))
    return (
        Case.objects.filter(status="closed", closed_at__lt=cutoff, personal_data_purged_at__isnull=True)
        .exclude(legal_hold_q())
        .order_by()
    )


def cases_purge_personal_data(*, now=None, batch: int = BATCH_SIZE) -> int:
    """Purge personal data from closed cases past retention; returns how many cases.

    In short batches (``docket.batches``: a few set-based UPDATEs each), oldest
    closure first over the index of closed cases not yet purged, each batch
    starting where the previous one stopped: a batch reads the cases it purges
    (and the held ones it passes, once a run), never the purged history. Legal
    holds are never purged; rows another transaction holds are skipped and
    caught on the next run.
    """
    now = now or timezone.now()
    after = None

    def step(size):
        nonlocal after
        done, last = _purge_batch(now=now, batch=size, after=after)
        after = last or after
        return done

    return batches(step, size=batch)


@transaction.atomic
def _purge_batch(*, now, batch, after):
    """Purge up to ``batch`` due cases after the (closed_at, id) ``after``; returns (count, the last one's key)."""
    due = cases_due_for_purge(now=now)
    if after is not None:
        due = due.filter(Q(closed_at__gt=after[0]) | Q(closed_at=after[0], id__gt=after[1]))
    # OF self: the class and queue rows the legal-hold test joins are read, never locked.
    found = list(
        due.order_by("closed_at", "id")
        .select_for_update(no_key=True, skip_locked=True, of=("self",))
        .values_list("id", "closed_at")[:batch]
    )
    if not found:
        return 0, None
    ids = [case_id for case_id, _ in found]
    reporters = set(
        Signal.objects.filter(case_id__in=ids, reporter__isnull=False).values_list("reporter_id", flat=True)
    )
    Signal.objects.filter(case_id__in=ids).update(reporter=None, reason="")
    for purge in personal_data_purgers:
        purge(case_ids=ids)
    with connection.cursor() as cur:
        cur.execute("SET LOCAL docket.redact = 'on'")
        cur.execute(
            """
            UPDATE casework_caseevent
               SET detail = (detail - %s::text[]) || '{"redacted": true}'::jsonb
             WHERE case_id = ANY(%s) AND detail ?| %s::text[]
            """,
            [PERSONAL_KEYS, ids, PERSONAL_KEYS],
        )
        cur.execute("SET LOCAL docket.redact = 'off'")
    # The batch's reporters left with no signal go (not every reporter of the platform, each batch).
    Reporter.objects.filter(pk__in=reporters, signals__isnull=True).delete()
    Case.objects.filter(id__in=ids).update(personal_data_purged_at=now)
    case_events_add_bulk([(case_id, events.personal_data_purged(), "system", now) for case_id in ids])
    last_id, last_at = found[-1]
    return len(ids), (last_at, last_id)


@transaction.atomic
def case_legal_hold_set(*, case_id, actor, reason):
    """Keep a case's evidence whole past retention."""
    case = lock_case(case_id)
    case.legal_hold = True
    case.legal_hold_released_at = None
    case.save(update_fields=["legal_hold", "legal_hold_released_at", "updated_at"])
    case_event_add(case=case, actor=actor, event=events.legal_hold(released=False, reason=reason))
    return case


@transaction.atomic
def case_legal_hold_release(*, case_id, actor, reason):
    """Release a legal hold: the case then follows ordinary retention."""
    case = lock_case(case_id)
    if case.personal_data_purged_at:
        raise DocketError("invalid_transition", "This case was already purged.", status=409)
    case.legal_hold = False
    case.legal_hold_released_at = timezone.now()
    case.save(update_fields=["legal_hold", "legal_hold_released_at", "updated_at"])
    case_event_add(case=case, actor=actor, event=events.legal_hold(released=True, reason=reason))
    return case


def _digest(item):
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def case_export(*, case_id):
    """The case with every signal, event, decision and enforcement, each with a sha256.

    Each item's hash is over its canonical JSON (sorted keys, no spaces), so a
    recipient can re-hash what they received; ``manifest_sha256`` covers the
    ordered list of item hashes.
    """
    case = Case.objects.select_related("subject", "threat_class", "queue").get(pk=case_id)
    items = [
        {
            "type": "case",
            "data": {
                "id": case.pk,
                "subject": {"kind": case.subject.kind, "external_id": case.subject.external_id},
                "threat_class": case.threat_class.slug,
                "queue": case.queue.slug,
                "status": case.status,
                "signal_count": case.signal_count,
                "first_signal_at": case.first_signal_at,
                "last_signal_at": case.last_signal_at,
                "legal_hold": case.legal_hold,
            },
        }
    ]
    signals = Signal.objects.filter(case_id=case_id).select_related("source", "reporter").order_by("id")
    items += [
        {
            "type": "signal",
            "data": {
                "id": s.pk,
                "source": s.source.slug,
                "external_id": s.external_id,
                "score": s.score,
                "reporter": s.reporter.external_id if s.reporter else None,
                "reason": s.reason,
                "occurred_at": s.occurred_at,
                "received_at": s.received_at,
            },
        }
        for s in signals
    ]
    events = CaseEvent.objects.filter(case_id=case_id).order_by("at", "id")
    items += [
        {"type": "event", "data": {"id": e.pk, "at": e.at, "actor": e.actor_label, "kind": e.kind, "detail": e.detail}}
        for e in events
    ]
    for contribute in export_contributions:
        items += contribute(case_id=case_id)
    for item in items:
        # Hash exactly what the recipient receives: the JSON form of the data.
        item["data"] = json.loads(json.dumps(item["data"], cls=DjangoJSONEncoder))
        item["sha256"] = _digest(item["data"])
    manifest = hashlib.sha256("".join(i["sha256"] for i in items).encode()).hexdigest()
    return {"case": case.pk, "exported_at": timezone.now(), "items": items, "manifest_sha256": manifest}
