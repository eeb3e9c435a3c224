from django.db import migrations

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION docket_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'casework_caseevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER caseevent_append_only
    BEFORE UPDATE OR DELETE ON casework_caseevent
    FOR EACH ROW EXECUTE FUNCTION docket_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS caseevent_append_only ON casework_caseevent;
DROP FUNCTION IF EXISTS docket_refuse_change();
"""


def default_sources(apps, schema_editor):
    SignalSource = apps.get_model("casework", "SignalSource")
    SignalSource.objects.get_or_create(
        slug="user-reports", defaults={"name": "User reports", "kind": "user_report", "trust": 0.6}
    )


class Migration(migrations.Migration):
    dependencies = [("casework", "0002_initial")]
    operations = [
        migrations.RunSQL(APPEND_ONLY, DROP),
        migrations.RunPython(default_sources, migrations.RunPython.noop),
    ]
