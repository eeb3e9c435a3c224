"""Drop the (status, sla_due_at) index: nothing needs it, and the claim's escalated pick misread it.

With statistics gathered while escalations were rare (the state right after an SLA run escalates a
batch), PostgreSQL took it for the cheapest way to find a queue's escalated case and read every
queue's escalated cases per claim instead of ``case_escalated_queue_rank_idx``. Dropped
concurrently: claims and intake keep writing meanwhile.
"""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0030_case_escalated_queue_rank_idx")]

    operations = [RemoveIndexConcurrently(model_name="case", name="case_status_sla_idx")]
