"""Statements of reasons: made once with the decision, submitted to the EU Transparency Database.

``decision_publish`` runs inside the decision pipeline, in the
decision's transaction: it checks the decision's DSA choices (ground, legal
reference, territorial scope, duration), builds the statement from the case as
it is at that moment, checks it with ``sor_validate`` and stores it on the
decision, with a row in the submission outbox. Everything later (the API, the
webhooks, the submission) serves that snapshot, so edits to classes, policies
or templates and the retention purge never change a statement already given.

``statements_submit_due`` posts the outbox to ``POST {DSA_TDB_URL}/api/v1/statements``
in batches of up to 100 with the bearer token, as that API answers:
``201`` all stored; ``422`` with ``errors.statement_<i>`` rejects those
statements (their errors kept) and nothing else was stored, so the rest are
sent again at once; ``422`` with ``errors.existing_puids`` means those were
already stored (submitted) and the rest go again; ``429`` waits for
``Retry-After``; any other failure backs off exponentially and retries.
"""

import json
import logging
import time
import uuid
from datetime import timedelta
from functools import cache

import redis
import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from casework.models import Case

from .models import Decision, StatementSubmission
from .notices import report_outcomes_queue
from .sor import sor_validate, statement_of_reasons, statement_terms
from .webhooks import enforcement_payloads_fix

log = logging.getLogger(__name__)

RECENT_REJECTIONS = 10
BATCH_SIZE = 100  # the API's ``statements: required|array|between:1,100``
MAX_BACKOFF_SECONDS = 6 * 3600
AUTOMATED_DECISION_PARTIALLY = "AUTOMATED_DECISION_PARTIALLY"


def tdb_configured() -> bool:
    return bool(getattr(settings, "DSA_TDB_URL", "") and getattr(settings, "DSA_TDB_TOKEN", ""))


# --- the snapshot ------------------------------------------------------------------------


def _sources(case_id):
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT DISTINCT src.kind, COALESCE(NULLIF(src.name, ''), src.slug), src.dsa_article_16
              FROM casework_signal s JOIN casework_signalsource src ON src.id = s.source_id
             WHERE s.case_id = %s
             ORDER BY 1, 2
            """,
            [case_id],
        )
        return [tuple(row) for row in cur.fetchall()]


def decision_publish(
    *,
    decision_id,
    public_explanation="",
    territorial_scope=None,
    decision_ground=None,
    legal_ground=None,
    group_decision=False,
    notify_reporters=True,
) -> dict | None:
    """What a decision tells the world, fixed now, in the decision's transaction; returns the statement.

    The statement of reasons is built, checked and stored on the decision
    with its submission outbox row; the decision's enforcement webhook bodies
    (with what the user is told) are built and stored; the case's reporters are each sent a
    ``report_outcome`` notice (unless ``notify_reporters`` is off: a decision
    replaced on appeal was reported on already).

    ``400 invalid`` (naming the field) for a DSA choice the class does not
    allow, a termination with a duration, or an end date past what the
    Transparency Database accepts: the caller's transaction, and so the
    decision, is rolled back. ``no_violation`` gets no statement. A statement
    the validator refuses is stored ``rejected`` with the validator's errors
    (shown on the dashboard), never sent.
    """
    decision = Decision.objects.select_related("case__threat_class", "case__subject", "policy_version__policy").get(
        pk=decision_id
    )
    explanation = (public_explanation or "").strip()[:2000]
    decision.public_explanation = explanation
    terms = statement_terms(
        threat_class=decision.case.threat_class,
        action=decision.action,
        duration_days=decision.duration_days,
        decided_on=decision.created_at.date(),
        decision_ground=decision_ground,
        legal_ground=legal_ground,
        territorial_scope=territorial_scope,
    )
    automated = None
    if group_decision and not decision.automated:
        automated = AUTOMATED_DECISION_PARTIALLY
    statement = statement_of_reasons(
        decision, terms=terms, sources=_sources(decision.case_id), automated_decision=automated
    )
    now = timezone.now()
    errors = {}
    if statement is not None:
        problems = sor_validate(statement)
        for problem in problems:
            field, _, message = problem.partition(": ")
            errors.setdefault(field, []).append(message)
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH d AS (
                UPDATE reviews_decision SET statement = %(statement)s::jsonb, public_explanation = %(explanation)s
                 WHERE id = %(decision)s RETURNING id
            )
            INSERT INTO reviews_statementsubmission (decision_id, puid, status, attempts, next_attempt_at, errors,
                                                     last_error, tdb_uuid, created_at, submitted_at)
            SELECT d.id, %(puid)s, %(status)s, 0, %(now)s, %(errors)s::jsonb, '', '', %(now)s, NULL
              FROM d WHERE %(puid)s::text IS NOT NULL
            """,
            {
                "statement": json.dumps(statement) if statement is not None else None,
                "explanation": explanation,
                "decision": decision.pk,
                "puid": statement["puid"] if statement else None,
                "status": "rejected" if errors else "pending",
                "errors": json.dumps(errors),
                "now": now,
            },
        )
    if statement is not None and not errors:
        transaction.on_commit(_enqueue_submission)
    decision.statement = statement
    enforcement_payloads_fix(decision_id=decision.pk)
    if notify_reporters and decision.case.reporter_count:
        report_outcomes_queue(decision=decision, now=now)
    return statement


