"""Reviews: claims, leases, hand-offs, decisions, strikes, enforcement and QA.

Every write of the reviews app goes through a function here. Lock order is
always case row first, then assignment/reviewer rows, so claims, decisions
and the lease sweep never deadlock each other. Side effects (webhook
delivery) are enqueued with ``transaction.on_commit``: nothing leaves Docket
before the decision that caused it has committed.
"""

import json
import logging
import random
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from casework.models import Case, Subject
from casework.services import (
    TRANSITIONS,
    actor_fields,
    case_event_add,
    case_transition,
    lock_case,
)
from docket import roles
from docket.errors import DocketError, conflict, forbidden, not_found
from policies.models import LADDER, VIOLATIONS, Policy, PolicyVersion

from .models import Assignment, Decision, Enforcement, QualityReview, Queue, Reviewer, Strike

log = logging.getLogger(__name__)

ESCALATION_QUEUES = ("escalations", "legal")
# Statuses a case can be claimed or assigned from: waiting in a queue.
CLAIMABLE = ("open", "escalated")


# --- helpers ----------------------------------------------------------------


def reviewer_of(who) -> Reviewer:
    """A ``Reviewer`` for a reviewer or a user; users without a profile may not review (403)."""
    if isinstance(who, Reviewer):
        return who
    try:
        return who.reviewer
    except (Reviewer.DoesNotExist, AttributeError):
        raise forbidden("Only reviewers can do this.") from None


def _user_of(who):
    return getattr(who, "user", who)


def _day_start(now):
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _lease_seconds():
    return settings.DOCKET["LEASE_SECONDS"]


def _reviewer_state(reviewer_id, queue_id, now):
    """Lock the reviewer row and read what a claim needs, in one round trip.

    The row lock serialises one reviewer's own concurrent claims (two tabs),
    so ``max_active`` holds even then; other reviewers are not blocked.
    """
    with connection.cursor() as cur:
        # Lock first, read after: a statement's subqueries keep the snapshot taken
        # before it waited for the lock, so the counts must come from a new statement.
        cur.execute("SELECT 1 FROM reviews_reviewer WHERE id = %s FOR UPDATE", [reviewer_id])
        cur.execute(
            """
            SELECT r.on_shift, r.max_active, r.graphic_budget, r.clearances,
                   (SELECT count(*) FROM reviews_assignment a
                     WHERE a.reviewer_id = r.id AND a.state = 'active'),
                   (SELECT count(*) FROM reviews_assignment a
                     WHERE a.reviewer_id = r.id AND a.graphic AND a.claimed_at >= %s),
                   EXISTS (SELECT 1 FROM reviews_reviewer_queues rq
                            WHERE rq.reviewer_id = r.id AND rq.queue_id = %s)
              FROM reviews_reviewer r WHERE r.id = %s
            """,
            [_day_start(now), queue_id, reviewer_id],
        )
        row = cur.fetchone()
    if row is None:
        raise forbidden("Only reviewers can do this.")
    keys = ("on_shift", "max_active", "graphic_budget", "clearances", "active", "graphic_today", "works_queue")
    return dict(zip(keys, row, strict=True))


def _check_clearance(state, *, queue, username):
    if queue.required_clearance and queue.required_clearance not in state["clearances"]:
        raise forbidden(
            f"{username} lacks the {queue.required_clearance} clearance this queue needs.", code="clearance_required"
        )


def _check_may_take(state, *, username):
    """Refusals that do not depend on which case comes next."""
    if not state["on_shift"]:
        raise conflict("off_shift", f"{username} is off shift.")
    if state["active"] >= state["max_active"]:
        raise conflict("capacity_reached", f"{username} already holds {state['active']} case(s), the maximum.")


def _check_exposure(state, *, graphic, username):
    if graphic and state["graphic_today"] >= state["graphic_budget"]:
        raise conflict(
            "exposure_budget_reached",
            f"{username} has reached today's exposure budget of {state['graphic_budget']} graphic case(s).",
        )


def _assignment_start(*, case, reviewer, now, by=None):
    """Give a locked, waiting case to a reviewer: the assignment, the move to in_review, the event."""
    lease = now + timedelta(seconds=_lease_seconds())
    assignment = Assignment.objects.create(
        case=case,
        reviewer=reviewer,
        graphic=case.threat_class.graphic,
        assigned_by=by,
        claimed_at=now,
        lease_expires_at=lease,
    )
    detail = {"assignment": assignment.pk, "reviewer": reviewer.user.get_username()}
    if by is not None:
        detail["assigned_by"] = by.get_username()
    case_transition(
        case=case, to="in_review", actor=by or reviewer, kind="assigned" if by else "claimed", detail=detail, at=now
    )
    return assignment


def _active_assignment(case_id):
    return (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("reviewer__user")
        .filter(case_id=case_id, state="active")
        .first()
    )


