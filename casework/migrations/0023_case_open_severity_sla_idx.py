"""The SLA escalation's index: open cases by severity, then SLA.

Built concurrently: on a live backlog of a million cases, intake and claims keep
writing while it builds.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0022_case_autovacuum")]

    operations = [
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                "severity",
                "sla_due_at",
                "id",
                condition=models.Q(("status", "open")),
                name="case_open_severity_sla_idx",
            ),
        ),
    ]
