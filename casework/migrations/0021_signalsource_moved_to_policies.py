import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """``SignalSource`` now lives in policies (policies 0008): signals and incidents point there, and casework lets
    go of it. State only: the table and its rows are policies' already."""

    dependencies = [
        ("casework", "0020_signalsource_table_to_policies"),
        ("policies", "0008_signalsource"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="sourceincident",
                    name="source",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="incidents",
                        to="policies.signalsource",
                    ),
                ),
                migrations.AlterField(
                    model_name="signal",
                    name="source",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="signals", to="policies.signalsource"
                    ),
                ),
                migrations.DeleteModel(name="SignalSource"),
            ],
        ),
    ]
