"""Small pieces every reviews service shares: who the reviewer is, the lease, prepared statements."""

from contextlib import contextmanager
from datetime import timedelta

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor

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


@contextmanager
def prepared(sql, params):
    """Run a hot statement as a server-side prepared statement; yields the cursor holding its rows.

    The claim and decision statements are large CTEs that PostgreSQL takes longer
    to plan than to run. Django's cursors bind parameters client-side and never
    prepare, so these go through a server-binding cursor with ``prepare=True``:
    planned once per connection, with Django's error wrapping and query logging kept.
    """
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


def active_version_sql(class_id: str, columns: str) -> str:
    """A statement's read of a class's active policy version (``columns`` of ``pv``, its ``policies_policy``
    ``p``): the first policy's, as the decision checks against. ``class_id`` is the SQL naming the class."""
    return (
        f"SELECT {columns} FROM policies_policyversion pv JOIN policies_policy p ON p.id = pv.policy_id"
        f" WHERE pv.status = 'active' AND p.threat_class_id = {class_id} ORDER BY pv.policy_id LIMIT 1"
    )
