"""Enforcement delivery: the outbox rows POSTed, signed, to the platform's webhook.

A row is sent while it is locked (``FOR NO KEY UPDATE SKIP LOCKED``), so two workers
never send one row at the same time; its body is built once and stored, so
every retry sends the same ``id`` and the same bytes. Failures back off
exponentially; after ``WEBHOOK_MAX_ATTEMPTS`` the row is ``failed``.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from docket.conf import setting
from docket.hooks import Hook

from .models import Enforcement

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Docket-Signature"
# Beside it, a signature over the send time and the body: ``t=<unix seconds>,sha256=<hex HMAC-SHA256 of
# "<t>." + body>``. A platform that checks ``t`` against its clock refuses a captured delivery replayed
# later (README, "Webhooks to the platform"); each attempt is stamped when it is sent.
TIMESTAMPED_SIGNATURE_HEADER = "X-Docket-Signature-Timestamped"
# Longest wait between two attempts, whatever the attempt count.
MAX_BACKOFF_SECONDS = 6 * 3600

# What the user is told about each of a list of outbox rows: ``{"notice": {...}}``, plus
# ``"appeal_outcome"`` (the outcome statement) for a row an appeal caused; ``templates``: the message
# templates already read for the batch. Appeals knows which appeal caused a row: it registers
# ``appeals.selectors.enforcement_notices`` here when ready (appeals builds on reviews).
payload_notices = Hook("reviews.webhooks.payload_notices")


def enforcement_payloads(enforcements, *, templates=None) -> list[dict]:
    """The webhook bodies of API.md for outbox rows, in their order.

    Each row's decision comes with its case (class, subject) and policy
    version (policy); what the user is told is read for all rows at once.
    """
    bodies = []
    for enforcement, notices in zip(enforcements, payload_notices(enforcements, templates=templates), strict=True):
        decision = enforcement.decision
        subject = decision.case.subject
        body = {
            "id": str(enforcement.public_id),
            "type": enforcement.kind,
            "decision": decision.pk,
            "subject": {"kind": subject.kind, "external_id": subject.external_id},
            "action": enforcement.action,
            "duration_days": enforcement.duration_days,
            # The statement fixed when the decision was made; a reversal states no new restriction.
            "statement_of_reasons": decision.statement if enforcement.kind == Enforcement.Kind.ENFORCE else None,
            **notices,
        }
        if enforcement.kind == Enforcement.Kind.REVERSE:
            body["reversal"] = {
                "reverses_statement": (decision.statement or {}).get("puid"),
                "overturned_at": decision.overturned_at.isoformat() if decision.overturned_at else None,
            }
        bodies.append(body)
    return bodies


def enforcement_payload(enforcement) -> dict:
    """The webhook body of API.md for one outbox row."""
    [body] = enforcement_payloads([enforcement])
    return body


def enforcement_payloads_store(enforcements, *, templates=None) -> int:
    """Build the bodies of outbox rows and store them, in one statement; how many.

    In the decision's transaction, so what the user is told is fixed when the
    decision is made: a template edited before the first delivery attempt
    changes nothing already decided.
    """
    enforcements = list(enforcements)
    if not enforcements:
        return 0
    bodies = enforcement_payloads(enforcements, templates=templates)
    for enforcement, body in zip(enforcements, bodies, strict=True):
        enforcement.payload = body
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE reviews_enforcement e SET payload = v.payload"
            " FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, payload jsonb) WHERE e.id = v.id",
            [json.dumps([{"id": e.pk, "payload": e.payload} for e in enforcements])],
        )
    return len(enforcements)


_ENFORCEMENTS_INSERT_SQL = """
INSERT INTO reviews_enforcement (public_id, decision_id, kind, action, duration_days, payload, status, attempts,
                                 next_attempt_at, last_error, created_at, delivered_at)
SELECT v.public_id, v.decision_id, v.kind, v.action, v.duration_days, v.payload, v.status, v.attempts,
       v.next_attempt_at, v.last_error, v.created_at, NULL
  FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS (
      public_id uuid, decision_id bigint, kind text, action text, duration_days int, payload jsonb, status text,
      attempts int, next_attempt_at timestamptz, last_error text, created_at timestamptz)
  ) WITH ORDINALITY AS v(public_id, decision_id, kind, action, duration_days, payload, status, attempts,
                         next_attempt_at, last_error, created_at, n)
 ORDER BY v.n
