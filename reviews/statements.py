"""Statements of reasons: made once with the decision, submitted to the EU Transparency Database.

``decisions_publish`` runs inside the decision pipeline, in the decisions'
transaction, once for the whole batch: it checks each decision's DSA choices
(ground, legal reference, territorial scope, duration), builds the statement
from the case as it is at that moment, checks it with ``sor_validate`` and
stores it on the decision, with a row in the submission outbox; then the
enforcement bodies and the reporters' notices. Everything later (the API, the
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
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import redis
import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from casework.models import Case
from docket.conf import setting
from docket.errors import DocketError
from docket.queueing import enqueue_on_commit
from policies.notices import notice_templates

from .models import Decision, StatementSubmission
from .notices import report_outcomes_queue
from .sor import ACTION_RESTRICTIONS, sor_validate_many, statement_of_reasons, statement_terms
from .webhooks import enforcements_insert

log = logging.getLogger(__name__)

RECENT_REJECTIONS = 10
BATCH_SIZE = 100  # the API's ``statements: required|array|between:1,100``
MAX_BACKOFF_SECONDS = 6 * 3600
AUTOMATED_DECISION_PARTIALLY = "AUTOMATED_DECISION_PARTIALLY"


def tdb_configured() -> bool:
    return bool(settings.DSA_TDB_URL and settings.DSA_TDB_TOKEN)


# --- the snapshot ------------------------------------------------------------------------


@dataclass(slots=True)
class Publication:
    """A decision to publish and the DSA choices made with it.

    The decision comes with its case (class, subject) and policy version
    (policy) loaded. ``group``: a senior's decision on a group of cases, stated
    as partially automated. ``notify_reporters`` off for a decision replaced on
    appeal (its reporters were told already).
    """

    decision: Decision
    territorial_scope: list | None = None
    decision_ground: str | None = None
    legal_ground: str | None = None
    group: bool = False
    notify_reporters: bool = True


def _sources(case_ids) -> dict:
    """How each case came to the platform's attention: ``{case id: [(kind, name, art16)]}``, one query."""
    found = {case_id: [] for case_id in case_ids}
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT DISTINCT s.case_id, src.kind, COALESCE(NULLIF(src.name, ''), src.slug), src.dsa_article_16
              FROM casework_signal s JOIN policies_signalsource src ON src.id = s.source_id
             WHERE s.case_id = ANY(%s)
             ORDER BY 1, 2, 3, 4
            """,
            [sorted(found)],
        )
        for case_id, *source in cur.fetchall():
            found[case_id].append(tuple(source))
    return found


def _statement(publication, sources):
    """The publication's statement of reasons (None for no restriction), its DSA choices checked first."""
    decision = publication.decision
    terms = statement_terms(
        threat_class=decision.case.threat_class,
        action=decision.action,
        duration_days=decision.duration_days,
        decided_on=decision.created_at.date(),
        decision_ground=publication.decision_ground,
        legal_ground=publication.legal_ground,
        territorial_scope=publication.territorial_scope,
    )
    automated = None
    if publication.group and not decision.automated:
        automated = AUTOMATED_DECISION_PARTIALLY
    return statement_of_reasons(decision, terms=terms, sources=sources, automated_decision=automated)


# The statements and their submission outbox rows, for a batch of decisions in one statement.
_STATEMENTS_SQL = """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
             AS v(decision_id bigint, statement jsonb, status text, errors jsonb)
),
d AS (
    UPDATE reviews_decision d SET statement = v.statement FROM v WHERE d.id = v.decision_id RETURNING d.id
)
INSERT INTO reviews_statementsubmission (decision_id, puid, status, attempts, next_attempt_at, errors,
                                         last_error, tdb_uuid, created_at, submitted_at)
SELECT v.decision_id, v.statement ->> 'puid', v.status, 0, %(now)s, v.errors, '', '', %(now)s, NULL
  FROM v ORDER BY v.decision_id
ON CONFLICT DO NOTHING
RETURNING id, decision_id
"""


def statements_store(publications, *, now=None, refused=None) -> list:
    """Build, check and store each publication's statement of reasons with its submission outbox row.

    In the decisions' transaction; a constant number of queries for any batch.
    Sets and returns each decision's ``statement`` (None for ``no_violation``:
    nothing restricted, nothing stored). ``400 invalid`` (naming the field) for
    a DSA choice the class does not allow, a termination with a duration, or an
    end date past what the Transparency Database accepts, before any statement
    is written; or, when ``refused`` is a dict, those decisions are left without
    a statement and collected there (decision id -> the error). A statement the
    validator refuses is stored ``rejected`` with the validator's errors (shown
    on the dashboard), never sent.
    """
    publications = list(publications)
    restricting = [p for p in publications if p.decision.action in ACTION_RESTRICTIONS]
    sources = _sources({p.decision.case_id for p in restricting}) if restricting else {}
    made = []
    for publication in publications:
        decision = publication.decision
        try:
            decision.statement = _statement(publication, sources.get(decision.case_id, []))
        except DocketError as e:
            if refused is None:
                raise
            decision.statement = None
            refused[decision.pk] = e
            continue
        if decision.statement is not None:
            made.append(decision)
    rows = []
    for decision, problems in zip(made, sor_validate_many([d.statement for d in made]), strict=True):
        errors = {}
        for problem in problems:
            field, _, message = problem.partition(": ")
            errors.setdefault(field, []).append(message)
        rows.append(
            {
                "decision_id": decision.pk,
                "statement": decision.statement,
                "status": "rejected" if errors else "pending",
                "errors": errors,
            }
        )
    if rows:
        now = now or timezone.now()
        with connection.cursor() as cur:
            cur.execute(_STATEMENTS_SQL, {"rows": json.dumps(rows), "now": now})
            stored = {decision_id: pk for pk, decision_id in cur.fetchall()}
        if any(row["status"] == "pending" for row in rows):
            _enqueue_submission()
        decisions = {p.decision.pk: p.decision for p in publications}
        for row in rows:
            if row["decision_id"] in stored:
                _submission_remember(decisions[row["decision_id"]], row, pk=stored[row["decision_id"]], now=now)
    return [p.decision.statement for p in publications]


