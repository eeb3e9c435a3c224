"""The SLA escalation's index with severity first: (severity, queue, SLA, id) over open cases.

0033's (queue, severity, SLA, id) shared its leading column with other indexes of the case table
(the queue's claim order, its oldest wait). Without statistics the planner took one of those for a
queue's range and sorted it, reading every open case of the queue on each batch. No other index
leads with the severity, so the escalation's bounds reach this one alone. Built concurrently before
0033's index is dropped concurrently: intake and claims keep writing.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0033_case_open_queue_sla_idx")]

    operations = [
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                "severity",
                "queue",
                "sla_due_at",
                "id",
                condition=models.Q(("status", "open")),
                name="case_open_sev_queue_sla_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="case", name="case_open_queue_sla_idx"),
    ]
