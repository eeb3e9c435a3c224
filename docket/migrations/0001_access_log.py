import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION docket_accesslog_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'docket_accesslog is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accesslog_append_only
    BEFORE UPDATE OR DELETE ON docket_accesslog
    FOR EACH ROW EXECUTE FUNCTION docket_accesslog_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS accesslog_append_only ON docket_accesslog;
DROP FUNCTION IF EXISTS docket_accesslog_refuse_change();
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessLog",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField()),
                (
                    "kind",
                    models.CharField(
                        choices=[("access", "Access"), ("audit", "Audit")], default="access", max_length=20
                    ),
                ),
                (
                    "username",
                    models.CharField(help_text="Kept as written, even if the user is renamed.", max_length=150),
                ),
                (
                    "action",
                    models.CharField(help_text="view, reveal, export (access); an audit event's name.", max_length=40),
                ),
                ("object_type", models.CharField(blank=True, help_text="case, subject, appeal, …", max_length=40)),
                ("object_id", models.CharField(blank=True, max_length=250)),
                (
                    "threat_class",
                    models.CharField(blank=True, help_text="The class of what was seen, if any.", max_length=40),
                ),
                ("detail", models.JSONField(blank=True, default=dict, help_text="Where from (api, ui), and the like.")),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "access log entry",
                "verbose_name_plural": "access log",
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["kind", "at"], name="accesslog_kind_at_idx"),
                    models.Index(fields=["user", "at"], name="accesslog_user_at_idx"),
                    models.Index(fields=["object_type", "object_id"], name="accesslog_object_idx"),
                ],
            },
        ),
        migrations.RunSQL(APPEND_ONLY, DROP),
    ]
