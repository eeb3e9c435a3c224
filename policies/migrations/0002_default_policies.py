from django.db import migrations
from django.utils import timezone


def forwards(apps, schema_editor):
    from policies.defaults import POLICIES, THREAT_CLASSES

    ThreatClass = apps.get_model("policies", "ThreatClass")
    Policy = apps.get_model("policies", "Policy")
    PolicyVersion = apps.get_model("policies", "PolicyVersion")
    now = timezone.now()
    for spec in THREAT_CLASSES:
        tc, _ = ThreatClass.objects.update_or_create(slug=spec["slug"], defaults=spec)
        p = POLICIES[tc.slug]
        policy, _ = Policy.objects.get_or_create(
            slug=tc.slug.replace("_", "-"), defaults={"threat_class": tc, "name": p["name"]}
        )
        PolicyVersion.objects.get_or_create(
            policy=policy,
            number=1,
            defaults={
                "text": p["text"],
                "rules": p["rules"],
                "ladder": p["ladder"],
                "strike_weight": p["strike_weight"],
                "status": "active",
                "effective_at": now,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("policies", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