@contextmanager
def _prepared(sql, params):
    """Run a hot statement as a server-side prepared statement; yields the cursor holding its rows.

    The claim and decision statements are large CTEs that PostgreSQL takes longer
    to plan than to run. Django's cursors bind parameters client-side and never
    prepare, so these two go through a server-binding cursor with ``prepare=True``:
    planned once per connection, with Django's error wrapping and query logging kept.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor = ServerBindingCursor(connection.connection)
    try:
        with connection.wrap_database_errors:
            if connection.queries_logged:
                with connection.make_debug_cursor(cursor).debug_sql(sql, params):
                    cursor.execute(sql, params, prepare=True)
            else:
                cursor.execute(sql, params, prepare=True)
        yield cursor
    finally:
        cursor.close()


def _assignment_end(assignment, *, state, now):
    assignment.state = state
    assignment.ended_at = now
    assignment.save(update_fields=["state", "ended_at"])


# --- claims and leases ----------------------------------------------------------


# Claims may only take cases the transition table lets become in_review.
assert all("in_review" in TRANSITIONS[status] for status in CLAIMABLE)

# One statement, one snapshot taken after the reviewer row is locked: the counts,
# the pick (escalated cases first, then open ones by priority, over the partial
# claim index, SKIP LOCKED), and, when the checks pass, the assignment, the move
# to in_review and the "claimed" event (the same event case_transition writes).
# The open pick only runs when the escalated one finds nothing (Append + LIMIT).
_CLAIM_SQL = """
WITH counts AS (
    SELECT (SELECT count(*) FROM reviews_assignment
             WHERE reviewer_id = %(reviewer)s AND state = 'active') AS active
),
hidden AS (
    SELECT id FROM policies_threatclass WHERE restricted AND NOT (slug = ANY(%(clearances)s::text[]))
),
pick_escalated AS (
    SELECT c.id, c.status, c.threat_class_id FROM casework_case c
     WHERE c.queue_id = %(queue)s AND c.status = 'escalated'
       AND (SELECT active FROM counts) < %(max_active)s
       AND c.threat_class_id NOT IN (SELECT id FROM hidden)
       AND NOT EXISTS (SELECT 1 FROM reviews_assignment s WHERE s.case_id = c.id AND s.reviewer_id = %(reviewer)s
                        AND s.state = 'skipped' AND s.ended_at > %(skipped_since)s)
     ORDER BY c.priority DESC, c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED
),
pick_open AS (
    SELECT c.id, c.status, c.threat_class_id FROM casework_case c
     WHERE c.queue_id = %(queue)s AND c.status = 'open'
       AND (SELECT active FROM counts) < %(max_active)s
       AND c.threat_class_id NOT IN (SELECT id FROM hidden)
       AND NOT EXISTS (SELECT 1 FROM reviews_assignment s WHERE s.case_id = c.id AND s.reviewer_id = %(reviewer)s
                        AND s.state = 'skipped' AND s.ended_at > %(skipped_since)s)
     ORDER BY c.priority DESC, c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED
),
pick AS (
    SELECT p.*, tc.graphic FROM (
        (SELECT * FROM pick_escalated) UNION ALL (SELECT * FROM pick_open) LIMIT 1
    ) p JOIN policies_threatclass tc ON tc.id = p.threat_class_id
),
ins AS (
    INSERT INTO reviews_assignment (case_id, reviewer_id, state, graphic, claimed_at, lease_expires_at)
    SELECT pick.id, %(reviewer)s, 'active', pick.graphic, %(now)s, %(lease)s FROM pick
     -- today's exposure is only counted when the next case is graphic (CASE fixes the order)
     WHERE CASE WHEN pick.graphic THEN
               (SELECT count(*) FROM reviews_assignment
                 WHERE reviewer_id = %(reviewer)s AND graphic AND claimed_at >= %(day)s) < %(graphic_budget)s
           ELSE true END
    RETURNING id, case_id
),
moved AS (
    UPDATE casework_case c SET status = 'in_review', updated_at = %(now)s FROM ins
     WHERE c.id = ins.case_id RETURNING c.id
),
event AS (
    INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
    SELECT ins.case_id, %(now)s, %(user)s, %(username)s::text, 'claimed',
           jsonb_build_object('from', pick.status, 'to', 'in_review', 'assignment', ins.id,
                              'reviewer', %(username)s::text)
      FROM ins JOIN pick ON pick.id = ins.case_id
    RETURNING id
)
SELECT counts.active, pick.id, pick.graphic, ins.id, (SELECT count(*) FROM moved) + (SELECT count(*) FROM event)
  FROM counts LEFT JOIN pick ON true LEFT JOIN ins ON true
