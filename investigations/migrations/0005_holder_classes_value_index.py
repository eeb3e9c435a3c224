"""The attribute-value index carries the classes each row keeps (casework 0025), so the holders of a value
are counted for a reader from the index alone: no probe of the subject's row or its facets per holder.

It replaces the (value, subject id) index of 0003, in the same order (a page of holders and the capped
count are read from the front), with kind and seen time still in it for linked subjects. Built
concurrently (intake writes attribute rows all the time), so the migration is not atomic; ``IF NOT
EXISTS`` makes a retry after an interruption safe. Index-only reads need the table's pages marked
all-visible: after the fill of casework 0025 rewrote every row, that is the next vacuum's.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("investigations", "0004_subject_visibility_indexes"),
        ("casework", "0025_subjectattribute_holder_classes"),
    ]
    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS subjectattr_value_holder_idx "
            "ON casework_subjectattribute (value, subject_id) "
            "INCLUDE (kind, seen_at, seen_class_ids, subject_case_class_ids, subject_class_ids)",
            "DROP INDEX CONCURRENTLY IF EXISTS subjectattr_value_holder_idx",
        ),
        migrations.RunSQL(
            "DROP INDEX CONCURRENTLY IF EXISTS subjectattr_value_subject_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS subjectattr_value_subject_idx "
            "ON casework_subjectattribute (value, subject_id) INCLUDE (kind, seen_at)",
        ),
    ]
