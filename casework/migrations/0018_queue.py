import django.db.models.deletion
from django.db import migrations, models

from docket.model_moves import CONTENT_TYPES_MIGRATION, content_type_move


class Migration(migrations.Migration):
    """``Queue`` moves here from reviews (intake routes cases into queues), and ``Case.queue`` points at it.

    State only: reviews 0007 already gave the tables (``casework_queue``, ``casework_queue_threat_classes``)
    their names here, and every row and foreign key stays as it is. Reviews 0008 drops its own copy.
    """

    dependencies = [
        ("casework", "0017_subject_class_ids"),
        ("policies", "0007_threatclass_access_guarded"),
        ("reviews", "0007_queue_table_to_casework"),
        CONTENT_TYPES_MIGRATION,
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Queue",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("slug", models.SlugField(max_length=40, unique=True)),
                        ("name", models.CharField(max_length=100)),
                        (
                            "required_clearance",
                            models.CharField(
                                blank=True,
                                help_text="A clearance (threat class slug) needed to work this queue.",
                                max_length=40,
                            ),
                        ),
                        (
                            "sla_seconds",
                            models.PositiveIntegerField(blank=True, help_text="Blank: the class's SLA.", null=True),
                        ),
                        ("position", models.PositiveSmallIntegerField(default=100)),
                        (
                            "threat_classes",
                            models.ManyToManyField(blank=True, related_name="queues", to="policies.threatclass"),
                        ),
                    ],
                    options={"ordering": ["position", "slug"]},
                ),
                migrations.AlterField(
                    model_name="case",
                    name="queue",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="cases", to="casework.queue"
                    ),
                ),
            ],
        ),
        content_type_move("queue", old_app="reviews", new_app="casework"),
    ]
