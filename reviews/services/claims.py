"""Claims, leases and hand-offs: how a case comes to a reviewer and goes back to its queue.

Lock order is always case row first, then assignment/reviewer rows, so claims,
decisions and the lease sweep never deadlock each other. Who may take a case is
``eligibility.eligibility_check``; which status moves are allowed is the
transition table (``casework.services.TRANSITIONS``), asked on every path, the
set-based statements included.
"""

import json
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from casework import events
from casework.models import Case, Subject
from casework.services import (
    actor_fields,
    case_transition,
    lock_case,
    transition_allowed,
    transition_check,
)
from docket import roles
from docket.batches import BATCH_SIZE, batches
from docket.conf import setting
from docket.errors import DocketError, conflict, forbidden, not_found
from docket.rows import loaded, loaded_side_by_side, prepared, returning
from policies.models import PolicyVersion, ThreatClass, class_visible, class_visible_sql

from ..models import Assignment, Queue, Reviewer
from .common import (
    active_version_sql,
    assignment_active_lock,
    assignment_end,
    day_start,
    lease_until,
    reviewer_of,
    user_of,
)
from .eligibility import Clearance, ReviewerLoad, eligibility_check

# One statement, one snapshot taken after the reviewer row is locked: the counts the
# eligibility rule needs, the pick (escalated cases first, then open ones by rank,
# over the partial claim index, SKIP LOCKED; a status only when the transition table lets
# it become in_review), the assignment, the move to in_review and the "claimed" event; it returns
# the case as the move left it, with its subject, class and the class's active policy version (what
# the claim's answer shows), and whether the answer has decisions or strikes to read at all (most
# claimed cases have neither).
# The open pick only runs when the escalated one finds nothing (Append + LIMIT). The two picks are
# deliberate planner twins: one literal status each, so each walks its own partial index. A refusal
# found from the counts rolls the writes back (they are rare; the claim is one round trip).
_CLAIM_SQL = f"""
WITH counts AS (
    SELECT (SELECT count(*) FROM reviews_assignment
             WHERE reviewer_id = %(reviewer)s AND state = 'active') AS active
),
pick_escalated AS (
    SELECT c.id, c.status, c.threat_class_id FROM casework_case c
     WHERE %(escalated_claimable)s AND c.queue_id = %(queue)s AND c.status = 'escalated'
       AND NOT (c.threat_class_id = ANY(%(hidden)s::bigint[]))
       AND NOT EXISTS (SELECT 1 FROM reviews_assignment s WHERE s.case_id = c.id AND s.reviewer_id = %(reviewer)s
                        AND s.state = 'skipped' AND s.ended_at > %(skipped_since)s)
     ORDER BY c.rank_tier DESC, c.rank DESC, c.id LIMIT 1 FOR NO KEY UPDATE OF c SKIP LOCKED
),
pick_open AS (
    SELECT c.id, c.status, c.threat_class_id FROM casework_case c
     WHERE %(open_claimable)s AND c.queue_id = %(queue)s AND c.status = 'open'
       AND NOT (c.threat_class_id = ANY(%(hidden)s::bigint[]))
       AND NOT EXISTS (SELECT 1 FROM reviews_assignment s WHERE s.case_id = c.id AND s.reviewer_id = %(reviewer)s
                        AND s.state = 'skipped' AND s.ended_at > %(skipped_since)s)
     ORDER BY c.rank_tier DESC, c.rank DESC, c.id LIMIT 1 FOR NO KEY UPDATE OF c SKIP LOCKED
),
pick AS (
    SELECT p.*, tc.graphic FROM (
        (SELECT * FROM pick_escalated) UNION ALL (SELECT * FROM pick_open) LIMIT 1
    ) p JOIN policies_threatclass tc ON tc.id = p.threat_class_id
),
ins AS (
    INSERT INTO reviews_assignment (case_id, reviewer_id, state, graphic, claimed_at, lease_expires_at)
    SELECT pick.id, %(reviewer)s, 'active', pick.graphic, %(now)s, %(lease)s FROM pick
    RETURNING {returning(Assignment)}
),
moved AS (
    UPDATE casework_case c SET status = 'in_review', updated_at = %(now)s FROM ins
     WHERE c.id = ins.case_id RETURNING {returning(Case, "c")}
),
event AS (
    INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
    SELECT ins.case_id, %(now)s, %(user)s, %(username)s::text, %(kind)s,
           %(detail)s::jsonb || jsonb_build_object('from', pick.status, 'assignment', ins.id)
      FROM ins JOIN pick ON pick.id = ins.case_id
    RETURNING id
)
SELECT counts.active,
       -- today's exposure is only counted when the picked case is graphic
       CASE WHEN pick.graphic THEN
           (SELECT count(*) FROM reviews_assignment
             WHERE reviewer_id = %(reviewer)s AND graphic AND claimed_at >= %(day)s) END,
       (SELECT count(*) FROM event),
       -- probes for the answer: whether the case has decisions, its account (or owner) active strikes
       EXISTS (SELECT 1 FROM reviews_decision d WHERE d.case_id = moved.id),
       EXISTS (SELECT 1 FROM reviews_strike st WHERE st.account_id IN (s.id, s.owner_id)
                  AND st.expires_at > %(now)s AND st.removed_at IS NULL),
       {returning(Assignment, "ins")}, {returning(Case, "moved")}, {returning(Subject, "s")},
       {returning(ThreatClass, "tc")}, {returning(PolicyVersion, "v")}
  FROM counts LEFT JOIN pick ON true LEFT JOIN ins ON true LEFT JOIN moved ON true
  LEFT JOIN casework_subject s ON s.id = moved.subject_id
  LEFT JOIN policies_threatclass tc ON tc.id = moved.threat_class_id
  LEFT JOIN LATERAL ({active_version_sql("moved.threat_class_id", returning(PolicyVersion, "pv"))}) v ON true
"""