def _enqueue_submission():
    if not tdb_configured():
        return
    from .tasks import submit_statements

    try:
        submit_statements.delay()
    except Exception:  # broker down: the periodic sweep submits them
        log.warning("could not enqueue the statement submission", exc_info=True)


def transparency_status(decision) -> dict:
    """Decision detail's ``transparency_db``: ``{status, puid, submitted_at, errors}``."""
    if decision.statement is None:
        return {"status": "not_required", "puid": None, "submitted_at": None, "errors": {}}
    submission = getattr(decision, "submission", None)
    puid = decision.statement.get("puid")
    if submission is None:
        status = "pending" if tdb_configured() else "not_configured"
        return {"status": status, "puid": puid, "submitted_at": None, "errors": {}}
    status = submission.status
    if status == StatementSubmission.Status.PENDING and not tdb_configured():
        status = "not_configured"
    return {
        "status": status,
        "puid": submission.puid,
        "submitted_at": submission.submitted_at,
        "errors": submission.errors or {},
    }


def transparency_db_overview(user) -> dict:
    """The dashboard's panel: pending and rejected submissions on cases the user may see, newest rejections listed."""
    rows = StatementSubmission.objects.filter(
        status__in=(StatementSubmission.Status.PENDING, StatementSubmission.Status.REJECTED),
        decision__case__in=Case.objects.visible_to(user),
    )
    counts = rows.aggregate(
        pending=Count("id", filter=Q(status=StatementSubmission.Status.PENDING)),
        rejected=Count("id", filter=Q(status=StatementSubmission.Status.REJECTED)),
    )
    recent = []
    if counts["rejected"]:
        recent = list(
            rows.filter(status=StatementSubmission.Status.REJECTED)
            .order_by("-created_at", "-id")
            .values("decision_id", "puid", "errors")[:RECENT_REJECTIONS]
        )
    return {"configured": tdb_configured(), **counts, "recent_rejections": recent}


# --- the submission -----------------------------------------------------------------------


# A sliding one-second window shared by every worker: a sorted set of call times in Redis,
# checked and added to atomically. The service counts per second, so a fixed window
# (two bursts either side of a boundary) could still trip it.
_RATE_SCRIPT = """
local key, now, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 1)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, member)
  redis.call('EXPIRE', key, 5)
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]
return tostring(tonumber(oldest) + 1 - now)
"""


@cache
def _redis():
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def _rate_limit_wait():
    """Wait until a call keeps this installation within ``DSA_TDB_MAX_REQUESTS_PER_SECOND`` over any second."""
    limit = max(int(getattr(settings, "DSA_TDB_MAX_REQUESTS_PER_SECOND", 100)), 1)
    key = f"{settings.CACHES['default'].get('KEY_PREFIX', 'docket')}:dsa-tdb-calls"
    while True:
        try:
            wait = float(_redis().eval(_RATE_SCRIPT, 1, key, repr(time.time()), limit, uuid.uuid4().hex))
        except redis.RedisError:  # Redis down: this process spaces its own calls
            time.sleep(1 / limit)
            return
        if wait <= 0:
            return
        time.sleep(min(wait, 1.0) + 0.001)


