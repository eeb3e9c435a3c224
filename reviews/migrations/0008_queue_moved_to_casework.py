from django.db import migrations, models


class Migration(migrations.Migration):
    """``Queue`` now lives in casework (casework 0018): reviewers' queues point there, and reviews lets go of it.

    State only: the tables and their rows are casework's already.
    """

    dependencies = [
        ("casework", "0018_queue"),
        ("reviews", "0007_queue_table_to_casework"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="reviewer",
                    name="queues",
                    field=models.ManyToManyField(blank=True, related_name="reviewers", to="casework.queue"),
                ),
                migrations.DeleteModel(name="Queue"),
            ],
        ),
    ]
