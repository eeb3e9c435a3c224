"""The two helpers every intake statement uses: run it, and pass rows as one JSON text parameter."""

import json

from django.db import connection


def fetch(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def json_rows(rows) -> str:
    """Rows for a bulk statement as one JSON text parameter (``json_array_elements`` reads it).

    One string is far cheaper to bind than a dozen arrays of a thousand elements each.
    """
    return json.dumps(rows, separators=(",", ":"), default=str)
