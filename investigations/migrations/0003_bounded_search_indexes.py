"""Indexes that let a search and the visibility test stop early, whatever a value's popularity.

* Attribute values keyed by (value, subject id): the holders of a value come in subject order, so a
  page of them (and the capped count) is read from the front of the index, not sorted from all of
  them; kind and seen time stay in the index for the value probes of linked subjects. It replaces
  the covering value index of 0002.
* Cases by subject with their class: "has this subject a case the reader may see?" is answered
  from the index alone, for every candidate of a search and every linked subject.

Built concurrently (intake writes these tables all the time), so the migration is not atomic;
``IF NOT EXISTS`` makes a retry after an interruption safe.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("investigations", "0002_covering_value_index")]
    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS subjectattr_value_subject_idx "
            "ON casework_subjectattribute (value, subject_id) INCLUDE (kind, seen_at)",
            "DROP INDEX CONCURRENTLY IF EXISTS subjectattr_value_subject_idx",
        ),
        migrations.RunSQL(
            "DROP INDEX CONCURRENTLY IF EXISTS subjectattr_value_cover_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS subjectattr_value_cover_idx "
            "ON casework_subjectattribute (value) INCLUDE (kind, subject_id, seen_at)",
        ),
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS case_subject_class_idx "
            "ON casework_case (subject_id) INCLUDE (threat_class_id)",
            "DROP INDEX CONCURRENTLY IF EXISTS case_subject_class_idx",
        ),
    ]
