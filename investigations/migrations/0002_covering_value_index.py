"""The attribute-value index covers what search and linked subjects read (kind, subject, seen time).

Value probes (search by any attribute, linked subjects and the over-sharing
bound) then read the index alone, not the heap row of every holder of a value.
It replaces the plain value index of 0001; built concurrently, like it.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("investigations", "0001_search_indexes")]
    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS subjectattr_value_cover_idx "
            "ON casework_subjectattribute (value) INCLUDE (kind, subject_id, seen_at)",
            "DROP INDEX CONCURRENTLY IF EXISTS subjectattr_value_cover_idx",
        ),
        migrations.RunSQL(
            "DROP INDEX CONCURRENTLY IF EXISTS subjectattr_value_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS subjectattr_value_idx ON casework_subjectattribute (value)",
        ),
    ]