"""


@transaction.atomic
def queue_claim(*, reviewer, queue_slug) -> Assignment | None:
    """Hand this reviewer the highest-priority case of the queue they may take, or ``None``.

    Refuses with ``clearance_required`` (403), ``forbidden`` (403, not their
    queue, or not a moderator or senior), ``off_shift``, ``capacity_reached`` or ``exposure_budget_reached``
    (409, only when the next case is graphic), changing nothing. Escalated
    cases come before open ones; cases of restricted classes they lack
    clearance for, and cases they skipped within the skip cooldown, are passed
    over. ``SKIP LOCKED`` means two reviewers claiming at once get different
    cases and never wait for each other. Two statements in all: the claim is
    the hot path of every queue, so its reads and writes are one round trip.
    """
    reviewer = reviewer_of(reviewer)
    user = reviewer.user
    if not roles.has_any(user, (roles.MODERATOR, roles.SENIOR)):
        # Appeals staff have a reviewer profile too, but first-line review is not theirs (API and UI alike).
        raise forbidden("Only moderators and seniors claim cases.")
    username = user.get_username()
    now = timezone.now()
    with connection.cursor() as cur:
        # The reviewer row lock serialises one reviewer's own concurrent claims (two
        # tabs), so max_active holds even then; other reviewers are not blocked.
        cur.execute(
            """
            SELECT r.on_shift, r.max_active, r.graphic_budget, r.clearances, q.id, q.required_clearance,
                   EXISTS (SELECT 1 FROM reviews_reviewer_queues rq WHERE rq.reviewer_id = r.id AND rq.queue_id = q.id)
              FROM reviews_reviewer r LEFT JOIN reviews_queue q ON q.slug = %s
             WHERE r.id = %s FOR UPDATE OF r
            """,
            [queue_slug, reviewer.pk],
        )
        row = cur.fetchone()
        if row is None:
            raise forbidden("Only reviewers can do this.")
        on_shift, max_active, graphic_budget, clearances, queue_id, required_clearance, works_queue = row
        if queue_id is None:
            raise not_found("No such queue.")
        if required_clearance and required_clearance not in clearances:
            raise forbidden(
                f"{username} lacks the {required_clearance} clearance this queue needs.", code="clearance_required"
            )
        if not works_queue:
            raise forbidden(f"{username} does not work the {queue_slug} queue.")
        if not on_shift:
            raise conflict("off_shift", f"{username} is off shift.")
    lease = now + timedelta(seconds=_lease_seconds())
    with _prepared(
        _CLAIM_SQL,
        {
            "reviewer": reviewer.pk,
            "user": user.pk,
            "username": username,
            "queue": queue_id,
            "clearances": list(clearances),
            "max_active": max_active,
            "graphic_budget": graphic_budget,
            "day": _day_start(now),
            "skipped_since": now - timedelta(seconds=settings.DOCKET["SKIP_COOLDOWN_SECONDS"]),
            "now": now,
            "lease": lease,
        },
    ) as cur:
        active, case_id, graphic, assignment_id, _ = cur.fetchone()
    if active >= max_active:
        raise conflict("capacity_reached", f"{username} already holds {active} case(s), the maximum.")
    if case_id is None:
        return None
    if assignment_id is None:
        raise conflict(
            "exposure_budget_reached",
            f"{username} has reached today's exposure budget of {graphic_budget} graphic case(s).",
        )
    assignment = Assignment(
        id=assignment_id,
        case_id=case_id,
        reviewer=reviewer,
        state=Assignment.State.ACTIVE,
        graphic=graphic,
        claimed_at=now,
        lease_expires_at=lease,
    )
    assignment._state.adding = False
    return assignment


def _lock_own_assignment(assignment_id, reviewer):
    """Lock an active assignment (case row first) held by ``reviewer``."""
    reviewer = reviewer_of(reviewer)
    case_id = Assignment.objects.filter(pk=assignment_id).values_list("case_id", flat=True).first()
    if case_id is None:
        raise not_found("No such assignment.")
    case = lock_case(case_id)
    assignment = Assignment.objects.select_for_update(of=("self",)).get(pk=assignment_id)
    if assignment.reviewer_id != reviewer.pk:
        raise forbidden("Only the reviewer holding this case may do that.", code="not_assignee")
    if assignment.state != Assignment.State.ACTIVE:
        raise conflict("assignment_ended", f"This assignment has ended ({assignment.state}).")
    return case, assignment, reviewer


@transaction.atomic
def assignment_renew(*, assignment_id, reviewer) -> Assignment:
    """Extend the holder's lease by the lease length from now."""
    case, assignment, reviewer = _lock_own_assignment(assignment_id, reviewer)
    assignment.lease_expires_at = timezone.now() + timedelta(seconds=_lease_seconds())
    assignment.save(update_fields=["lease_expires_at"])
    return assignment


def _assignment_return(assignment_id, reviewer, *, state):
    case, assignment, reviewer = _lock_own_assignment(assignment_id, reviewer)
    now = timezone.now()
    _assignment_end(assignment, state=state, now=now)
    if case.status == "in_review":
        case_transition(
            case=case,
            to="open",
            actor=reviewer,
            kind=state,
            detail={"assignment": assignment.pk},
            at=now,
        )
    return assignment


@transaction.atomic
def assignment_release(*, assignment_id, reviewer) -> Assignment:
    """The holder gives the case back to its queue."""
    return _assignment_return(assignment_id, reviewer, state=Assignment.State.RELEASED)


@transaction.atomic
def assignment_skip(*, assignment_id, reviewer) -> Assignment:
    """The holder gives the case back; it is not served to them again for the skip cooldown."""
    return _assignment_return(assignment_id, reviewer, state=Assignment.State.SKIPPED)


