"""Notices to reporters and appellants: an outbox POSTed, signed and retried like enforcements.

Webhook type ``notice`` (API.md): ``{"id", "type": "notice", "kind", "recipient":
{"role", "external_id"}, "case", "decision", "appeal", "outcome", "language",
"text"}``. The text is rendered from the policy admins' message templates when
the notice is made and stored with it, so later template edits never change a
notice already given.

- ``report_outcome`` (DSA Art. 16(5)): once per reporter of every decided case,
  ``no_violation`` included; made in the decision's transaction, set-based.
- ``appeal_outcome`` (Art. 20(4)): once per resolved appeal, whatever the outcome.
- ``report_received`` (Art. 16(4)): only with ``DOCKET_ACKNOWLEDGE_REPORTS``;
  a sweep acknowledges reports received since the last one acknowledged.
"""

import json
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from docket.conf import setting
from docket.queueing import enqueue_on_commit
from policies.models import Action
from policies.notices import notice_render, notice_templates, notices_render, redress

from .models import Notice
from .webhooks import attempt_send

# Reports older than this are not acknowledged when acknowledgements are switched on.
RECEIPT_LOOKBACK = timedelta(days=1)
RECEIPT_BATCH = 5000


def _language():
    return settings.LANGUAGE_CODE


def _appeal_until(decided_at):
    window = setting("APPEAL_WINDOW_DAYS")
    return (decided_at + timedelta(days=window)).date().isoformat()


def _text(rendered):
    return f"{rendered['subject']}\n\n{rendered['body']}".strip()


# One statement for a batch of decisions: a notice for each distinct reporter of each decision's case,
# each with its own id inside its body.
_REPORT_OUTCOMES_SQL = """
WITH d AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS d(case_id bigint, decision_id bigint, base jsonb)
),
reporters AS (
    SELECT DISTINCT d.case_id, d.decision_id, r.external_id
      FROM d JOIN casework_signal s ON s.case_id = d.case_id JOIN casework_reporter r ON r.id = s.reporter_id
),
rows AS (
    SELECT gen_random_uuid() AS pid, reporters.*, d.base
      FROM reporters JOIN d ON d.decision_id = reporters.decision_id
     ORDER BY reporters.decision_id, reporters.external_id
)
INSERT INTO reviews_notice (public_id, key, kind, case_id, decision_id, signal_id, payload, status, attempts,
                            next_attempt_at, last_error, created_at, delivered_at)
SELECT pid, 'report_outcome:' || decision_id::text || ':' || external_id, 'report_outcome', case_id,
       decision_id, NULL,
       base || jsonb_build_object('id', pid::text,
                                  'recipient', jsonb_build_object('role', 'reporter', 'external_id', external_id)),
       'pending', 0, %(now)s, '', %(now)s, NULL
  FROM rows
ON CONFLICT (key) DO NOTHING
RETURNING id
"""


def _report_outcome_request(decision, *, ways):
    """What ``notices_render`` renders for the decision's reporters: ``(language, action, context)``."""
    case = decision.case
    version = decision.policy_version
    rule = next((r for r in version.rules if r.get("code") == decision.rule), {})
    return (
        _language(),
        decision.action,
        {
            "report": {"case": case.pk, "threat_class": case.threat_class.name},
            "decision": {
                "action": decision.action,
                "action_label": Action(decision.action).label,
                "violation": decision.action != "no_violation",
                "rule": decision.rule,
                "rule_title": rule.get("title", ""),
                "policy": version.policy.name,
                "policy_version": version.number,
                "explanation": decision.public_explanation,
                "automated": decision.automated,
                "created_on": decision.created_at.date().isoformat(),
                "duration_days": decision.duration_days,
            },
            "statement": {"appeal_until": _appeal_until(decision.created_at)},
            "redress": ways,
        },
    )


def _report_outcome_base(decision, rendered):
    """The body every reporter of the decision's case is sent, but for its id and recipient."""
    return {
        "type": "notice",
        "kind": "report_outcome",
        "case": decision.case_id,
        "decision": decision.pk,
        "appeal": None,
        "outcome": decision.action,
        "language": rendered["language"],
        "text": _text(rendered),
    }


def report_outcomes_queue(decisions, *, now=None, templates=None) -> int:
    """Tell every reporter of each decision's case what was decided (``no_violation`` included); how many.

    Call inside the decisions' transaction with each decision's case, class,
    subject and policy version loaded. One statement for the whole batch
    (templates read once: ``templates`` from ``notice_templates``, else here).
    Idempotent per reporter and decision. Delivery is enqueued after commit.
    """
    now = now or timezone.now()
    decisions = [d for d in decisions if d.case.reporter_count]
    if not decisions:
        return 0
    if templates is None:
        templates = notice_templates(["report_outcome"])
    ways = redress()
    rendered = notices_render(
        kind="report_outcome",
        requests=[_report_outcome_request(d, ways=ways) for d in decisions],
        templates=templates,
    )
    rows = [
        {"case_id": d.case_id, "decision_id": d.pk, "base": _report_outcome_base(d, r)}
        for d, r in zip(decisions, rendered, strict=True)
    ]
    with connection.cursor() as cur:
        cur.execute(_REPORT_OUTCOMES_SQL, {"rows": json.dumps(rows), "now": now})
        created = len(cur.fetchall())
    if created:
        _enqueue_delivery()
    return created


