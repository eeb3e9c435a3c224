"""Small pieces every reviews service shares: who the reviewer is, the lease, prepared statements."""

from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, connections
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


def returning(model, alias="") -> str:
    """The column list of ``model``'s table, for ``RETURNING``/``SELECT`` whose rows ``loaded`` turns into instances."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{f.column}" for f in model._meta.concrete_fields)


def loaded(model, values):
    """An instance of ``model`` from a row of ``returning(model)`` columns, loaded the way the ORM loads query rows.

    Each value goes through its field's and the backend's converters (jsonb arrives as text for
    ``JSONField`` to parse), then ``Model.from_db``, as a queryset does.
    """
    [instance] = loaded_rows(model, [values])
    return instance


def loaded_side_by_side(row, *models) -> list:
    """Instances of ``models`` from one row of their ``returning`` columns, side by side (a join's row)."""
    out, start = [], 0
    for model in models:
        end = start + len(model._meta.concrete_fields)
        out.append(loaded(model, row[start:end]))
        start = end
    return out


def loaded_rows(model, rows) -> list:
    """``loaded`` for many rows of one model: the converters are looked up once, not once per row."""
    db = connections[connection.alias]  # the connection itself, not its per-access proxy
    fields = model._meta.concrete_fields
    plan = []
    for f in fields:
        col = f.get_col(model._meta.db_table)
        plan.append((col, db.ops.get_db_converters(col) + f.get_db_converters(db)))
    attnames = [f.attname for f in fields]
    instances = []
    for values in rows:
        converted = []
        for (col, converters), value in zip(plan, values, strict=True):
            for convert in converters:
                value = convert(value, col, db)
            converted.append(value)
        instances.append(model.from_db(db.alias, attnames, converted))
    return instances