# The lease sweep in one statement: lock what is due (skipping rows a decision in flight
# holds), expire the assignments, reopen the cases in review, write their events.
_LEASES_EXPIRE_SQL = """
WITH due AS (
    SELECT a.id, a.case_id, c.status FROM reviews_assignment a
      JOIN casework_case c ON c.id = a.case_id
     WHERE a.state = 'active' AND a.lease_expires_at <= %(now)s
       FOR UPDATE OF c, a SKIP LOCKED
),
expired AS (
    UPDATE reviews_assignment a SET state = 'expired', ended_at = %(now)s FROM due WHERE a.id = due.id
    RETURNING a.id
),
reopened AS (
    UPDATE casework_case c SET status = 'open', updated_at = %(now)s
      FROM due WHERE c.id = due.case_id AND due.status = 'in_review'
    RETURNING c.id, due.id AS assignment_id
),
events AS (
    INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
    SELECT id, %(now)s, NULL, %(system)s, 'lease_expired',
           jsonb_build_object('from', 'in_review', 'to', 'open', 'assignment', assignment_id)
      FROM reopened
)
SELECT count(*) FROM expired
"""


@transaction.atomic
def leases_expire(*, now=None) -> int:
    """End every active assignment whose lease has run out; its case goes back to open.

    Set-based: one statement whatever the count (the assignments expired, the
    cases in review reopened, a ``lease_expired`` event each). Rows locked by
    a decision in flight are skipped (the next sweep sees them if the decision
    did not happen). Returns the count.
    """
    with connection.cursor() as cur:
        cur.execute(_LEASES_EXPIRE_SQL, {"now": now or timezone.now(), "system": actor_fields(None)[1]})
        return cur.fetchone()[0]


@transaction.atomic
def case_assign(*, case_id, reviewer_username, by) -> Assignment:
    """A senior hands a waiting (or held) case to a named reviewer.

    Clearance, shift, capacity and exposure budget apply to the named reviewer
    exactly as for a claim. A current holder's assignment is ended (released).
    """
    by = _user_of(by)
    if not roles.has(by, roles.SENIOR):
        raise forbidden("Only seniors may assign cases.")
    target = (
        Reviewer.objects.select_related("user").filter(user__username=reviewer_username).first()
        if isinstance(reviewer_username, str)
        else None
    )
    if target is None:
        raise DocketError("invalid", "No such reviewer.", errors={"reviewer": ["No reviewer with that username."]})
    case = lock_case(case_id)
    if case.status not in (*CLAIMABLE, "in_review"):
        raise conflict("invalid_transition", f"A case that is {case.status} cannot be assigned.")
    now = timezone.now()
    state = _reviewer_state(target.pk, case.queue_id, now)
    username = target.user.get_username()
    queue = Queue.objects.get(pk=case.queue_id)
    if case.threat_class.restricted and case.threat_class.slug not in state["clearances"]:
        raise forbidden(f"{username} lacks the {case.threat_class.slug} clearance.", code="clearance_required")
    _check_clearance(state, queue=queue, username=username)
    _check_may_take(state, username=username)
    _check_exposure(state, graphic=case.threat_class.graphic, username=username)
    current = _active_assignment(case.pk)
    if current is not None:
        if current.reviewer_id == target.pk:
            return current
        _assignment_end(current, state=Assignment.State.RELEASED, now=now)
        case_transition(case=case, to="open", actor=by, kind="unassigned", detail={"assignment": current.pk}, at=now)
    return _assignment_start(case=case, reviewer=target, now=now, by=_user_of(by))


# --- decisions --------------------------------------------------------------------


def active_version_for(threat_class) -> PolicyVersion:
    version = (
        PolicyVersion.objects.filter(policy__threat_class=threat_class, status="active")
        .select_related("policy")
        .order_by("policy_id")
        .first()
    )
    if version is None:
        raise conflict("no_active_policy", f"The {threat_class.slug} class has no active policy version.")
    return version


def _validate_decision(*, version, action, rule, duration_days, automated=False):
    """Ladder, rule and duration checks; returns the normalised (rule, duration_days)."""
    if action not in version.ladder:
        raise DocketError(
            "action_not_allowed",
            f"{action!r} is not on the ladder of {version}: {', '.join(version.ladder)}.",
        )
    rule = (rule or "").strip()
    if rule and rule not in version.rule_codes():
        raise DocketError(
            "invalid",
            f"Unknown rule {rule!r} for {version}.",
            errors={"rule": [f"Choose from {version.rule_codes()}."]},
        )
    if action in VIOLATIONS and not rule and not automated:
        raise DocketError("invalid", "A violation must cite a rule.", errors={"rule": ["This field is required."]})
    if duration_days is not None and (
        isinstance(duration_days, bool) or not isinstance(duration_days, int) or not 1 <= duration_days <= 3650
    ):
        raise DocketError("invalid", "Invalid duration.", errors={"duration_days": ["Between 1 and 3650 days."]})
    if action == "suspend" and duration_days is None:
        raise DocketError(
            "invalid", "A suspension needs a duration.", errors={"duration_days": ["Required for suspend."]}
        )
    if action == "no_violation":
        duration_days = None
    return rule, duration_days


def _strike_account(*, kind, subject_id, owner_id):
    """The account a strike counts against: the subject itself, or its owner for content."""
    if kind == Subject.Kind.ACCOUNT:
        return subject_id
    return owner_id


