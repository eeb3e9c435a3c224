"""Rows of hand-written SQL loaded as model instances, as a queryset would load them.

Hot paths (the claim, the decision, the token check) read and write with one
statement each instead of several ORM queries: compiling a queryset costs more
Python than the statement costs the database. ``returning(Model, alias)`` is the
column list to select or return; ``loaded``/``loaded_rows``/``loaded_side_by_side``
turn those columns back into instances; ``prepared`` runs such a statement planned
once per connection.
"""

import weakref
from contextlib import contextmanager

from django.db import connection, connections
from django.db.backends.postgresql.base import ServerBindingCursor

# Per connection, per model: each column's converters and the attribute names (looked up once).
_plans = weakref.WeakKeyDictionary()


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
    """Instances of ``models`` from one row of their ``returning`` columns, side by side (a join's row).

    ``None`` for a model whose primary key is NULL in the row: an outer join that found no row.
    """
    out, start = [], 0
    for model in models:
        fields = model._meta.concrete_fields
        values = row[start : start + len(fields)]
        out.append(None if values[fields.index(model._meta.pk)] is None else loaded(model, values))
        start += len(fields)
    return out


def _plan(db, model):
    by_model = _plans.setdefault(db, {})
    plan = by_model.get(model)
    if plan is None:
        columns = []
        for f in model._meta.concrete_fields:
            col = f.get_col(model._meta.db_table)
            columns.append((col, db.ops.get_db_converters(col) + f.get_db_converters(db)))
        plan = by_model[model] = (columns, [f.attname for f in model._meta.concrete_fields])
    return plan


def loaded_rows(model, rows) -> list:
    """``loaded`` for many rows of one model: the converters are looked up once per connection, not per row."""
    db = connections[connection.alias]  # the connection itself, not its per-access proxy
    columns, attnames = _plan(db, model)
    instances = []
    for values in rows:
        converted = []
        for (col, converters), value in zip(columns, values, strict=True):
            for convert in converters:
                value = convert(value, col, db)
            converted.append(value)
        instances.append(model.from_db(db.alias, attnames, converted))
    return instances


@contextmanager
def prepared(sql, params):
    """Run a hot statement as a server-side prepared statement; yields the cursor holding its rows.

    The claim, decision and ranking statements are large CTEs that PostgreSQL takes
    longer to plan than to run. Django's cursors bind parameters client-side and never
    prepare, so these go through a server-binding cursor with ``prepare=True``:
    planned once per connection, with Django's error wrapping and query logging kept.
    Only while the connection allows preparing (settings: ``DB_PREPARE``, on unless
    turned off for a pooler); otherwise the statement is bound on the server and
    planned on every run.
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
