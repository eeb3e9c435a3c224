"""The indexes subject search reads, on the casework tables it searches.

Built concurrently (no write lock on tables that intake writes all the time), so
the migration is not atomic; ``IF NOT EXISTS`` makes a retry after an
interruption safe.
"""

from django.db import migrations

INDEXES = [
    # Prefix matching (LIKE 'q%') and ordering of external ids: a C-collation btree serves both,
    # whatever the database's collation.
    ("subject_external_id_c_idx", 'casework_subject (external_id COLLATE "C")'),
    # Any attribute key by value (the (kind, value) index needs the key).
    ("subjectattr_value_idx", "casework_subjectattribute (value)"),
    # The subjects a reporter reported.
    ("signal_reporter_idx", "casework_signal (reporter_id, subject_id, threat_class_id) WHERE reporter_id IS NOT NULL"),
]


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0006_list_filter_indexes")]
    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {target}",
            f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
        )
        for name, target in INDEXES
    ]
