"""The SLA escalation's index by queue first: (queue, severity, SLA, id) over open cases.

The escalation walked each severity's open cases in SLA order and passed over those of the escalation
queues (escalations, legal) one by one, on every batch of every run: a legal queue's backlog of breached
cases was read again each minute. By queue first, it reads one range per queue it watches and never
those. Built concurrently before the old index is dropped concurrently: intake and claims keep writing.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0032_signal_scored_source_idx")]

    operations = [
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                "queue",
                "severity",
                "sla_due_at",
                "id",
                condition=models.Q(("status", "open")),
                name="case_open_queue_sla_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="case", name="case_open_severity_sla_idx"),
    ]
