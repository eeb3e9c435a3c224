from django.db import migrations


def forwards(apps, schema_editor):
    from policies.defaults import QUEUES

    Queue = apps.get_model("reviews", "Queue")
    ThreatClass = apps.get_model("policies", "ThreatClass")
    for spec in QUEUES:
        queue, _ = Queue.objects.update_or_create(
            slug=spec["slug"],
            defaults={
                "name": spec["name"],
                "required_clearance": spec["required_clearance"],
                "position": spec["position"],
            },
        )
        queue.threat_classes.set(ThreatClass.objects.filter(slug__in=spec["classes"]))


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial"), ("policies", "0002_default_policies")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
