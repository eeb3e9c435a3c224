from django.db import migrations


class Migration(migrations.Migration):
    """The first step of moving ``SignalSource`` to policies (a source's configuration is governed there, like its
    thresholds): its table takes policies' name; its rows stay. ``policies`` 0008 then takes the model over."""

    dependencies = [("casework", "0019_campaign_newest_first")]

    operations = [migrations.AlterModelTable(name="signalsource", table="policies_signalsource")]