# What a claim reads and locks first: the user's reviewer row (serialising one reviewer's own
# concurrent claims, two tabs, so max_active holds even then; read here, not before by the ORM),
# the queue, and the classes the reviewer's clearances do not cover (the claim passes their cases over).
_CLAIMER_SQL = f"""
SELECT {returning(Reviewer, "r")}, {returning(Queue, "q")},
       EXISTS (SELECT 1 FROM reviews_reviewer_queues rq WHERE rq.reviewer_id = r.id AND rq.queue_id = q.id),
       ARRAY(SELECT tc.id FROM policies_threatclass tc
              WHERE NOT {class_visible_sql("tc", "r.clearances")} ORDER BY tc.id)
  FROM reviews_reviewer r LEFT JOIN casework_queue q ON q.slug = %s
 WHERE r.user_id = %s FOR NO KEY UPDATE OF r
"""


@transaction.atomic
def queue_claim(*, reviewer, queue_slug) -> Assignment | None:
    """Hand this reviewer the highest-priority case of the queue they may take, or ``None``.

    Refuses (``eligibility_check``) with ``clearance_required`` (403),
    ``forbidden`` (403, not their queue, or not a moderator or senior),
    ``off_shift``, ``capacity_reached`` or ``exposure_budget_reached`` (409,
    only when the next case is graphic), changing nothing. Escalated cases come
    before open ones; cases of restricted classes they lack clearance for, and
    cases they skipped within the skip cooldown, are passed over. ``SKIP
    LOCKED`` means two reviewers claiming at once get different cases and never
    wait for each other. The claim is the hot path of every queue, so its
    reads and writes are few round trips.
    """
    user = user_of(reviewer)
    with connection.cursor() as cur:
        cur.execute(_CLAIMER_SQL, [queue_slug, user.pk])
        row = cur.fetchone()
    if row is None:
        raise forbidden("Only reviewers can do this.")
    [reviewer] = loaded_side_by_side(row, Reviewer)
    user.reviewer = reviewer  # the profile just read and locked, for whoever asks the user next (clearances)
    if not roles.has_any(user, (roles.MODERATOR, roles.SENIOR)):
        # Appeals staff have a reviewer profile too, but first-line review is not theirs (API and UI alike).
        raise forbidden("Only moderators and seniors claim cases.")
    *queue_row, works_queue, hidden = row[len(Reviewer._meta.concrete_fields) :]
    if queue_row[0] is None:
        raise not_found("No such queue.")
    queue = loaded(Queue, queue_row)
    username = user.get_username()
    now = timezone.now()
    queue_id = queue.pk
    load = ReviewerLoad(
        username=username,
        on_shift=reviewer.on_shift,
        max_active=reviewer.max_active,
        clearances=frozenset(reviewer.clearances),
        graphic_budget=reviewer.graphic_budget,
    )
    eligibility_check(
        load, needs=[Clearance(queue.required_clearance, "this queue")], works_queue=works_queue, queue_slug=queue_slug
    )
    claim_event = events.claimed(from_status=None, assignment=None, reviewer=username)
    with prepared(
        _CLAIM_SQL,
        {
            "reviewer": reviewer.pk,
            "user": user.pk,
            "username": username,
            "queue": queue_id,
            "hidden": hidden,
            "escalated_claimable": transition_allowed("escalated", "in_review"),
            "open_claimable": transition_allowed("open", "in_review"),
            "day": day_start(now),
            "skipped_since": now - timedelta(seconds=setting("SKIP_COOLDOWN_SECONDS")),
            "now": now,
            "lease": lease_until(now),
            "kind": claim_event.kind,
            "detail": json.dumps(claim_event.detail),
        },
    ) as cur:
        active, graphic_today, _, has_decisions, has_strikes, *claimed = cur.fetchone()
    picked = claimed[0] is not None
    # Raising here rolls back what the statement wrote.
    eligibility_check(load.counted(active=active, graphic_today=graphic_today), graphic=graphic_today is not None)
    if not picked:
        return None
    # The assignment with its case as the claim left it (its subject, class and queue, the reviewer and user):
    # the answer to a claim reads none of them again.
    assignment, case, subject, threat_class = loaded_side_by_side(claimed, Assignment, Case, Subject, ThreatClass)
    case.subject, case.threat_class, case.queue = subject, threat_class, queue
    # ``False``: the case has no decision; its account (and a content subject's owner) no active strike.
    case.has_decisions, case.has_strikes = has_decisions, has_strikes
    version = claimed[-len(PolicyVersion._meta.concrete_fields) :]
    case.policy_version = loaded(PolicyVersion, version) if version[0] is not None else None
    assignment.case, assignment.reviewer = case, reviewer
    return assignment


