"""Indexes that carry a subject's class ids (``casework.subject_classes``), so that search tests
visibility from the index it walks.

* External ids (C collation) with the subject id, in the order a search lists them, carrying the class
  ids: a prefix shared by a hundred thousand subjects is walked to the cap from the index alone, with
  no visit to the rows and no sort. It replaces the external-id index of 0001.
* Subject ids carrying the class ids: the holders of a value and a reporter's subjects are tested with
  one index-only probe each.

Built concurrently (intake writes subjects all the time), so the migration is not atomic; ``IF NOT
EXISTS`` makes a retry after an interruption safe.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [
        ("investigations", "0003_bounded_search_indexes"),
        ("casework", "0017_subject_class_ids"),
    ]
    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS subject_external_id_c_vis_idx "
            'ON casework_subject (external_id COLLATE "C", id) INCLUDE (case_class_ids, class_ids)',
            "DROP INDEX CONCURRENTLY IF EXISTS subject_external_id_c_vis_idx",
        ),
        migrations.RunSQL(
            "DROP INDEX CONCURRENTLY IF EXISTS subject_external_id_c_idx",
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS subject_external_id_c_idx ON casework_subject (external_id COLLATE "C")',
        ),
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS subject_id_vis_idx "
            "ON casework_subject (id) INCLUDE (case_class_ids, class_ids)",
            "DROP INDEX CONCURRENTLY IF EXISTS subject_id_vis_idx",
        ),
    ]