def _submission_remember(decision, row, *, pk, now):
    """Cache on ``decision`` the submission row ``_STATEMENTS_SQL`` just stored for it (what
    ``transparency_status`` reads), so the decision's answer does not read it again."""
    values = {
        "id": pk,
        "decision_id": decision.pk,
        "puid": row["statement"]["puid"],
        "status": row["status"],
        "attempts": 0,
        "next_attempt_at": now,
        "errors": row["errors"],
        "last_error": "",
        "tdb_uuid": "",
        "created_at": now,
        "submitted_at": None,
    }
    names = [f.attname for f in StatementSubmission._meta.concrete_fields]
    decision.submission = StatementSubmission.from_db(connection.alias, names, [values[n] for n in names])


def decisions_publish(publications, *, enforcements=(), now=None) -> None:
    """What new decisions tell the world, fixed now, in their transaction; a constant number of queries.

    Each statement of reasons is built, checked and stored with its submission
    outbox row (``statements_store``); the enforcement webhook bodies (with
    what the user is told) of ``enforcements``, the decisions' new outbox rows
    (not yet written), are built and the rows written with them
    (``webhooks.enforcements_insert``); each reporter of each case is sent a
    ``report_outcome`` notice (unless the publication's ``notify_reporters`` is
    off). Message templates are read once for the batch. ``400 invalid`` as
    ``statements_store``: the caller's transaction, and so the decisions, roll back.
    """
    publications = list(publications)
    now = now or timezone.now()
    statements_store(publications, now=now)
    templates = notice_templates(["decision_notice", "appeal_outcome", "report_outcome"])
    enforcements_insert(enforcements, templates=templates)
    report_outcomes_queue([p.decision for p in publications if p.notify_reporters], now=now, templates=templates)


BACKFILL_BATCH = 500


def statements_backfill(*, batch_size=BACKFILL_BATCH, max_batches=None, now=None) -> dict:
    """Make the statements of reasons that earlier decisions lack; safe to run again and alongside the queue.

    For each decision that restricts something and has no stored statement
    (made before statements were stored with the decision), oldest first: its
    statement as the pipeline makes it, from its own policy version, date and
    duration, the class's default DSA choices (stated as partially automated
    for a campaign decision), with its submission outbox row. Bounded batches
    of ``batch_size``, each in its own short transaction, skipping decisions
    another transaction holds (the next run makes those). A decision whose
    recorded facts the rules refuse (a ban recorded with a duration, an end
    past 2038, an illegal-content class without a legal ground) is left
    without a statement. Returns ``{"made": n, "refused": {decision id: message}}``.
    """
    made, refused, after, batches = 0, {}, 0, 0
    while max_batches is None or batches < max_batches:
        batches += 1
        errors = {}
        with transaction.atomic():
            decisions = list(
                Decision.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
                .select_related("case__threat_class", "case__subject", "policy_version__policy")
                .filter(statement__isnull=True, action__in=list(ACTION_RESTRICTIONS), pk__gt=after)
                .order_by("pk")[:batch_size]
            )
            if not decisions:
                break
            after = decisions[-1].pk
            statements = statements_store(
                [Publication(decision=d, group=d.campaign_id is not None) for d in decisions],
                now=now,
                refused=errors,
            )
        made += sum(statement is not None for statement in statements)
        refused.update({decision_id: e.detail for decision_id, e in errors.items()})
        if len(decisions) < batch_size:
            break
    return {"made": made, "refused": refused}


def _enqueue_submission():
    # By the task's name: reviews.tasks imports this module. A broker outage leaves the statements to the sweep.
    if tdb_configured():
        enqueue_on_commit("reviews.tasks.submit_statements", what="statement submission")


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
    limit = max(int(settings.DSA_TDB_MAX_REQUESTS_PER_SECOND), 1)
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
    base = setting("WEBHOOK_BACKOFF_SECONDS")
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
            timeout=setting("WEBHOOK_TIMEOUT_SECONDS") * 4,
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

    def submitted(row, **fields):
        mark(
            row,
            "submitted",
            status="submitted",
            attempts=row.attempts + 1,
            submitted_at=timezone.now(),
            errors={},
            last_error="",
            **fields,
        )

    if status == 201:
        stored = {s.get("puid"): s for s in (body or {}).get("statements", []) if isinstance(s, dict)}
        for row in rows:
            submitted(row, tdb_uuid=str((stored.get(row.puid) or {}).get("uuid") or "")[:64])
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
                    submitted(row)
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
                StatementSubmission.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
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
        row = StatementSubmission.objects.select_for_update(no_key=True).get(pk=submission_id)
        if row.status == StatementSubmission.Status.REJECTED:
            row.status = StatementSubmission.Status.PENDING
            row.next_attempt_at = timezone.now()
            row.save(update_fields=["status", "next_attempt_at"])
    return row
