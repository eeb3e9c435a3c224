"""The claim's escalated pick: a queue's escalated cases in rank order.

Built concurrently: on a live backlog, intake and claims keep writing while it builds.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0029_case_class_rank_idx")]

    operations = [
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                "queue",
                models.F("rank_tier").desc(),
                models.F("rank").desc(),
                "id",
                name="case_escalated_queue_rank_idx",
                condition=models.Q(status="escalated"),
            ),
        ),
    ]