# A decision's reporters: every distinct reporter of the case gets the same adjustment.
# Right-hand sides read the row before the update (SQL semantics), as one adjustment must.
_REPORTERS_SQL = """
UPDATE casework_reporter SET
    reports_decided = GREATEST(reports_decided + %(decided)s, 0),
    reports_upheld = CASE WHEN %(upheld)s > 0 THEN LEAST(reports_upheld + %(upheld)s, reports_decided + %(decided)s)
                          WHEN %(upheld)s < 0 THEN GREATEST(reports_upheld + %(upheld)s, 0)
                          ELSE reports_upheld END
 WHERE %(adjust_reporters)s
   AND id IN (SELECT reporter_id FROM casework_signal WHERE case_id = %(case)s AND reporter_id IS NOT NULL)
"""


def _reporters_adjust(case_id, *, decided=0, upheld=0):
    """Set-based: every distinct reporter of the case gets the same adjustment."""
    if not decided and not upheld:
        return 0
    with connection.cursor() as cur:
        cur.execute(_REPORTERS_SQL, {"decided": decided, "upheld": upheld, "adjust_reporters": True, "case": case_id})
        return cur.rowcount


def _enqueue_deliveries(enforcement_ids):
    """After commit, ask a worker to deliver; a broker outage only delays (the sweep catches up)."""
    if not enforcement_ids:
        return

    def send():
        from .tasks import deliver_enforcement

        for enforcement_id in enforcement_ids:
            try:
                deliver_enforcement.delay(enforcement_id)
            except Exception:  # broker down: the periodic sweep delivers it
                log.warning("could not enqueue delivery of enforcement %s", enforcement_id, exc_info=True)

    transaction.on_commit(send)


# What follows from a decision (the row ``d`` of the statement it is part of): the strike
# on the account, the reporters' record, the enforcement rows. One statement, whatever applies.
_EFFECTS_SQL = f"""
strike AS (
    INSERT INTO reviews_strike (account_id, decision_id, weight, created_at, expires_at)
    SELECT %(strike_account)s::bigint, d.id, %(strike_weight)s, %(now)s, %(strike_expires)s FROM d
     WHERE %(strike_account)s::bigint IS NOT NULL
),
reporters AS ({_REPORTERS_SQL}),
enforcements AS (
    INSERT INTO reviews_enforcement (public_id, decision_id, kind, action, duration_days, payload, status, attempts,
                                     next_attempt_at, last_error, created_at)
    SELECT gen_random_uuid(), d.id, 'enforce', e.action, e.duration_days, '{{}}'::jsonb, 'pending', 0,
           %(now)s, '', %(now)s
      FROM d CROSS JOIN unnest(%(enforce_actions)s::text[], %(enforce_durations)s::int[]) AS e(action, duration_days)
    RETURNING id
)
"""


def _effects(
    *, action, duration_days, case_id, account_id, legal_escalation, reporter_count, version, now, count_reporters=True
):
    """The parameters of ``_EFFECTS_SQL``: what a decision entails, human or automated.

    A violation adds a strike (weighted by the version, expiring after the
    strike window) to the account and is enforced, plus a ``legal_report`` on
    legal-escalation classes; the case's reporters count one more decided
    report, upheld if it was a violation (none: nothing to count).
    """
    violation = action in VIOLATIONS
    enforce = []
    if violation:
        enforce.append((action, duration_days))
        if legal_escalation and action != "legal_report":
            enforce.append(("legal_report", None))
    return {
        "case": case_id,
        "now": now,
        "strike_account": account_id if violation else None,
        "strike_weight": version.strike_weight,
        "strike_expires": now + timedelta(days=settings.DOCKET["STRIKE_WINDOW_DAYS"]),
        # reporter_count is the case's distinct reporters (kept by intake): none, nothing to count.
        "adjust_reporters": bool(count_reporters and reporter_count),
        "decided": 1,
        "upheld": 1 if violation else 0,
        "enforce_actions": [a for a, _ in enforce],
        "enforce_durations": [d for _, d in enforce],
    }


def _decision_effects(*, decision, case, version, now, count_reporters=True):
    """Strike, reporter accuracy, enforcement rows (delivered after commit) for a recorded decision."""
    subject = case.subject
    params = _effects(
        action=decision.action,
        duration_days=decision.duration_days,
        case_id=case.pk,
        account_id=_strike_account(kind=subject.kind, subject_id=subject.pk, owner_id=subject.owner_id),
        legal_escalation=case.threat_class.legal_escalation,
        reporter_count=case.reporter_count,
        version=version,
        now=now,
        count_reporters=count_reporters,
    )
    with connection.cursor() as cur:
        cur.execute(
            f"WITH d AS (SELECT %(decision)s::bigint AS id), {_EFFECTS_SQL} SELECT array(SELECT id FROM enforcements)",
            {**params, "decision": decision.pk},
        )
        enforcement_ids = sorted(cur.fetchone()[0])
    _enqueue_deliveries(enforcement_ids)
    return enforcement_ids


# Every status a decision may be made from may become decided (the transition table's rule).
assert all("decided" in TRANSITIONS[status] for status in Case.ACTIVE_STATUSES)

