"""A source's scored signals by time: the health check's score sample reads them, not every report.

Built concurrently: on a live signal table, intake keeps writing while it builds.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0031_case_status_sla_idx_dropped")]

    operations = [
        AddIndexConcurrently(
            model_name="signal",
            index=models.Index(
                fields=["source", "occurred_at"],
                name="signal_scored_source_idx",
                condition=models.Q(score__isnull=False),
            ),
        ),
    ]
