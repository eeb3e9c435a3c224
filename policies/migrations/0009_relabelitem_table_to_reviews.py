from django.db import migrations


class Migration(migrations.Migration):
    """The first step of moving ``RelabelItem`` to reviews (a blind re-review of a decision, like QA): its table takes
    reviews' name; its rows stay. ``reviews`` 0009 then takes the model over."""

    dependencies = [("policies", "0008_signalsource")]

    operations = [migrations.AlterModelTable(name="relabelitem", table="reviews_relabelitem")]