RETURNING id, public_id
"""


def enforcements_insert(enforcements, *, templates=None) -> int:
    """Write new outbox rows (unsaved ``Enforcement`` instances) with their bodies built, in one statement.

    The rows are written once, body included (not inserted empty, then rewritten); each instance gets
    its ``pk``. In the decision's transaction, like ``enforcement_payloads_store``. How many.
    """
    enforcements = list(enforcements)
    if not enforcements:
        return 0
    bodies = enforcement_payloads(enforcements, templates=templates)
    rows = []
    for enforcement, body in zip(enforcements, bodies, strict=True):
        enforcement.payload = body
        rows.append(
            {
                "public_id": str(enforcement.public_id),
                "decision_id": enforcement.decision_id,
                "kind": enforcement.kind,
                "action": enforcement.action,
                "duration_days": enforcement.duration_days,
                "payload": body,
                "status": enforcement.status,
                "attempts": enforcement.attempts,
                "next_attempt_at": enforcement.next_attempt_at.isoformat(),
                "last_error": enforcement.last_error,
                "created_at": enforcement.created_at.isoformat(),
            }
        )
    with connection.cursor() as cur:
        cur.execute(_ENFORCEMENTS_INSERT_SQL, [json.dumps(rows)])
        ids = {str(public_id): pk for pk, public_id in cur.fetchall()}
    for enforcement in enforcements:
        enforcement.pk = ids[str(enforcement.public_id)]
        enforcement._state.adding = False
        enforcement._state.db = connection.alias
    return len(enforcements)


def enforcement_payloads_fix(*, decision_id, rebuild=False) -> int:
    """Build and store the bodies of a decision's outbox rows that have none, in the decision's transaction.

    ``rebuild`` builds again the bodies never sent yet (an appeal that just
    linked the decision it made, in the same transaction).
    """
    rows = Enforcement.objects.filter(decision_id=decision_id)
    rows = rows.filter(attempts=0, status=Enforcement.Status.PENDING) if rebuild else rows.filter(payload={})
    rows = rows.select_related(
        "decision__case__subject", "decision__case__threat_class", "decision__policy_version__policy"
    )
    return enforcement_payloads_store(rows.order_by("pk"))


def body_bytes(payload) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_timestamped(body: bytes, secret: str, timestamp: int) -> str:
    """``t=<timestamp>,sha256=<hex>``: the HMAC covers the timestamp, so it cannot be moved forward."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},sha256={mac}"


def backoff_seconds(attempts: int) -> int:
    """Wait after the ``attempts``-th failure: base, 2 x base, 4 x base, ... capped."""
    base = setting("WEBHOOK_BACKOFF_SECONDS")
    return min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def post_signed(url, body):
    """POST a signed body; ``(ok, error text)``."""
    secret = settings.PLATFORM_WEBHOOK_SECRET
    try:
        response = requests.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(body, secret),
                TIMESTAMPED_SIGNATURE_HEADER: sign_timestamped(body, secret, int(time.time())),
            },
            timeout=setting("WEBHOOK_TIMEOUT_SECONDS"),
            allow_redirects=False,
        )
    except requests.RequestException as e:
        return False, f"{type(e).__name__}: {e}"[:1000]
    if 200 <= response.status_code < 300:
        return True, ""
    return False, f"HTTP {response.status_code}: {response.text[:500]}"


def _due(queryset, now):
    return queryset.filter(status=Enforcement.Status.PENDING, next_attempt_at__lte=now)


def _deliver_locked(enforcement, now) -> str:
    """Send one locked, due row and record the outcome. Returns the outcome's name."""
    url = settings.PLATFORM_WEBHOOK_URL
    if not url:
        return "unconfigured"
    if enforcement.kind == Enforcement.Kind.REVERSE:
        # A reversal must not overtake the enforcement it undoes.
        ahead = Enforcement.objects.filter(
            decision_id=enforcement.decision_id, kind="enforce", action=enforcement.action, status="pending"
        ).exists()
        if ahead:
            enforcement.next_attempt_at = now + timedelta(seconds=backoff_seconds(1))
            enforcement.save(update_fields=["next_attempt_at"])
            return "waiting"
    if not enforcement.payload:
        enforcement.payload = enforcement_payload(enforcement)
    return attempt_send(enforcement, url=url, now=now, extra_fields=("payload",))


def attempt_send(row, *, url, now, extra_fields=()):
    """POST an outbox row's stored body, signed, and record the attempt (enforcements and notices alike).

    Delivered on a 2xx; else retried after an exponential backoff, and
    ``failed`` after ``WEBHOOK_MAX_ATTEMPTS``. Returns ``delivered``, ``retry`` or ``failed``.
    """
    ok, error = post_signed(url, body_bytes(row.payload))
    row.attempts += 1
    if ok:
        row.status = "delivered"
        row.delivered_at = timezone.now()
        row.last_error = ""
    else:
        row.last_error = error
        if row.attempts >= setting("WEBHOOK_MAX_ATTEMPTS"):
            row.status = "failed"
        else:
            row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempts))
    row.save(update_fields=[*extra_fields, "attempts", "status", "delivered_at", "last_error", "next_attempt_at"])
    return row.status if ok or row.status == "failed" else "retry"


def _locked_due(now, enforcement_id=None):
    rows = Enforcement.objects.select_for_update(no_key=True, skip_locked=True, of=("self",)).select_related(
        "decision__case__subject", "decision__case__threat_class", "decision__policy_version__policy"
    )
    rows = _due(rows, now)
    if enforcement_id is not None:
        return rows.filter(pk=enforcement_id).first()
    return rows.order_by("next_attempt_at", "id").first()


def enforcement_deliver(*, enforcement_id, now=None) -> str:
    """Deliver one outbox row if it is pending and due and no other worker holds it.

    Idempotent: a delivered, failed, not-yet-due or busy row is left alone.
    Returns ``delivered``, ``retry``, ``failed``, ``waiting``, ``unconfigured`` or ``skipped``.
    """
    now = now or timezone.now()
    with transaction.atomic():
        enforcement = _locked_due(now, enforcement_id)
        if enforcement is None:
            return "skipped"
        return _deliver_locked(enforcement, now)


def enforcements_deliver_due(*, now=None, limit=500) -> dict:
    """Deliver due rows one at a time, each in its own short transaction; counts by outcome."""
    counts = {}
    if not settings.PLATFORM_WEBHOOK_URL:
        return counts
    for _ in range(limit):
        with transaction.atomic():
            enforcement = _locked_due(now or timezone.now())
            if enforcement is None:
                break
            outcome = _deliver_locked(enforcement, now or timezone.now())
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
