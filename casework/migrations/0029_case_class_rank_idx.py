"""The case list by class: the class's cases in the list's order (casework.priority.BY_RANK_ALL).

Built concurrently: on a live backlog of a million cases, intake and claims keep
writing while it builds.
"""

import django.db.models.expressions
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0028_subject_updated_at_idx_dropped")]

    operations = [
        AddIndexConcurrently(
            model_name="case",
            index=models.Index(
                "threat_class",
                django.db.models.expressions.CombinedExpression(
                    models.F("rank_tier"), "*", django.db.models.expressions.Value(-1)
                ),
                django.db.models.expressions.CombinedExpression(
                    models.F("rank"), "*", django.db.models.expressions.Value(-1)
                ),
                "id",
                name="case_class_rank_idx",
            ),
        ),
    ]