# One round trip, three statements: lock the case (and read what the checks need), then,
# each with a snapshot taken after the lock, complete the active assignment (its holder
# says who may decide) and read the class's active policy version. A refusal rolls it back.
_DECISION_LOCK_SQL = """
SELECT c.status, c.holdout, c.reporter_count, tc.slug, tc.restricted, tc.legal_escalation, s.kind, s.id, s.owner_id
  FROM casework_case c
  JOIN policies_threatclass tc ON tc.id = c.threat_class_id
  JOIN casework_subject s ON s.id = c.subject_id
 WHERE c.id = %(case)s
   FOR UPDATE OF c;
UPDATE reviews_assignment SET state = 'completed', ended_at = %(now)s
 WHERE case_id = %(case)s AND state = 'active'
RETURNING reviewer_id;
SELECT pv.id, pv.number, pv.ladder, pv.rules, pv.strike_weight, p.id, p.slug
  FROM policies_policyversion pv JOIN policies_policy p ON p.id = pv.policy_id
 WHERE pv.status = 'active' AND p.threat_class_id = (SELECT threat_class_id FROM casework_case WHERE id = %(case)s)
 ORDER BY pv.policy_id LIMIT 1
"""

# The decision, the case's move to decided with its event (as case_transition writes it),
# the QA sample and the effects: one statement.
_DECISION_SQL = f"""
WITH d AS (
    INSERT INTO reviews_decision (case_id, reviewer_id, action, rule, policy_version_id, rationale, duration_days,
                                  automated, holdout, qa_sampled, relabel, campaign_id, overturned, created_at)
    VALUES (%(case)s, %(reviewer)s, %(action)s, %(rule)s, %(version)s, %(rationale)s, %(duration_days)s,
            false, %(holdout)s, %(qa)s, false, %(campaign)s, false, %(now)s)
    RETURNING id
),
moved AS (
    UPDATE casework_case
       SET status = 'decided', decided_at = %(now)s, first_action_at = COALESCE(first_action_at, %(now)s),
           updated_at = %(now)s
     WHERE id = %(case)s
),
event AS (
    INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
    SELECT %(case)s, %(now)s, %(user)s, %(username)s::text, 'decided',
           jsonb_build_object('from', %(from)s::text, 'to', 'decided', 'decision', d.id, 'action', %(action)s::text,
                              'rule', %(rule)s::text, 'policy_version', %(version)s::bigint)
      FROM d
),
qa AS (
    INSERT INTO reviews_qualityreview (decision_id, status, action, rule, created_at)
    SELECT d.id, 'pending', '', '', %(now)s FROM d WHERE %(qa)s
),
{_EFFECTS_SQL}
SELECT d.id, array(SELECT id FROM enforcements) FROM d
"""


@transaction.atomic
def decision_make(
    *,
    case_id,
    reviewer,
    action,
    rule,
    rationale="",
    duration_days=None,
    campaign=None,
    on_behalf_of_senior=False,
) -> Decision:
    """Record a human decision on a case and everything that follows from it.

    Only the reviewer holding the case's active assignment may decide
    (``not_assignee``), unless ``on_behalf_of_senior`` and they are a senior
    (bulk and campaign decisions). The action must be on the ladder of the
    class's active policy version (``action_not_allowed``); a violation cites
    one of its rules and ``suspend`` needs ``duration_days`` (``invalid``).
    The decision records the version; the assignment completes; the case is
    decided; a violation adds a strike to the account, counts for the case's
    reporters and is enforced (plus a legal report on legal-escalation
    classes), delivered after commit; a sample goes to blind QA. Two
    statements in all: decisions are the other half of every queue cycle.
    """
    reviewer = reviewer_of(reviewer)
    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute(_DECISION_LOCK_SQL, {"case": case_id, "now": now})
        row = cur.fetchone()
        cur.nextset()
        holder = cur.fetchone()
        cur.nextset()
        version_row = cur.fetchone()
    if row is None:
        raise not_found("No such case.")
    status, holdout, reporter_count, class_slug, restricted, legal_escalation, kind, subject_id, owner_id = row
    if restricted and class_slug not in reviewer.clearances:
        raise not_found("No such case.")
    holder_id = holder[0] if holder else None
    if holder_id != reviewer.pk and not (on_behalf_of_senior and roles.has(reviewer.user, roles.SENIOR)):
        raise forbidden("Only the reviewer holding this case may decide it.", code="not_assignee")
    if status not in Case.ACTIVE_STATUSES:
        raise conflict("invalid_transition", f"A case that is {status} cannot be decided again.")
    if version_row is None:
        raise conflict("no_active_policy", f"The {class_slug} class has no active policy version.")
    version_id, number, ladder, rules, strike_weight, policy_id, policy_slug = version_row
    if isinstance(rules, str):  # Django leaves jsonb undecoded for JSONField to parse
        rules = json.loads(rules)
    version = PolicyVersion(
        id=version_id, number=number, ladder=ladder, rules=rules, strike_weight=strike_weight, status="active"
    )
    version.policy = Policy(id=policy_id, slug=policy_slug)
    version._state.adding = False
    rule, duration_days = _validate_decision(version=version, action=action, rule=rule, duration_days=duration_days)
    qa = random.random() < settings.DOCKET["QA_SAMPLE_RATE"]
    user, username = actor_fields(reviewer)
    params = _effects(
        action=action,
        duration_days=duration_days,
        case_id=case_id,
        account_id=_strike_account(kind=kind, subject_id=subject_id, owner_id=owner_id),
        legal_escalation=legal_escalation,
        reporter_count=reporter_count,
        version=version,
        now=now,
    )
    rationale = rationale or ""
    with _prepared(
        _DECISION_SQL,
        {
            **params,
            "reviewer": reviewer.pk,
            "action": action,
            "rule": rule,
            "version": version_id,
            "rationale": rationale,
            "duration_days": duration_days,
            "holdout": holdout,
            "qa": qa,
            "campaign": campaign.pk if campaign is not None else None,
            "user": user.pk,
            "username": username,
            "from": status,
        },
    ) as cur:
        decision_id, enforcement_ids = cur.fetchone()
    _enqueue_deliveries(sorted(enforcement_ids))
    decision = Decision(
        id=decision_id,
        case_id=case_id,
        reviewer=reviewer,
        action=action,
        rule=rule,
        policy_version=version,
        rationale=rationale,
        duration_days=duration_days,
        automated=False,
        holdout=holdout,
        qa_sampled=qa,
        campaign=campaign,
        created_at=now,
    )
    decision._state.adding = False
    return decision


