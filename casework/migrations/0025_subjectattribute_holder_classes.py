"""Each attribute row keeps its subject's class ids and the classes that carried its value
(``casework.subject_classes``), so a search decides which holders of a value the reader may be told of
from the value index alone.

Built for a table of millions of rows without holding it: the columns are added empty (no rewrite),
the triggers are installed first (from then on every new or written row is filled in its writer's
transaction), the check that every row is filled is added without a scan (``NOT VALID``), the older
rows are filled in batches of 1,000 subjects, each its own short transaction (the subjects locked in
id order, as the triggers lock them; a deadlock with intake retries the batch), and the check is then
validated, which reads the table without blocking writes. Not atomic, so a rerun after an interruption
resumes where it stopped.
"""

import time

import django.contrib.postgres.fields
from django.db import OperationalError, migrations, models, transaction

BATCH = 1000

# casework.subject_classes as of this migration.
SEEN_FUNCTION_SQL = "\nCREATE OR REPLACE FUNCTION casework_value_seen_class_ids(p_subject bigint, p_kind text, p_value text)\nRETURNS bigint[] LANGUAGE sql STABLE AS $$\n    SELECT CASE WHEN count(*) > 0 THEN\n               COALESCE(array_agg(f.threat_class_id ORDER BY f.threat_class_id)\n                        FILTER (WHERE COALESCE(f.attributes -> p_kind ? p_value, false)), '{}')\n           END\n      FROM casework_subjectfacet f WHERE f.subject_id = p_subject\n$$;\n"
HOLDER_TRIGGER_SQL = "\nCREATE OR REPLACE FUNCTION casework_subjectattribute_holder() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    IF TG_OP = 'INSERT' OR OLD.subject_class_ids IS NULL\n       OR (NEW.subject_id, NEW.kind, NEW.value) IS DISTINCT FROM (OLD.subject_id, OLD.kind, OLD.value) THEN\n        -- Locked as every writer of the subject locks it: a change of its classes or facets committed\n        -- meanwhile is read below (a fresh snapshot per statement), and one still to come waits for this\n        -- transaction and then rewrites this row.\n        SELECT s.case_class_ids, s.class_ids INTO NEW.subject_case_class_ids, NEW.subject_class_ids\n          FROM casework_subject s WHERE s.id = NEW.subject_id FOR NO KEY UPDATE;\n        -- (no such subject: the foreign key refuses the row when it is checked)\n        NEW.subject_case_class_ids := COALESCE(NEW.subject_case_class_ids, '{}');\n        NEW.subject_class_ids := COALESCE(NEW.subject_class_ids, '{}');\n        -- casework_value_seen_class_ids, written out: a statement of this function keeps its plan for the\n        -- session, where a call of the SQL function would plan it again for every row.\n        SELECT CASE WHEN count(*) > 0 THEN\n                   COALESCE(array_agg(f.threat_class_id ORDER BY f.threat_class_id)\n                            FILTER (WHERE COALESCE(f.attributes -> NEW.kind ? NEW.value, false)), '{}')\n               END\n          INTO NEW.seen_class_ids\n          FROM casework_subjectfacet f WHERE f.subject_id = NEW.subject_id;\n    ELSIF pg_trigger_depth() < 2 AND coalesce(current_setting('docket.subject_classes', true), '') <> 'recount' THEN\n        -- An ordinary write (an ORM save of a row read earlier): the triggers' figures stay.\n        NEW.subject_case_class_ids := OLD.subject_case_class_ids;\n        NEW.subject_class_ids := OLD.subject_class_ids;\n        NEW.seen_class_ids := OLD.seen_class_ids;\n    END IF;\n    RETURN NEW;\nEND $$;\nCREATE TRIGGER casework_subjectattribute_holder_insert BEFORE INSERT ON casework_subjectattribute\n    FOR EACH ROW EXECUTE FUNCTION casework_subjectattribute_holder();\nCREATE TRIGGER casework_subjectattribute_holder_update BEFORE UPDATE ON casework_subjectattribute FOR EACH ROW\n    WHEN (OLD.subject_class_ids IS NULL OR NEW.subject_id <> OLD.subject_id OR NEW.kind <> OLD.kind\n          OR NEW.value <> OLD.value\n          OR (NEW.subject_case_class_ids, NEW.subject_class_ids, NEW.seen_class_ids)\n             IS DISTINCT FROM (OLD.subject_case_class_ids, OLD.subject_class_ids, OLD.seen_class_ids))\n    EXECUTE FUNCTION casework_subjectattribute_holder();\n\n-- A subject's class ids changed (it holds its row lock): its attribute rows take them.\nCREATE OR REPLACE FUNCTION casework_subject_holder_classes() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    UPDATE casework_subjectattribute a\n       SET subject_case_class_ids = NEW.case_class_ids, subject_class_ids = NEW.class_ids\n     WHERE a.subject_id = NEW.id\n       AND (a.subject_case_class_ids, a.subject_class_ids) IS DISTINCT FROM (NEW.case_class_ids, NEW.class_ids);\n    RETURN NULL;\nEND $$;\nCREATE TRIGGER casework_subject_holder_classes AFTER UPDATE ON casework_subject FOR EACH ROW\n    WHEN (OLD.case_class_ids IS DISTINCT FROM NEW.case_class_ids OR OLD.class_ids IS DISTINCT FROM NEW.class_ids)\n    EXECUTE FUNCTION casework_subject_holder_classes();\n\n-- Facets written, changed or deleted: their subjects' rows recompute which classes carried each value.\nCREATE OR REPLACE FUNCTION casework_subjectfacet_holder_classes() RETURNS trigger LANGUAGE plpgsql AS $$\nDECLARE\n    ids bigint[];\nBEGIN\n    IF TG_OP = 'INSERT' THEN\n        ids := ARRAY(SELECT DISTINCT subject_id FROM added);\n    ELSIF TG_OP = 'DELETE' THEN\n        ids := ARRAY(SELECT DISTINCT subject_id FROM gone);\n    ELSE  -- only facets whose subject, class or values changed (intake rewrites a facet's reach too)\n        ids := ARRAY(SELECT x.subject_id\n                       FROM added n JOIN gone o ON o.id = n.id\n                      CROSS JOIN LATERAL (VALUES (n.subject_id), (o.subject_id)) x(subject_id)\n                      WHERE (n.subject_id, n.threat_class_id, n.attributes)\n                            IS DISTINCT FROM (o.subject_id, o.threat_class_id, o.attributes)\n                      GROUP BY x.subject_id);\n    END IF;\n    IF cardinality(ids) = 0 THEN\n        RETURN NULL;\n    END IF;\n    PERFORM 1 FROM casework_subject WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;\n    UPDATE casework_subjectattribute a SET seen_class_ids = x.seen\n      FROM (SELECT b.id, casework_value_seen_class_ids(b.subject_id, b.kind, b.value) AS seen\n              FROM casework_subjectattribute b WHERE b.subject_id = ANY(ids)) x\n     WHERE a.id = x.id AND a.seen_class_ids IS DISTINCT FROM x.seen;\n    RETURN NULL;\nEND $$;\nCREATE TRIGGER casework_subjectfacet_holder_classes_insert AFTER INSERT ON casework_subjectfacet\n    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION casework_subjectfacet_holder_classes();\nCREATE TRIGGER casework_subjectfacet_holder_classes_update AFTER UPDATE ON casework_subjectfacet\n    REFERENCING OLD TABLE AS gone NEW TABLE AS added\n    FOR EACH STATEMENT EXECUTE FUNCTION casework_subjectfacet_holder_classes();\nCREATE TRIGGER casework_subjectfacet_holder_classes_delete AFTER DELETE ON casework_subjectfacet\n    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION casework_subjectfacet_holder_classes();\n"
HOLDER_TRIGGER_DROP_SQL = "\nDROP TRIGGER IF EXISTS casework_subjectattribute_holder_insert ON casework_subjectattribute;\nDROP TRIGGER IF EXISTS casework_subjectattribute_holder_update ON casework_subjectattribute;\nDROP TRIGGER IF EXISTS casework_subject_holder_classes ON casework_subject;\nDROP TRIGGER IF EXISTS casework_subjectfacet_holder_classes_insert ON casework_subjectfacet;\nDROP TRIGGER IF EXISTS casework_subjectfacet_holder_classes_update ON casework_subjectfacet;\nDROP TRIGGER IF EXISTS casework_subjectfacet_holder_classes_delete ON casework_subjectfacet;\nDROP FUNCTION IF EXISTS casework_subjectattribute_holder();\nDROP FUNCTION IF EXISTS casework_subject_holder_classes();\nDROP FUNCTION IF EXISTS casework_subjectfacet_holder_classes();\nDROP FUNCTION IF EXISTS casework_value_seen_class_ids(bigint, text, text);\n"

