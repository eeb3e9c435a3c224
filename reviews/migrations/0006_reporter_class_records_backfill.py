from django.db import migrations

from policies.models import VIOLATIONS

# Each reporter's record per class, from the stored decisions by the rule the decision pipeline keeps
# the records by: a reported case counts as decided once it has a decision, and as upheld when its latest
# decision is a violation that stands, or a finding of no violation that was overturned.
BACKFILL = """
INSERT INTO casework_reporterclassrecord (reporter_id, threat_class_id, reports_decided, reports_upheld)
SELECT r.reporter_id, r.threat_class_id, count(*),
       count(*) FILTER (WHERE (d.action = ANY(%(violations)s) AND NOT d.overturned)
                           OR (d.overturned AND NOT d.action = ANY(%(violations)s)))
  FROM (SELECT DISTINCT s.reporter_id, s.case_id, c.threat_class_id
          FROM casework_signal s JOIN casework_case c ON c.id = s.case_id
         WHERE s.reporter_id IS NOT NULL) r
  JOIN LATERAL (SELECT action, overturned FROM reviews_decision
                 WHERE case_id = r.case_id ORDER BY created_at DESC, id DESC LIMIT 1) d ON true
 GROUP BY r.reporter_id, r.threat_class_id
ON CONFLICT DO NOTHING
"""


def backfill(apps, schema_editor):
    schema_editor.execute(BACKFILL, {"violations": sorted(VIOLATIONS)})


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0005_accesschange"),
        ("casework", "0015_reporter_class_records"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