@transaction.atomic
def decision_automated(*, case, action, at=None) -> Decision:
    """Automation decides a case (``automated=True``, no reviewer): same enforcement and strike path.

    The action must be on the class's active ladder (``action_not_allowed``).
    A human holding the case loses the assignment (completed) with the event.
    """
    case = lock_case(case.pk)
    if case.status not in Case.ACTIVE_STATUSES:
        raise conflict("invalid_transition", f"A case that is {case.status} cannot be decided again.")
    version = active_version_for(case.threat_class)
    rule, duration_days = _validate_decision(
        version=version, action=action, rule="", duration_days=None, automated=True
    )
    now = at or timezone.now()
    decision = Decision.objects.create(
        case=case,
        reviewer=None,
        action=action,
        rule=rule,
        policy_version=version,
        automated=True,
        created_at=now,
    )
    assignment = _active_assignment(case.pk)
    if assignment is not None:
        _assignment_end(assignment, state=Assignment.State.COMPLETED, now=now)
    case_transition(
        case=case,
        to="decided",
        actor="automation",
        kind="decided",
        detail={"decision": decision.pk, "action": action, "automated": True, "policy_version": version.pk},
        at=now,
    )
    _decision_effects(decision=decision, case=case, version=version, now=now)
    return decision


@transaction.atomic
def case_escalate(*, case_id, actor, queue_slug, reason) -> Case:
    """Move a case to ``escalations`` or ``legal``; the holder's assignment ends (escalated).

    Allowed to the holder or a senior (``not_assignee`` otherwise). The case is
    ``escalated`` and waits for a claim in its new queue.
    """
    if queue_slug not in ESCALATION_QUEUES:
        raise DocketError("invalid", "Escalate to escalations or legal.", errors={"queue": list(ESCALATION_QUEUES)})
    reason = (reason or "").strip()
    if not reason:
        raise DocketError("invalid", "Say why.", errors={"reason": ["This field is required."]})
    user = _user_of(actor)
    case = lock_case(case_id)
    tc = case.threat_class
    is_senior = roles.has(user, roles.SENIOR)
    reviewer = getattr(user, "reviewer", None) if hasattr(user, "reviewer") else None
    if tc.restricted and (reviewer is None or tc.slug not in reviewer.clearances):
        raise not_found("No such case.")
    assignment = _active_assignment(case.pk)
    holder = assignment is not None and reviewer is not None and assignment.reviewer_id == reviewer.pk
    if not holder and not is_senior:
        raise forbidden("Only the holder or a senior may escalate this case.", code="not_assignee")
    if case.status not in Case.ACTIVE_STATUSES:
        raise conflict("invalid_transition", f"A case that is {case.status} cannot be escalated.")
    target = Queue.objects.get(slug=queue_slug)
    now = timezone.now()
    if assignment is not None:
        _assignment_end(assignment, state=Assignment.State.ESCALATED, now=now)
    previous_queue = case.queue.slug if case.queue_id else None
    case.queue = target
    case_transition(
        case=case,
        to="escalated",
        actor=user,
        kind="escalated",
        detail={"from_queue": previous_queue, "to_queue": target.slug, "reason": reason[:2000]},
        at=now,
        extra_fields=("queue",),
    )
    return case


# --- overturns and replacements -----------------------------------------------------


def _reverse_enforcements(decision, now):
    """Queue a reversal for each enforcement of the decision that was (or may be) delivered."""
    to_reverse = decision.enforcements.filter(kind="enforce", status__in=["pending", "delivered"])
    rows = [
        Enforcement(
            decision=decision,
            kind=Enforcement.Kind.REVERSE,
            action=e.action,
            duration_days=e.duration_days,
            next_attempt_at=now,
            created_at=now,
        )
        for e in to_reverse
    ]
    return Enforcement.objects.bulk_create(rows)


