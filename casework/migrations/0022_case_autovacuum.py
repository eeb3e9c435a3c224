from django.db import migrations


class Migration(migrations.Migration):
    """Vacuum cases after a small share of them changed, not PostgreSQL's default fifth.

    The re-ranking job moves cases between the priority tiers in bursts (thousands of SLA
    breaches at once); the entries they leave dead in the partial indexes (``case_unflagged_sla_idx``)
    are walked by the per-queue figures until a vacuum removes them, so at millions of active cases
    the default (20% of the table changed) lets the home page and ``/api/v1/queues/`` slow down for
    hours. 0.5% plus 1,000 rows keeps those ranges short at any backlog.
    """

    dependencies = [("casework", "0021_signalsource_moved_to_policies")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE casework_case SET (autovacuum_vacuum_scale_factor = 0.005, autovacuum_vacuum_threshold = 1000)",
            "ALTER TABLE casework_case RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold)",
        )
    ]
