"""Indexes for the queue page's other sorts: oldest first and SLA due soonest, over a queue's active cases.

Built concurrently: on a live backlog of a million cases, intake and claims keep
writing while they build.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0011_dsa_statements")]

    operations = [
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                fields=["queue", "created_at", "id"],
                include=["threat_class"],
                condition=models.Q(("status__in", ["open", "in_review", "escalated"])),
                name="case_active_queue_created_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                fields=["queue", "sla_due_at", "id"],
                include=["threat_class"],
                condition=models.Q(("status__in", ["open", "in_review", "escalated"])),
                name="case_active_queue_sla_idx",
            ),
        ),
    ]
