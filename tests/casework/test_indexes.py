"""The indexes of the tables intake and decisions write most: every one is paid on every write that is not HOT
(a case's rank moves on nearly every write), so none is a leading part of another, and every foreign key
still leads one (the check when a referenced row is deleted reads it)."""

import pytest
from django.db import connection

from tests.investigations.conftest import ingest

pytestmark = pytest.mark.django_db

TABLES = ["casework_case", "casework_signal"]

# Per index: its key columns (None for an expression), whether unique, whether partial, its condition.
_INDEXES_SQL = """
SELECT c.relname, i.indisunique, i.indpred IS NOT NULL, pg_get_expr(i.indpred, i.indrelid),
       ARRAY(SELECT a.attname FROM unnest(i.indkey[:i.indnkeyatts - 1]) WITH ORDINALITY k(attnum, n)
               LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
              ORDER BY k.n)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = %s::regclass
"""


def indexes(table):
    with connection.cursor() as cur:
        cur.execute(_INDEXES_SQL, [table])
        return [
            {"name": name, "unique": unique, "partial": partial, "condition": condition, "columns": columns}
            for name, unique, partial, condition, columns in cur.fetchall()
        ]


@pytest.mark.parametrize("table", TABLES)
def test_no_plain_index_is_the_leading_part_of_another(table):
    found = indexes(table)
    redundant = [
        (a["name"], b["name"])
        for a in found
        for b in found
        if a is not b
        and not a["unique"]
        and not a["partial"]
        and None not in a["columns"]
        and not b["partial"]
        and b["columns"][: len(a["columns"])] == a["columns"]
        and (len(b["columns"]) > len(a["columns"]) or a["name"] > b["name"])  # an exact twin: one of the two
    ]
    assert redundant == []


@pytest.mark.parametrize("table", TABLES)
def test_every_foreign_key_leads_an_index(table):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT a.attname FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid"
            " AND a.attnum = k.conkey[1] WHERE k.conrelid = %s::regclass AND k.contype = 'f'",
            [table],
        )
        keys = {name for (name,) in cur.fetchall()}
    # A partial index serves the check when its condition is that the key is set (an equality implies it).
    led = {
        i["columns"][0]
        for i in indexes(table)
        if not i["partial"] or i["condition"] == f"({i['columns'][0]} IS NOT NULL)"
    }
    assert keys and keys - led == set()


def _subject_updates():
    """(updates, HOT updates) of subject rows in this transaction."""
    with connection.cursor() as cur:
        cur.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'casework_subject'")
        return cur.fetchone()


def test_a_subject_that_learns_a_value_is_rewritten_in_place(platform):
    """Intake's rewrite of a subject (its values, reach and update time) changes no indexed column: a HOT update."""
    ingest(platform, subject="account:hot-1", attributes={"ip": ["203.0.113.20"]})
    updates, hot = _subject_updates()
    ingest(platform, subject="account:hot-1", reach=500, attributes={"ip": ["203.0.113.21"]})
    more, more_hot = _subject_updates()
    assert more - updates >= 1
    assert more_hot - hot == more - updates