def _lock_own_assignment(assignment_id, reviewer):
    """Lock an active assignment (case row first) held by ``reviewer``.

    An assignment on a case the reviewer may not see answers like a missing one
    (404), never ``not_assignee``: its id must not tell that a hidden case exists.
    """
    reviewer = reviewer_of(reviewer)
    case_id = Assignment.objects.filter(pk=assignment_id).values_list("case_id", flat=True).first()
    if case_id is None:
        raise not_found("No such assignment.")
    case = lock_case(case_id)
    tc = case.threat_class
    if not class_visible(restricted=tc.restricted, slug=tc.slug, clearances=reviewer.clearances):
        raise not_found("No such assignment.")
    assignment = Assignment.objects.select_for_update(no_key=True, of=("self",)).get(pk=assignment_id)
    if assignment.reviewer_id != reviewer.pk:
        raise forbidden("Only the reviewer holding this case may do that.", code="not_assignee")
    if assignment.state != Assignment.State.ACTIVE:
        raise conflict("assignment_ended", f"This assignment has ended ({assignment.state}).")
    return case, assignment, reviewer


@transaction.atomic
def assignment_renew(*, assignment_id, reviewer) -> Assignment:
    """Extend the holder's lease by the lease length from now."""
    case, assignment, reviewer = _lock_own_assignment(assignment_id, reviewer)
    assignment.lease_expires_at = lease_until(timezone.now())
    assignment.save(update_fields=["lease_expires_at"])
    return assignment