def appeal_outcome_queue(*, appeal_id, case_id, decision_id, appellant, outcome, rendered, now=None):
    """Tell the appellant the outcome of their appeal (``upheld``, ``overturned`` or ``modified``); once per appeal."""
    now = now or timezone.now()
    notice = Notice(
        key=f"appeal_outcome:{appeal_id}",
        kind=Notice.Kind.APPEAL_OUTCOME,
        case_id=case_id,
        decision_id=decision_id,
        next_attempt_at=now,
        created_at=now,
    )
    notice.payload = {
        "id": str(notice.public_id),
        "type": "notice",
        "kind": "appeal_outcome",
        "recipient": {"role": "appellant", "external_id": appellant},
        "case": case_id,
        "decision": decision_id,
        "appeal": appeal_id,
        "outcome": outcome,
        "language": rendered["language"],
        "text": _text(rendered),
    }
    created = Notice.objects.bulk_create([notice], ignore_conflicts=True)
    _enqueue_delivery()
    return created[0] if created else None


_RECEIPTS_SQL = """
WITH last AS (
    SELECT COALESCE(max(signal_id), 0) AS id FROM reviews_notice WHERE kind = 'report_received'
),
rows AS (
    SELECT gen_random_uuid() AS pid, s.id, s.case_id, s.external_id AS signal_external_id, s.threat_class_id,
           r.external_id AS reporter
      FROM casework_signal s JOIN casework_reporter r ON r.id = s.reporter_id
     WHERE s.id > (SELECT id FROM last) AND s.received_at >= %(since)s
     ORDER BY s.id LIMIT %(batch)s
)
INSERT INTO reviews_notice (public_id, key, kind, case_id, decision_id, signal_id, payload, status, attempts,
                            next_attempt_at, last_error, created_at, delivered_at)
SELECT pid, 'report_received:' || id::text, 'report_received', case_id, NULL, id,
       %(base)s::jsonb || jsonb_build_object('id', pid::text, 'case', case_id,
                                             'report', signal_external_id,
                                             'recipient', jsonb_build_object('role', 'reporter',
                                                                             'external_id', reporter)),
       'pending', 0, %(now)s, '', %(now)s, NULL
  FROM rows
ON CONFLICT (key) DO NOTHING
RETURNING id
"""


def report_receipts_queue(*, now=None) -> int:
    """Acknowledge reports received since the last acknowledged one (Art. 16(4)); how many.

    Only with ``DOCKET_ACKNOWLEDGE_REPORTS``. Reads forward from the last
    acknowledged signal id (an index probe), in batches.
    """
    if not settings.DOCKET_ACKNOWLEDGE_REPORTS:
        return 0
    now = now or timezone.now()
    rendered = notice_render(kind="report_received", language=_language(), context={"redress": redress()})
    base = {
        "type": "notice",
        "kind": "report_received",
        "decision": None,
        "appeal": None,
        "outcome": None,
        "language": rendered["language"],
        "text": _text(rendered),
    }
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                _RECEIPTS_SQL,
                {"since": now - RECEIPT_LOOKBACK, "batch": RECEIPT_BATCH, "base": json.dumps(base), "now": now},
            )
            created = len(cur.fetchall())
        total += created
        if created < RECEIPT_BATCH:
            return total


def _enqueue_delivery():
    # By the task's name: reviews.tasks imports this module. A broker outage leaves the notices to the sweep.
    enqueue_on_commit("reviews.tasks.deliver_due_notices", what="notice delivery")


def notices_deliver_due(*, now=None, limit=1000) -> dict:
    """Acknowledge new reports (when on), then deliver due notices one at a time; counts by outcome.

    Each row is locked (``SKIP LOCKED``) while it is sent, so concurrent
    sweeps never send one twice; its body and id are the same on every retry.
    """
    counts = {}
    if not settings.PLATFORM_WEBHOOK_URL:
        return counts
    report_receipts_queue(now=now)
    for _ in range(limit):
        moment = now or timezone.now()
        with transaction.atomic():
            notice = (
                Notice.objects.select_for_update(no_key=True, skip_locked=True)
                .filter(status=Notice.Status.PENDING, next_attempt_at__lte=moment)
                .order_by("next_attempt_at", "id")
                .first()
            )
            if notice is None:
                break
            outcome = attempt_send(notice, url=settings.PLATFORM_WEBHOOK_URL, now=moment)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
