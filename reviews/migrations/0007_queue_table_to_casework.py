from django.db import migrations


class Migration(migrations.Migration):
    """The first step of moving ``Queue`` to casework (routing is casework's): its table, and the table of its
    threat classes, take casework's names; their rows stay. ``casework`` 0018 then takes the model over."""

    dependencies = [("reviews", "0006_reporter_class_records_backfill")]

    operations = [migrations.AlterModelTable(name="queue", table="casework_queue")]
