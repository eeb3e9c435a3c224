import django.db.models.deletion
from django.db import migrations, models

from docket.model_moves import CONTENT_TYPES_MIGRATION, content_type_move


class Migration(migrations.Migration):
    """``SignalSource`` moves here from casework (a source's kind, trust and status are configuration, governed
    beside its thresholds), and ``Threshold.source`` and ``ThresholdChange.source`` point beside them.

    State only: casework 0020 already gave the table its name here (``policies_signalsource``), and every row and
    foreign key stays as it is. Casework 0021 points signals and incidents here and drops its own copy.
    """

    dependencies = [
        ("policies", "0007_threatclass_access_guarded"),
        ("casework", "0020_signalsource_table_to_policies"),
        CONTENT_TYPES_MIGRATION,
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SignalSource",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("slug", models.SlugField(max_length=60, unique=True)),
                        ("name", models.CharField(blank=True, max_length=120)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("user_report", "User Report"),
                                    ("classifier", "Classifier"),
                                    ("rule", "Rule"),
                                    ("hash_match", "Hash Match"),
                                    ("trusted_flagger", "Trusted Flagger"),
                                    ("legal_request", "Legal Request"),
                                ],
                                max_length=20,
                            ),
                        ),
                        ("trust", models.FloatField(default=1.0, help_text="Weight of this source's signals, 0 to 1.")),
                        (
                            "dsa_article_16",
                            models.BooleanField(
                                default=False,
                                help_text="Its reports are notices alleging illegal content (DSA Art. 16); others are other notifications.",
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("healthy", "Healthy"),
                                    ("suspect", "Suspect"),
                                    ("quarantined", "Quarantined"),
                                ],
                                default="healthy",
                                max_length=12,
                            ),
                        ),
                        (
                            "baseline_rate",
                            models.FloatField(blank=True, help_text="Signals per hour, this hour of week.", null=True),
                        ),
                        (
                            "current_rate",
                            models.FloatField(blank=True, help_text="Signals per hour, last hour.", null=True),
                        ),
                        ("score_summary", models.JSONField(blank=True, default=dict)),
                        ("status_changed_at", models.DateTimeField(blank=True, null=True)),
                        ("health_checked_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "ordering": ["slug"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("trust__gte", 0), ("trust__lte", 1)),
                                name="signalsource_trust_in_unit",
                            )
                        ],
                    },
                ),
                migrations.AlterField(
                    model_name="threshold",
                    name="source",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="thresholds",
                        to="policies.signalsource",
                    ),
                ),
                migrations.AlterField(
                    model_name="thresholdchange",
                    name="source",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="policies.signalsource"
                    ),
                ),
            ],
        ),
        content_type_move("signalsource", old_app="casework", new_app="policies"),
    ]
