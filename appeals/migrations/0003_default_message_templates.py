from django.db import migrations


def forwards(apps, schema_editor):
    from policies.notices import DEFAULTS

    MessageTemplate = apps.get_model("policies", "MessageTemplate")
    for (kind, language), text in DEFAULTS.items():
        # get_or_create: a text a policy admin already edited is kept.
        MessageTemplate.objects.get_or_create(kind=kind, language=language, action="", defaults=text)


class Migration(migrations.Migration):
    dependencies = [
        ("appeals", "0002_initial"),
        ("policies", "0002_default_policies"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
