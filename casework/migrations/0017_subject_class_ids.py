"""Each subject keeps the classes of its cases and signals (``casework.subject_classes``).

The columns start empty for every row (a default, not a rewrite), are filled once from the cases
and signals, and from then on are kept by triggers on cases and signals in the transaction of
every write; a guard keeps ordinary writes of a subject row from changing them. The fill rewrites
every subject row once.
"""

import django.contrib.postgres.fields
from django.db import migrations, models

# The guard, triggers and recount of casework.subject_classes as of this migration.
GUARD_SQL = "\nCREATE OR REPLACE FUNCTION casework_subject_classes_guard() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    IF pg_trigger_depth() < 2 AND coalesce(current_setting('docket.subject_classes', true), '') <> 'recount' THEN\n        IF TG_OP = 'INSERT' THEN\n            NEW.case_class_ids := '{}';\n            NEW.class_ids := '{}';\n        ELSE\n            NEW.case_class_ids := OLD.case_class_ids;\n            NEW.class_ids := OLD.class_ids;\n        END IF;\n    END IF;\n    RETURN NEW;\nEND $$;\nCREATE TRIGGER casework_subject_classes_guard_insert BEFORE INSERT ON casework_subject FOR EACH ROW\n    WHEN (NEW.case_class_ids <> '{}' OR NEW.class_ids <> '{}')\n    EXECUTE FUNCTION casework_subject_classes_guard();\nCREATE TRIGGER casework_subject_classes_guard_update BEFORE UPDATE ON casework_subject FOR EACH ROW\n    WHEN (NEW.case_class_ids IS DISTINCT FROM OLD.case_class_ids OR NEW.class_ids IS DISTINCT FROM OLD.class_ids)\n    EXECUTE FUNCTION casework_subject_classes_guard();\n"
GUARD_DROP_SQL = "\nDROP TRIGGER IF EXISTS casework_subject_classes_guard_insert ON casework_subject;\nDROP TRIGGER IF EXISTS casework_subject_classes_guard_update ON casework_subject;\nDROP FUNCTION IF EXISTS casework_subject_classes_guard();\n"
TRIGGER_SQL = "\nCREATE OR REPLACE FUNCTION casework_case_subject_classes() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    IF TG_OP = 'INSERT' THEN\n        \n        UPDATE casework_subject s SET case_class_ids = ARRAY(SELECT DISTINCT u FROM unnest(s.case_class_ids || n.ids) AS u ORDER BY u), class_ids = ARRAY(SELECT DISTINCT u FROM unnest(s.class_ids || n.ids) AS u ORDER BY u)\n          FROM (SELECT subject_id, array_agg(DISTINCT threat_class_id) AS ids FROM added\n                 GROUP BY subject_id) n\n         WHERE s.id = n.subject_id AND (NOT s.class_ids @> n.ids OR NOT s.case_class_ids @> n.ids);\n    ELSIF TG_OP = 'DELETE' THEN\n        \nPERFORM 1 FROM casework_subject WHERE id = ANY(ARRAY(SELECT DISTINCT subject_id FROM gone)) ORDER BY id FOR UPDATE;\nUPDATE casework_subject s\n   SET case_class_ids = x.case_class_ids, class_ids = x.class_ids\n  FROM (SELECT i.id,\n               ARRAY(SELECT DISTINCT c.threat_class_id FROM casework_case c\n                      WHERE c.subject_id = i.id ORDER BY 1) AS case_class_ids,\n               ARRAY(SELECT c.threat_class_id FROM casework_case c WHERE c.subject_id = i.id\n                     UNION\n                     SELECT g.threat_class_id FROM casework_signal g WHERE g.subject_id = i.id\n                     ORDER BY 1) AS class_ids\n          FROM unnest(ARRAY(SELECT DISTINCT subject_id FROM gone)) AS i(id)) x\n WHERE s.id = x.id AND (s.case_class_ids, s.class_ids) IS DISTINCT FROM (x.case_class_ids, x.class_ids);\n\n    ELSE  -- a row moved to another subject or class (row-level, rare)\n        \nPERFORM 1 FROM casework_subject WHERE id = ANY(ARRAY[OLD.subject_id, NEW.subject_id]) ORDER BY id FOR UPDATE;\nUPDATE casework_subject s\n   SET case_class_ids = x.case_class_ids, class_ids = x.class_ids\n  FROM (SELECT i.id,\n               ARRAY(SELECT DISTINCT c.threat_class_id FROM casework_case c\n                      WHERE c.subject_id = i.id ORDER BY 1) AS case_class_ids,\n               ARRAY(SELECT c.threat_class_id FROM casework_case c WHERE c.subject_id = i.id\n                     UNION\n                     SELECT g.threat_class_id FROM casework_signal g WHERE g.subject_id = i.id\n                     ORDER BY 1) AS class_ids\n          FROM unnest(ARRAY[OLD.subject_id, NEW.subject_id]) AS i(id)) x\n WHERE s.id = x.id AND (s.case_class_ids, s.class_ids) IS DISTINCT FROM (x.case_class_ids, x.class_ids);\n\n    END IF;\n    RETURN NULL;\nEND $$;\nCREATE TRIGGER casework_case_subject_classes_insert AFTER INSERT ON casework_case\n    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION casework_case_subject_classes();\nCREATE TRIGGER casework_case_subject_classes_delete AFTER DELETE ON casework_case\n    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION casework_case_subject_classes();\nCREATE TRIGGER casework_case_subject_classes_move AFTER UPDATE OF subject_id, threat_class_id ON casework_case FOR EACH ROW\n    WHEN (OLD.subject_id IS DISTINCT FROM NEW.subject_id OR OLD.threat_class_id IS DISTINCT FROM NEW.threat_class_id)\n    EXECUTE FUNCTION casework_case_subject_classes();\n\nCREATE OR REPLACE FUNCTION casework_signal_subject_classes() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    IF TG_OP = 'INSERT' THEN\n        \n        UPDATE casework_subject s SET class_ids = ARRAY(SELECT DISTINCT u FROM unnest(s.class_ids || n.ids) AS u ORDER BY u)\n          FROM (SELECT subject_id, array_agg(DISTINCT threat_class_id) AS ids FROM added\n                 GROUP BY subject_id) n\n         WHERE s.id = n.subject_id AND NOT s.class_ids @> n.ids;\n    ELSIF TG_OP = 'DELETE' THEN\n        \nPERFORM 1 FROM casework_subject WHERE id = ANY(ARRAY(SELECT DISTINCT subject_id FROM gone)) ORDER BY id FOR UPDATE;\nUPDATE casework_subject s\n   SET case_class_ids = x.case_class_ids, class_ids = x.class_ids\n  FROM (SELECT i.id,\n               ARRAY(SELECT DISTINCT c.threat_class_id FROM casework_case c\n                      WHERE c.subject_id = i.id ORDER BY 1) AS case_class_ids,\n               ARRAY(SELECT c.threat_class_id FROM casework_case c WHERE c.subject_id = i.id\n                     UNION\n                     SELECT g.threat_class_id FROM casework_signal g WHERE g.subject_id = i.id\n                     ORDER BY 1) AS class_ids\n          FROM unnest(ARRAY(SELECT DISTINCT subject_id FROM gone)) AS i(id)) x\n WHERE s.id = x.id AND (s.case_class_ids, s.class_ids) IS DISTINCT FROM (x.case_class_ids, x.class_ids);\n\n    ELSE  -- a row moved to another subject or class (row-level, rare)\n        \nPERFORM 1 FROM casework_subject WHERE id = ANY(ARRAY[OLD.subject_id, NEW.subject_id]) ORDER BY id FOR UPDATE;\nUPDATE casework_subject s\n   SET case_class_ids = x.case_class_ids, class_ids = x.class_ids\n  FROM (SELECT i.id,\n               ARRAY(SELECT DISTINCT c.threat_class_id FROM casework_case c\n                      WHERE c.subject_id = i.id ORDER BY 1) AS case_class_ids,\n               ARRAY(SELECT c.threat_class_id FROM casework_case c WHERE c.subject_id = i.id\n                     UNION\n                     SELECT g.threat_class_id FROM casework_signal g WHERE g.subject_id = i.id\n                     ORDER BY 1) AS class_ids\n          FROM unnest(ARRAY[OLD.subject_id, NEW.subject_id]) AS i(id)) x\n WHERE s.id = x.id AND (s.case_class_ids, s.class_ids) IS DISTINCT FROM (x.case_class_ids, x.class_ids);\n\n    END IF;\n    RETURN NULL;\nEND $$;\nCREATE TRIGGER casework_signal_subject_classes_insert AFTER INSERT ON casework_signal\n    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION casework_signal_subject_classes();\nCREATE TRIGGER casework_signal_subject_classes_delete AFTER DELETE ON casework_signal\n    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION casework_signal_subject_classes();\nCREATE TRIGGER casework_signal_subject_classes_move AFTER UPDATE OF subject_id, threat_class_id ON casework_signal FOR EACH ROW\n    WHEN (OLD.subject_id IS DISTINCT FROM NEW.subject_id OR OLD.threat_class_id IS DISTINCT FROM NEW.threat_class_id)\n    EXECUTE FUNCTION casework_signal_subject_classes();\n"
TRIGGER_DROP_SQL = "\nDROP TRIGGER IF EXISTS casework_case_subject_classes_insert ON casework_case;\nDROP TRIGGER IF EXISTS casework_case_subject_classes_delete ON casework_case;\nDROP TRIGGER IF EXISTS casework_case_subject_classes_move ON casework_case;\nDROP TRIGGER IF EXISTS casework_signal_subject_classes_insert ON casework_signal;\nDROP TRIGGER IF EXISTS casework_signal_subject_classes_delete ON casework_signal;\nDROP TRIGGER IF EXISTS casework_signal_subject_classes_move ON casework_signal;\nDROP FUNCTION IF EXISTS casework_case_subject_classes();\nDROP FUNCTION IF EXISTS casework_signal_subject_classes();\n"
REBUILD_SQL = "\nUPDATE casework_subject s\n   SET case_class_ids = COALESCE(x.case_class_ids, '{}'), class_ids = COALESCE(x.class_ids, '{}')\n  FROM casework_subject s0\n  LEFT JOIN (\n      SELECT subject_id,\n             array_agg(DISTINCT threat_class_id ORDER BY threat_class_id) FILTER (WHERE from_case) AS case_class_ids,\n             array_agg(DISTINCT threat_class_id ORDER BY threat_class_id) AS class_ids\n        FROM (SELECT subject_id, threat_class_id, true AS from_case FROM casework_case\n              UNION ALL\n              SELECT subject_id, threat_class_id, false FROM casework_signal) t\n       GROUP BY subject_id\n  ) x ON x.subject_id = s0.id\n WHERE s.id = s0.id\n   AND (s.case_class_ids, s.class_ids) IS DISTINCT FROM (COALESCE(x.case_class_ids, '{}'), COALESCE(x.class_ids, '{}'))\n"

DEFAULTS_SQL = """
ALTER TABLE casework_subject ALTER COLUMN case_class_ids SET DEFAULT '{}';
ALTER TABLE casework_subject ALTER COLUMN class_ids SET DEFAULT '{}';
"""

FILL_SQL = f"""
SET LOCAL docket.subject_classes = 'recount';
{REBUILD_SQL};
SET LOCAL docket.subject_classes = '';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("casework", "0016_campaign_link_classes"),
    ]

    operations = [
        migrations.AddField(
            model_name="subject",
            name="case_class_ids",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(),
                blank=True,
                default=list,
                editable=False,
                help_text="Classes of its cases, sorted.",
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="subject",
            name="class_ids",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(),
                blank=True,
                default=list,
                editable=False,
                help_text="Classes of its cases and signals, sorted.",
                size=None,
            ),
        ),
        # Writers in SQL (intake's upsert) name neither column.
        migrations.RunSQL(DEFAULTS_SQL, migrations.RunSQL.noop),
        migrations.RunSQL(GUARD_SQL + FILL_SQL + TRIGGER_SQL, GUARD_DROP_SQL + TRIGGER_DROP_SQL),
    ]
