"""The single-column indexes of the signal's foreign keys go: each is the leading column of another index.

Every signal intake stores writes an entry into every index of the table (13 before, 8 after).

* ``case_id``: ``signal_case_idx`` is the same index under another name.
* ``source_id``: ``signal_source_occurred_idx`` (and the unique (source_id, external_id)).
* ``subject_id``: ``signal_subject_occurred_idx``.
* ``threat_class_id``: ``signal_class_occurred_idx``.
* ``reporter_id``: ``signal_reporter_idx`` (reporter_id, subject_id, threat_class_id) WHERE reporter_id IS
  NOT NULL, built for search by investigations 0001; an equality on the reporter implies its condition, so
  the foreign key's check when a reporter is deleted (retention) reads it. casework declares it from here
  on, and builds it if it is missing.

Dropped and built concurrently (intake writes signals all the time), so the migration is not atomic;
``IF EXISTS`` / ``IF NOT EXISTS`` make a rerun after an interruption safe.
"""

import django.db.models.deletion
from django.db import migrations, models

DROPPED = [
    ("casework_signal_case_id_948ce99c", "case_id"),
    ("casework_signal_source_id_87c7b446", "source_id"),
    ("casework_signal_subject_id_44bde1a1", "subject_id"),
    ("casework_signal_threat_class_id_fdc3714b", "threat_class_id"),
    ("casework_signal_reporter_id_cbeeb5e5", "reporter_id"),
]


def _foreign_key(to, **options):
    return models.ForeignKey(
        db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="signals", to=to, **options
    )


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0026_case_single_column_indexes_dropped")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS signal_reporter_idx "
                    "ON casework_signal (reporter_id, subject_id, threat_class_id) WHERE reporter_id IS NOT NULL",
                    migrations.RunSQL.noop,  # investigations 0001 may have built it: not ours to drop
                ),
                *(
                    migrations.RunSQL(
                        f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
                        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON casework_signal ({column})",
                    )
                    for name, column in DROPPED
                ),
            ],
            state_operations=[
                migrations.AlterField(model_name="signal", name="source", field=_foreign_key("policies.signalsource")),
                migrations.AlterField(model_name="signal", name="subject", field=_foreign_key("casework.subject")),
                migrations.AlterField(
                    model_name="signal", name="threat_class", field=_foreign_key("policies.threatclass")
                ),
                migrations.AlterField(
                    model_name="signal",
                    name="reporter",
                    field=_foreign_key("casework.reporter", blank=True, null=True),
                ),
                migrations.AlterField(
                    model_name="signal", name="case", field=_foreign_key("casework.case", blank=True, null=True)
                ),
                migrations.AddIndex(
                    model_name="signal",
                    index=models.Index(
                        condition=models.Q(("reporter__isnull", False)),
                        fields=["reporter", "subject", "threat_class"],
                        name="signal_reporter_idx",
                    ),
                ),
            ],
        ),
    ]
