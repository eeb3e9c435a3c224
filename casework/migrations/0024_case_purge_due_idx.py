"""The retention purge's index: closed cases whose personal data is not purged yet, by closure.

Built concurrently: on a live history of a million cases, intake and claims keep
writing while it builds.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0023_case_open_severity_sla_idx")]

    operations = [
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                "closed_at",
                "id",
                condition=models.Q(("personal_data_purged_at__isnull", True), ("status", "closed")),
                name="case_purge_due_idx",
            ),
        ),
    ]
