"""Small pieces every reviews service shares: who the reviewer is, the lease, the active policy version."""

from datetime import timedelta

from docket import roles
from docket.conf import setting
from docket.errors import forbidden

from ..models import Assignment, Reviewer


def reviewer_of(who) -> Reviewer:
    """A ``Reviewer`` for a reviewer or a user; users without a profile may not review (403)."""
    if isinstance(who, Reviewer):
        return who
    try:
        return who.reviewer
    except (Reviewer.DoesNotExist, AttributeError):
        raise forbidden("Only reviewers can do this.") from None


def case_worker_require(user):
    """Cases are decided and escalated by moderators and seniors; appeals staff work appeals (403 otherwise).

    The one rule for the API, the UI and every other caller: a case handed to an
    appeals-only reviewer does not make them its decider.
    """
    if not roles.has_any(user, (roles.MODERATOR, roles.SENIOR)):
        raise forbidden("Only moderators and seniors decide or escalate cases.")


def user_of(who):
    return getattr(who, "user", who)


def day_start(now):
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def lease_until(now):
    return now + timedelta(seconds=setting("LEASE_SECONDS"))


def assignment_active_lock(case_id):
    """The case's active assignment, locked (the case row must be locked first), or ``None``."""
    return (
        Assignment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("reviewer__user")
        .filter(case_id=case_id, state="active")
        .first()
    )


def assignment_end(assignment, *, state, now):
    assignment.state = state
    assignment.ended_at = now
    assignment.save(update_fields=["state", "ended_at"])


def active_version_sql(class_id: str, columns: str) -> str:
    """A statement's read of a class's active policy version (``columns`` of ``pv``, its ``policies_policy``
    ``p``): the first policy's, as the decision checks against. ``class_id`` is the SQL naming the class."""
    return (
        f"SELECT {columns} FROM policies_policyversion pv JOIN policies_policy p ON p.id = pv.policy_id"
        f" WHERE pv.status = 'active' AND p.threat_class_id = {class_id} ORDER BY pv.policy_id LIMIT 1"
    )
