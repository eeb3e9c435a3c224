import django.db.models.deletion
from django.db import migrations, models

from docket.model_moves import CONTENT_TYPES_MIGRATION, content_type_move


class Migration(migrations.Migration):
    """``RelabelItem`` moves here from policies: a relabel is a blind re-review of a decision, like QA.

    State only: policies 0009 already gave the table its name here (``reviews_relabelitem``), and every row, index,
    constraint and foreign key stays as it is. Policies 0010 drops its own copy.
    """

    dependencies = [
        ("reviews", "0008_queue_moved_to_casework"),
        ("policies", "0009_relabelitem_table_to_reviews"),
        CONTENT_TYPES_MIGRATION,
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RelabelItem",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[("pending", "Pending"), ("done", "Done")], default="pending", max_length=10
                            ),
                        ),
                        (
                            "action",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("no_violation", "No violation"),
                                    ("label", "Label"),
                                    ("reduce", "Reduce reach"),
                                    ("remove", "Remove"),
                                    ("lock", "Lock account"),
                                    ("restrict", "Restrict"),
                                    ("suspend", "Suspend"),
                                    ("ban", "Ban"),
                                    ("legal_report", "Legal report"),
                                ],
                                max_length=20,
                            ),
                        ),
                        ("rule", models.CharField(blank=True, max_length=80)),
                        (
                            "agrees",
                            models.BooleanField(
                                help_text="Violation vs no violation, same as the original decision.", null=True
                            ),
                        ),
                        ("created_at", models.DateTimeField()),
                        ("completed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "decision",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="relabel_items",
                                to="reviews.decision",
                            ),
                        ),
                        (
                            "policy_version",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="relabel_items",
                                to="policies.policyversion",
                            ),
                        ),
                        (
                            "reviewer",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="reviews.reviewer",
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["created_at", "id"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("status", "pending")),
                                fields=["policy_version"],
                                name="relabelitem_pending_idx",
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("policy_version", "decision"), name="relabelitem_once_per_version"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("status", "done"), _negated=True),
                                    models.Q(
                                        ("agrees__isnull", False),
                                        ("completed_at__isnull", False),
                                        ("reviewer__isnull", False),
                                        models.Q(("action", ""), _negated=True),
                                    ),
                                    _connector="OR",
                                ),
                                name="relabelitem_done_complete",
                            ),
                        ],
                    },
                ),
            ],
        ),
        content_type_move("relabelitem", old_app="policies", new_app="reviews"),
    ]
