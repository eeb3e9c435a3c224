from django.db import migrations


class Migration(migrations.Migration):
    """``RelabelItem`` now lives in reviews (reviews 0009): policies lets go of it. State only: the table and its
    rows are reviews' already."""

    dependencies = [
        ("policies", "0009_relabelitem_table_to_reviews"),
        ("reviews", "0009_relabelitem"),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="RelabelItem")])]
