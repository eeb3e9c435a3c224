"""Two single-column indexes on cases that wider indexes already serve go: every case write paid for them.

A case's rank moves on nearly every write (intake's fold, the re-ranking job), so its updates are not
HOT and each one adds an entry to every index of the table.

* ``threat_class_id``: ``case_class_status_idx`` (threat_class_id, status) leads with it, and serves a
  class's cases and the foreign key's check when a class is deleted.
* ``subject_id``: ``case_subject_class_idx`` (subject_id) INCLUDE (threat_class_id), built for search by
  investigations 0003, leads with it; casework declares it from here on (it indexes the foreign key), and
  builds it if it is missing.

Dropped and built concurrently (intake writes cases all the time), so the migration is not atomic;
``IF EXISTS`` / ``IF NOT EXISTS`` make a rerun after an interruption safe.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0025_subjectattribute_holder_classes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS case_subject_class_idx "
                    "ON casework_case (subject_id) INCLUDE (threat_class_id)",
                    migrations.RunSQL.noop,  # investigations 0003 may have built it: not ours to drop
                ),
                migrations.RunSQL(
                    "DROP INDEX CONCURRENTLY IF EXISTS casework_case_subject_id_1b5fa1ad",
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS casework_case_subject_id_1b5fa1ad "
                    "ON casework_case (subject_id)",
                ),
                migrations.RunSQL(
                    "DROP INDEX CONCURRENTLY IF EXISTS casework_case_threat_class_id_4cf43420",
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS casework_case_threat_class_id_4cf43420 "
                    "ON casework_case (threat_class_id)",
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="case",
                    name="subject",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="cases",
                        to="casework.subject",
                    ),
                ),
                migrations.AlterField(
                    model_name="case",
                    name="threat_class",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="cases",
                        to="policies.threatclass",
                    ),
                ),
                migrations.AddIndex(
                    model_name="case",
                    index=models.Index(fields=["subject"], include=["threat_class"], name="case_subject_class_idx"),
                ),
            ],
        ),
    ]