def _decision_unwind(decision, *, actor, reason, now, kind, count_reporters=True):
    """Mark a decision overturned and undo its effects (lock already held)."""
    if decision.overturned:
        raise conflict("already_overturned", "This decision was already overturned.")
    decision.overturned = True
    decision.overturned_at = now
    decision.save(update_fields=["overturned", "overturned_at"])
    reversals = _reverse_enforcements(decision, now)
    Strike.objects.filter(decision=decision, removed_at__isnull=True).update(removed_at=now)
    if count_reporters:
        # The reports that led here: no longer upheld if it was a violation, upheld if it was not.
        _reporters_adjust(decision.case_id, upheld=-1 if decision.action in VIOLATIONS else 1)
    case_event_add(
        case=decision.case,
        kind=kind,
        actor=actor,
        at=now,
        detail={"decision": decision.pk, "reason": (reason or "")[:2000], "reversals": len(reversals)},
    )
    return reversals


def _lock_decision(decision):
    decision_id = getattr(decision, "pk", decision)
    case_id = Decision.objects.filter(pk=decision_id).values_list("case_id", flat=True).first()
    if case_id is None:
        raise not_found("No such decision.")
    case = lock_case(case_id)
    locked = Decision.objects.select_for_update(of=("self",)).get(pk=decision_id)
    locked.case = case
    return locked


@transaction.atomic
def decision_overturn(*, decision, actor, reason) -> None:
    """Overturn a decision: marked ``overturned``, each enforcement reversed through the outbox,
    its strike removed, its reporters' accuracy corrected. The case status is the caller's.
    """
    decision = _lock_decision(decision)
    reversals = _decision_unwind(decision, actor=actor, reason=reason, now=timezone.now(), kind="decision_overturned")
    _enqueue_deliveries([r.pk for r in reversals])


@transaction.atomic
def decision_replace(*, decision, actor, action, rule, rationale, duration_days=None) -> Decision:
    """Replace a decision with another action (an appeal's "modified" outcome).

    The old decision is overturned (enforcement reversed, strike removed); the
    new one is recorded under the class's active version by ``actor``'s
    reviewer profile and delivered like any decision. The case status is the
    caller's.
    """
    old = _lock_decision(decision)
    reviewer = reviewer_of(actor)
    case = old.case
    version = active_version_for(case.threat_class)
    rule, duration_days = _validate_decision(version=version, action=action, rule=rule, duration_days=duration_days)
    now = timezone.now()
    reversals = _decision_unwind(
        old, actor=reviewer, reason=rationale, now=now, kind="decision_replaced", count_reporters=False
    )
    new = Decision.objects.create(
        case=case,
        reviewer=reviewer,
        action=action,
        rule=rule,
        policy_version=version,
        rationale=rationale or "",
        duration_days=duration_days,
        created_at=now,
    )
    _decision_effects(decision=new, case=case, version=version, now=now, count_reporters=False)
    # The reports were decided once; only whether they were upheld changes.
    _reporters_adjust(case.pk, upheld=int(action in VIOLATIONS) - int(old.action in VIOLATIONS))
    _enqueue_deliveries([r.pk for r in reversals])
    case_event_add(
        case=case, kind="decision_recorded", actor=reviewer, at=now, detail={"decision": new.pk, "replaces": old.pk}
    )
    return new


# --- QA -----------------------------------------------------------------------------


@transaction.atomic
def quality_review_complete(*, review_id, reviewer, action, rule="") -> QualityReview:
    """Record a blind second review and whether it agrees with the decision (same action).

    The second reviewer must not be the one who decided (``conflict_of_interest``).
    """
    reviewer = reviewer_of(reviewer)
    review = QualityReview.objects.select_for_update(of=("self",)).select_related("decision__case__threat_class")
    review = review.filter(pk=review_id).first()
    if review is None:
        raise not_found("No such quality review.")
    decision = review.decision
    tc = decision.case.threat_class
    if tc.restricted and tc.slug not in reviewer.clearances:
        raise not_found("No such quality review.")
    if decision.reviewer_id == reviewer.pk:
        raise forbidden("The decider cannot review their own decision.", code="conflict_of_interest")
    if review.status != QualityReview.Status.PENDING:
        raise conflict("already_reviewed", "This quality review is already done.")
    if action not in LADDER or action not in decision.policy_version.ladder:
        raise DocketError("action_not_allowed", f"{action!r} is not on the ladder of {decision.policy_version}.")
    rule = (rule or "").strip()
    if rule and rule not in decision.policy_version.rule_codes():
        raise DocketError("invalid", f"Unknown rule {rule!r}.", errors={"rule": ["Unknown rule."]})
    now = timezone.now()
    review.reviewer = reviewer
    review.action = action
    review.rule = rule
    review.agrees = action == decision.action
    review.status = QualityReview.Status.DONE
    review.completed_at = now
    review.save(update_fields=["reviewer", "action", "rule", "agrees", "status", "completed_at"])
    case_event_add(
        case=decision.case,
        kind="qa_reviewed",
        actor=reviewer,
        at=now,
        detail={"decision": decision.pk, "agrees": review.agrees},
    )
    return review