def _assignment_return(assignment_id, reviewer, *, state):
    case, assignment, reviewer = _lock_own_assignment(assignment_id, reviewer)
    now = timezone.now()
    assignment_end(assignment, state=state, now=now)
    if case.status == "in_review":
        case_transition(
            case=case,
            to="open",
            actor=reviewer,
            event=events.returned(kind=state, from_status=case.status, assignment=assignment.pk),
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
# holds), expire the assignments, reopen the cases in review (when the transition table
# lets in_review become open), write their events.
_LEASES_EXPIRE_SQL = """
WITH due AS (
    SELECT a.id, a.case_id, c.status FROM reviews_assignment a
      JOIN casework_case c ON c.id = a.case_id
     WHERE a.state = 'active' AND a.lease_expires_at <= %(now)s
     ORDER BY a.lease_expires_at LIMIT %(batch)s
       FOR NO KEY UPDATE OF c, a SKIP LOCKED
),
expired AS (
    UPDATE reviews_assignment a SET state = 'expired', ended_at = %(now)s FROM due WHERE a.id = due.id
    RETURNING a.id
),
reopened AS (
    UPDATE casework_case c SET status = 'open', updated_at = %(now)s
      FROM due WHERE c.id = due.case_id AND due.status = 'in_review' AND %(reopen)s
    RETURNING c.id, due.id AS assignment_id
),
events AS (
    INSERT INTO casework_caseevent (case_id, at, actor_id, actor_label, kind, detail)
    SELECT id, %(now)s, NULL, %(system)s, %(kind)s, %(detail)s::jsonb || jsonb_build_object('assignment', assignment_id)
      FROM reopened
)
SELECT count(*) FROM expired
"""


def leases_expire(*, now=None, batch: int = BATCH_SIZE) -> int:
    """End every active assignment whose lease has run out; its case goes back to open.

    Set-based, in short batches (one statement each: the assignments expired,
    the cases in review reopened, a ``lease_expired`` event each). Rows locked
    by a decision in flight are skipped (the next sweep sees them if the
    decision did not happen). Returns the count.
    """
    event = events.lease_expired(from_status="in_review", assignment=None)

    def expire(size):
        with connection.cursor() as cur:
            cur.execute(
                _LEASES_EXPIRE_SQL,
                {
                    "now": now or timezone.now(),
                    "system": actor_fields(None)[1],
                    "reopen": transition_allowed("in_review", "open"),
                    "kind": event.kind,
                    "detail": json.dumps(event.detail),
                    "batch": size,
                },
            )
            return cur.fetchone()[0]

    return batches(expire, size=batch)


def _reviewer_load(reviewer, now) -> ReviewerLoad:
    """Lock the reviewer row and read what the eligibility rule needs.

    The row lock serialises one reviewer's own concurrent claims and assignments,
    so ``max_active`` holds even then; other reviewers are not blocked.
    """
    with connection.cursor() as cur:
        # Lock first, read after: a statement's subqueries keep the snapshot taken
        # before it waited for the lock, so the counts must come from a new statement.
        cur.execute("SELECT 1 FROM reviews_reviewer WHERE id = %s FOR NO KEY UPDATE", [reviewer.pk])
        cur.execute(
            """
            SELECT r.on_shift, r.max_active, r.graphic_budget, r.clearances,
                   (SELECT count(*) FROM reviews_assignment a WHERE a.reviewer_id = r.id AND a.state = 'active'),
                   (SELECT count(*) FROM reviews_assignment a
                     WHERE a.reviewer_id = r.id AND a.graphic AND a.claimed_at >= %s)
              FROM reviews_reviewer r WHERE r.id = %s
            """,
            [day_start(now), reviewer.pk],
        )
        on_shift, max_active, graphic_budget, clearances, active, graphic_today = cur.fetchone()
    return ReviewerLoad(
        username=reviewer.user.get_username(),
        on_shift=on_shift,
        max_active=max_active,
        clearances=frozenset(clearances),
        graphic_budget=graphic_budget,
        active=active,
        graphic_today=graphic_today,
    )


def _assignment_start(*, case, reviewer, now, by):
    """Give a locked, waiting case to a reviewer: the assignment, the move to in_review, the event."""
    assignment = Assignment.objects.create(
        case=case,
        reviewer=reviewer,
        graphic=case.threat_class.graphic,
        assigned_by=by,
        claimed_at=now,
        lease_expires_at=lease_until(now),
    )
    event = events.assigned(
        from_status=case.status,
        assignment=assignment.pk,
        reviewer=reviewer.user.get_username(),
        assigned_by=by.get_username(),
    )
    case_transition(case=case, to="in_review", actor=by, event=event, at=now)
    return assignment


@transaction.atomic
def case_assign(*, case_id, reviewer_username, by) -> Assignment:
    """A senior hands a waiting (or held) case to a named reviewer.

    The eligibility rule applies to the named reviewer exactly as for a claim
    (the class's clearance too); whether they work the queue does not. Only
    moderators and seniors take cases (``400 invalid`` otherwise). A current
    holder's assignment is ended (released).
    """
    by = user_of(by)
    if not roles.has(by, roles.SENIOR):
        raise forbidden("Only seniors may assign cases.")
    target = (
        Reviewer.objects.select_related("user").filter(user__username=reviewer_username).first()
        if isinstance(reviewer_username, str)
        else None
    )
    if target is None:
        raise DocketError("invalid", "No such reviewer.", errors={"reviewer": ["No reviewer with that username."]})
    if not roles.has_any(target.user, (roles.MODERATOR, roles.SENIOR)):
        # They could neither decide nor escalate it (``case_worker_require``): the case would sit with them.
        raise DocketError(
            "invalid",
            "Cases go to moderators and seniors; this reviewer works appeals only.",
            errors={"reviewer": ["Not a moderator or senior."]},
        )
    case = lock_case(case_id)
    if case.status != "in_review":
        transition_check(case.status, "in_review", verb="be assigned")
    now = timezone.now()
    load = _reviewer_load(target, now)
    tc = case.threat_class
    queue = Queue.objects.get(pk=case.queue_id)
    needs = [Clearance(tc.slug if tc.restricted else ""), Clearance(queue.required_clearance, "this queue")]
    eligibility_check(load, needs=needs, graphic=tc.graphic)
    current = assignment_active_lock(case.pk)
    if current is not None:
        if current.reviewer_id == target.pk:
            return current
        assignment_end(current, state=Assignment.State.RELEASED, now=now)
        event = events.unassigned(from_status=case.status, assignment=current.pk)
        case_transition(case=case, to="open", actor=by, event=event, at=now)
    return _assignment_start(case=case, reviewer=target, now=now, by=by)