CONSTRAINT_SQL = (
    "ALTER TABLE casework_subjectattribute ADD CONSTRAINT subjectattribute_holder_classes_kept "
    "CHECK (subject_case_class_ids IS NOT NULL AND subject_class_ids IS NOT NULL) NOT VALID"
)
CONSTRAINT_DROP_SQL = (
    "ALTER TABLE casework_subjectattribute DROP CONSTRAINT IF EXISTS subjectattribute_holder_classes_kept"
)
VALIDATE_SQL = "ALTER TABLE casework_subjectattribute VALIDATE CONSTRAINT subjectattribute_holder_classes_kept"


def fill(apps, schema_editor):
    """The rows no trigger filled yet, a batch of subjects at a time: the update trigger fills a row on its
    first write, so touching it is enough."""
    connection = schema_editor.connection
    with connection.cursor() as cur:
        cur.execute(
            "SELECT min(subject_id), max(subject_id) FROM casework_subjectattribute WHERE subject_class_ids IS NULL"
        )
        low, high = cur.fetchone()
    if low is None:
        return
    for lo in range(low, high + 1, BATCH):
        for attempt in range(1, 6):
            try:
                with transaction.atomic(using=connection.alias), connection.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FROM (SELECT 1 FROM casework_subject WHERE id >= %s AND id < %s"
                        " ORDER BY id FOR NO KEY UPDATE) locked",
                        [lo, lo + BATCH],
                    )
                    cur.execute(
                        "UPDATE casework_subjectattribute SET seen_class_ids = NULL"
                        " WHERE subject_id >= %s AND subject_id < %s AND subject_class_ids IS NULL",
                        [lo, lo + BATCH],
                    )
                break
            except OperationalError as e:
                if attempt == 5 or getattr(getattr(e, "__cause__", None), "sqlstate", None) != "40P01":
                    raise
                time.sleep(0.1 * attempt)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("casework", "0024_case_purge_due_idx")]

    operations = [
        migrations.AddField(
            model_name="subjectattribute",
            name="subject_case_class_ids",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(),
                editable=False,
                help_text="The subject's ``case_class_ids``.",
                null=True,
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="subjectattribute",
            name="subject_class_ids",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(),
                editable=False,
                help_text="The subject's ``class_ids``.",
                null=True,
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="subjectattribute",
            name="seen_class_ids",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.BigIntegerField(),
                editable=False,
                help_text="Classes whose facet of the subject carries the value, sorted; empty: none does; "
                "null: the subject has no facet at all.",
                null=True,
                size=None,
            ),
        ),
        # From here on every new or written row is filled by the triggers.
        migrations.RunSQL(SEEN_FUNCTION_SQL + HOLDER_TRIGGER_SQL, HOLDER_TRIGGER_DROP_SQL),
        migrations.RunSQL(
            CONSTRAINT_SQL,
            CONSTRAINT_DROP_SQL,
            state_operations=[
                migrations.AddConstraint(
                    model_name="subjectattribute",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("subject_case_class_ids__isnull", False), ("subject_class_ids__isnull", False)
                        ),
                        name="subjectattribute_holder_classes_kept",
                    ),
                ),
            ],
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.RunSQL(VALIDATE_SQL, migrations.RunSQL.noop),
    ]