def _backoff(attempts):
    base = settings.DOCKET["WEBHOOK_BACKOFF_SECONDS"]
    return min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def _post(statements):
    """``(status, body or None, retry_after or None, error text)`` of one call."""
    _rate_limit_wait()
    url = settings.DSA_TDB_URL.rstrip("/") + "/api/v1/statements"
    try:
        response = requests.post(
            url,
            data=json.dumps({"statements": statements}),
            headers={
                "Authorization": f"Bearer {settings.DSA_TDB_TOKEN}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            timeout=settings.DOCKET["WEBHOOK_TIMEOUT_SECONDS"] * 4,
            allow_redirects=False,
        )
    except requests.RequestException as e:
        return None, None, None, f"{type(e).__name__}: {e}"[:1000]
    try:
        body = response.json()
    except ValueError:
        body = None
    retry_after = response.headers.get("Retry-After")
    try:
        retry_after = max(int(retry_after), 1) if retry_after is not None else None
    except ValueError:
        retry_after = None
    return response.status_code, body, retry_after, f"HTTP {response.status_code}: {response.text[:500]}"


def _rejections(body, count):
    """``{index: {field: [messages]}}`` from a 422's ``errors.statement_<i>`` keys."""
    errors = (body or {}).get("errors") if isinstance(body, dict) else None
    found = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            if isinstance(key, str) and key.startswith("statement_") and key[10:].isdigit():
                index = int(key[10:])
                if index < count:
                    found[index] = value if isinstance(value, dict) else {"statement": [str(value)]}
    return found


def _existing_puids(body):
    """Puids the database already holds (its duplicate answer), as a set."""
    if not isinstance(body, dict):
        return set()
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    puids = errors.get("existing_puids") or body.get("existing_puids") or []
    existing = body.get("existing")
    if isinstance(existing, dict) and isinstance(existing.get("puid"), str):
        puids = [*puids, existing["puid"]]
    return {p for p in puids if isinstance(p, str)}


def _submit_batch(rows, now):
    """Post one locked batch and record the outcome of each row; returns counts and the wait asked for."""
    statements = [row.decision.statement for row in rows]
    status, body, retry_after, error = _post(statements)
    counts = {}

    def mark(row, outcome, **fields):
        for name, value in fields.items():
            setattr(row, name, value)
        row.save(
            update_fields=["status", "attempts", "next_attempt_at", "errors", "last_error", "tdb_uuid", "submitted_at"]
        )
        counts[outcome] = counts.get(outcome, 0) + 1

    if status == 201:
        stored = {s.get("puid"): s for s in (body or {}).get("statements", []) if isinstance(s, dict)}
        for row in rows:
            uuid = str((stored.get(row.puid) or {}).get("uuid") or "")[:64]
            mark(
                row,
                "submitted",
                status="submitted",
                attempts=row.attempts + 1,
                submitted_at=timezone.now(),
                errors={},
                last_error="",
                tdb_uuid=uuid,
            )
        return counts, None
    if status == 422:
        rejected = _rejections(body, len(rows))
        existing = _existing_puids(body)
        if rejected or existing:
            for index, row in enumerate(rows):
                if index in rejected:
                    mark(
                        row,
                        "rejected",
                        status="rejected",
                        attempts=row.attempts + 1,
                        errors=rejected[index],
                        last_error="",
                    )
                elif row.puid in existing:
                    # Already in the database (an earlier call that timed out after storing it).
                    mark(
                        row,
                        "submitted",
                        status="submitted",
                        attempts=row.attempts + 1,
                        submitted_at=timezone.now(),
                        errors={},
                        last_error="",
                    )
                else:
                    # All-or-nothing: this one was valid but not stored; it goes in the next call.
                    mark(row, "retry", attempts=row.attempts + 1, next_attempt_at=now, last_error="")
            return counts, None
    wait = retry_after if status == 429 and retry_after else None
    for row in rows:
        attempts = row.attempts + 1
        delay = wait if wait is not None else _backoff(attempts)
        mark(row, "retry", attempts=attempts, next_attempt_at=now + timedelta(seconds=delay), last_error=error)
    return counts, wait


def statements_submit_due(*, now=None, max_batches=100) -> dict:
    """Submit due outbox rows in batches of up to 100, each batch in its own short transaction.

    Idempotent and safe to run in several workers at once (rows are locked
    ``SKIP LOCKED`` while their batch is in flight). Returns counts by
    outcome (``submitted``, ``rejected``, ``retry``); nothing without
    ``DSA_TDB_URL`` and ``DSA_TDB_TOKEN``.
    """
    totals = {}
    if not tdb_configured():
        return totals
    for _ in range(max_batches):
        moment = now or timezone.now()
        with transaction.atomic():
            rows = list(
                StatementSubmission.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("decision")
                .filter(status=StatementSubmission.Status.PENDING, next_attempt_at__lte=moment)
                .order_by("next_attempt_at", "id")[:BATCH_SIZE]
            )
            if not rows:
                break
            counts, wait = _submit_batch(rows, moment)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        if wait is not None or ("retry" in counts and not ({"submitted", "rejected"} & set(counts))):
            break  # the service asked us to wait, or is failing: the backoff brings us back
    return totals


def statement_submission_retry(*, submission_id) -> StatementSubmission:
    """Send a rejected statement again (after the cause was fixed at the database's side)."""
    with transaction.atomic():
        row = StatementSubmission.objects.select_for_update().get(pk=submission_id)
        if row.status == StatementSubmission.Status.REJECTED:
            row.status = StatementSubmission.Status.PENDING
            row.next_attempt_at = timezone.now()
            row.save(update_fields=["status", "next_attempt_at"])
    return row
