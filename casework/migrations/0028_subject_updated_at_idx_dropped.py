"""The subjects' ``updated_at`` index goes: nothing reads subjects in that order or by that time.

Intake sets ``updated_at`` whenever a subject learns something (reach, values, owner), so the index
made every such rewrite a non-HOT update (a new entry in each of the subject's indexes); without it
the rewrite stays on the row's page when there is room, with no index entry at all.

Dropped concurrently (intake writes subjects all the time), so the migration is not atomic.
"""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0027_signal_single_column_indexes_dropped")]

    operations = [RemoveIndexConcurrently(model_name="subject", name="subject_updated_at_idx")]
