"""A subject's classes, stored on its row: what "may this reader know the subject exists?" reads.

The rule (``SubjectQuerySet.visible_to``): a subject exists for a reader when it has a case of a
class they may see, or when nothing of it (no case, no signal) belongs to a class they may not see.
It depends on which classes the subject's cases and signals belong to, never on anything else, so
each subject keeps them:

* ``case_class_ids``: the classes of its cases (any status), sorted;
* ``class_ids``: the classes of its cases and of its signals (held ones included), sorted.

With ``V`` the ids of the classes the reader may see, the subject exists for them when
``case_class_ids && V OR class_ids <@ V``: a test on the row itself, which a search applies to
each candidate as it walks an index, with no probe of the case and signal tables.

Class ids, not the ``restricted`` flag: a class restricted or released later (an access change)
changes ``V``, not the stored ids, so nothing goes stale.

Triggers on ``casework_case`` and ``casework_signal`` (installed by migration casework 0017, their
functions replaced by 0035) keep the ids in step in the same transaction as every write, whoever
makes it: a statement that inserts cases or signals adds the classes its subjects did not have yet
(a subject that gains nothing is not rewritten; a folded signal's class counts as a case class, see
``_added``); one that deletes them, or moves one to another subject or class, recounts those
subjects from the tables. A bulk load that bypasses triggers (``TRUNCATE`` and a set-based reload)
calls ``subject_classes_rebuild``.

The holders of a value. A search for a value (an address a whole CDN shares) counts the holders the
reader may be told of exactly up to 10,000, and each holder needs two answers: does the subject exist
for the reader, and may they know it holds this value (``SubjectFacet``: a class they may see carried
it, or the subject has no facet at all)? Each attribute row keeps what both read, so a search walks
the value index alone:

* ``subject_case_class_ids`` and ``subject_class_ids``: the subject's two arrays above;
* ``seen_class_ids``: the classes whose facet of the subject carries the value, sorted (empty: none
  does); null when the subject has no facet.

A holder is counted for a reader seeing ``V`` when ``(seen_class_ids IS NULL OR seen_class_ids && V)
AND (subject_case_class_ids && V OR subject_class_ids <@ V)``.

Triggers keep them in the writer's transaction: a new attribute row (or one moved to another subject
or value) reads them from its subject and facets, having locked the subject row as every writer of
the subject does; a subject whose class ids change passes them to its rows; a facet written, changed or
deleted recomputes ``seen_class_ids`` on its subject's rows, having locked the subject. Whichever of
two concurrent writers locks the subject first, the second reads what the first committed. An
ordinary write of an attribute row (intake's ``seen_at``) leaves them as they are.
"""

from __future__ import annotations

from django.db import connection, transaction

# The recount of the subjects whose ids are in ``{ids}`` (an SQL expression of a bigint[]): locks
# them first (in id order, like every other writer), then reads the tables with a snapshot taken
# after the locks, so a concurrent writer's classes are seen once it has committed.
RECOUNT_SQL = """
PERFORM 1 FROM casework_subject WHERE id = ANY({ids}) ORDER BY id FOR UPDATE;
UPDATE casework_subject s
   SET case_class_ids = x.case_class_ids, class_ids = x.class_ids
  FROM (SELECT i.id,
               ARRAY(SELECT DISTINCT c.threat_class_id FROM casework_case c
                      WHERE c.subject_id = i.id ORDER BY 1) AS case_class_ids,
               ARRAY(SELECT c.threat_class_id FROM casework_case c WHERE c.subject_id = i.id
                     UNION
                     SELECT g.threat_class_id FROM casework_signal g WHERE g.subject_id = i.id
                     ORDER BY 1) AS class_ids
          FROM unnest({ids}) AS i(id)) x
 WHERE s.id = x.id AND (s.case_class_ids, s.class_ids) IS DISTINCT FROM (x.case_class_ids, x.class_ids);
"""


def _added(table: str, *, cases: bool) -> str:
    """The statement that adds the classes of the rows in transition table ``table`` to their subjects.

    A folded signal (``case_id`` set) names a case of its own subject and class (a fold keys cases by
    both), so its class is a case class too. Intake stores a new case's signals before it inserts the
    case (ranked from them): counting them here, the case's insert finds nothing left to add, and the
    subject row and its attribute rows are written once, not once per statement.
    """
    merged = "ARRAY(SELECT DISTINCT u FROM unnest(s.{col} || n.{ids}) AS u ORDER BY u)"
    case_ids = "array_agg(DISTINCT threat_class_id)"
    if not cases:
        case_ids = f"COALESCE({case_ids} FILTER (WHERE case_id IS NOT NULL), '{{}}')"
    return f"""
        UPDATE casework_subject s SET {"case_class_ids = " + merged.format(col="case_class_ids", ids="case_ids")},
               {"class_ids = " + merged.format(col="class_ids", ids="ids")}
          FROM (SELECT subject_id, array_agg(DISTINCT threat_class_id) AS ids, {case_ids} AS case_ids
                  FROM {table} GROUP BY subject_id) n
         WHERE s.id = n.subject_id AND (NOT s.class_ids @> n.ids OR NOT s.case_class_ids @> n.case_ids);"""


def _trigger_function(name: str, table: str, *, cases: bool) -> str:
    recount_gone = RECOUNT_SQL.format(ids="ARRAY(SELECT DISTINCT subject_id FROM gone)")
    recount_moved = RECOUNT_SQL.format(ids="ARRAY[OLD.subject_id, NEW.subject_id]")
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_added("added", cases=cases)}
    ELSIF TG_OP = 'DELETE' THEN
        {recount_gone}
    ELSE  -- a row moved to another subject or class (row-level, rare)
        {recount_moved}
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER {name}_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {name}();
CREATE TRIGGER {name}_delete AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {name}();
CREATE TRIGGER {name}_move AFTER UPDATE OF subject_id, threat_class_id ON {table} FOR EACH ROW
    WHEN (OLD.subject_id IS DISTINCT FROM NEW.subject_id OR OLD.threat_class_id IS DISTINCT FROM NEW.threat_class_id)
    EXECUTE FUNCTION {name}();
"""


TRIGGER_SQL = _trigger_function("casework_case_subject_classes", "casework_case", cases=True) + _trigger_function(
    "casework_signal_subject_classes", "casework_signal", cases=False
)

TRIGGER_DROP_SQL = """
DROP TRIGGER IF EXISTS casework_case_subject_classes_insert ON casework_case;
DROP TRIGGER IF EXISTS casework_case_subject_classes_delete ON casework_case;
DROP TRIGGER IF EXISTS casework_case_subject_classes_move ON casework_case;
DROP TRIGGER IF EXISTS casework_signal_subject_classes_insert ON casework_signal;
DROP TRIGGER IF EXISTS casework_signal_subject_classes_delete ON casework_signal;
DROP TRIGGER IF EXISTS casework_signal_subject_classes_move ON casework_signal;
DROP FUNCTION IF EXISTS casework_case_subject_classes();
DROP FUNCTION IF EXISTS casework_signal_subject_classes();
"""

# The stored ids are the triggers' alone: an ordinary write of a subject row (an ORM ``save()`` of an
# instance read before a case was opened, say) leaves them as they are, and a new row starts empty.
# Only the triggers above (a nested statement) and ``subject_classes_rebuild`` (which sets
# ``docket.subject_classes``) change them.
GUARD_SQL = """
CREATE OR REPLACE FUNCTION casework_subject_classes_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 AND coalesce(current_setting('docket.subject_classes', true), '') <> 'recount' THEN
        IF TG_OP = 'INSERT' THEN
            NEW.case_class_ids := '{}';
            NEW.class_ids := '{}';
        ELSE
            NEW.case_class_ids := OLD.case_class_ids;
            NEW.class_ids := OLD.class_ids;
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER casework_subject_classes_guard_insert BEFORE INSERT ON casework_subject FOR EACH ROW
    WHEN (NEW.case_class_ids <> '{}' OR NEW.class_ids <> '{}')
    EXECUTE FUNCTION casework_subject_classes_guard();
CREATE TRIGGER casework_subject_classes_guard_update BEFORE UPDATE ON casework_subject FOR EACH ROW
    WHEN (NEW.case_class_ids IS DISTINCT FROM OLD.case_class_ids OR NEW.class_ids IS DISTINCT FROM OLD.class_ids)
    EXECUTE FUNCTION casework_subject_classes_guard();
"""

GUARD_DROP_SQL = """
DROP TRIGGER IF EXISTS casework_subject_classes_guard_insert ON casework_subject;
DROP TRIGGER IF EXISTS casework_subject_classes_guard_update ON casework_subject;
DROP FUNCTION IF EXISTS casework_subject_classes_guard();
"""

# Every subject, recounted set-based (the migration's first fill; after a bulk load that bypassed the triggers).
REBUILD_SQL = """
UPDATE casework_subject s
   SET case_class_ids = COALESCE(x.case_class_ids, '{}'), class_ids = COALESCE(x.class_ids, '{}')
  FROM casework_subject s0
  LEFT JOIN (
      SELECT subject_id,
             array_agg(DISTINCT threat_class_id ORDER BY threat_class_id) FILTER (WHERE from_case) AS case_class_ids,
             array_agg(DISTINCT threat_class_id ORDER BY threat_class_id) AS class_ids
        FROM (SELECT subject_id, threat_class_id, true AS from_case FROM casework_case
              UNION ALL
              SELECT subject_id, threat_class_id, false FROM casework_signal) t
       GROUP BY subject_id
  ) x ON x.subject_id = s0.id
 WHERE s.id = s0.id
   AND (s.case_class_ids, s.class_ids) IS DISTINCT FROM (COALESCE(x.case_class_ids, '{}'), COALESCE(x.class_ids, '{}'))
"""


# --- the same, on the attribute rows ---------------------------------------------------------------

# The classes whose facet of the subject carries ``kind: value``, sorted; null when the subject has no
# facet (the rule of ``investigations.selectors``: a value is shown through the facets of visible classes,
# and a subject with no facet shows its own). One probe of the subject's facets.
SEEN_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION casework_value_seen_class_ids(p_subject bigint, p_kind text, p_value text)
RETURNS bigint[] LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN count(*) > 0 THEN
               COALESCE(array_agg(f.threat_class_id ORDER BY f.threat_class_id)
                        FILTER (WHERE COALESCE(f.attributes -> p_kind ? p_value, false)), '{}')
           END
      FROM casework_subjectfacet f WHERE f.subject_id = p_subject
$$;
"""

HOLDER_TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION casework_subjectattribute_holder() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.subject_class_ids IS NULL
       OR (NEW.subject_id, NEW.kind, NEW.value) IS DISTINCT FROM (OLD.subject_id, OLD.kind, OLD.value) THEN
        -- Locked as every writer of the subject locks it: a change of its classes or facets committed
        -- meanwhile is read below (a fresh snapshot per statement), and one still to come waits for this
        -- transaction and then rewrites this row.
        SELECT s.case_class_ids, s.class_ids INTO NEW.subject_case_class_ids, NEW.subject_class_ids
          FROM casework_subject s WHERE s.id = NEW.subject_id FOR NO KEY UPDATE;
        -- (no such subject: the foreign key refuses the row when it is checked)
        NEW.subject_case_class_ids := COALESCE(NEW.subject_case_class_ids, '{}');
        NEW.subject_class_ids := COALESCE(NEW.subject_class_ids, '{}');
        -- casework_value_seen_class_ids, written out: a statement of this function keeps its plan for the
        -- session, where a call of the SQL function would plan it again for every row.
        SELECT CASE WHEN count(*) > 0 THEN
                   COALESCE(array_agg(f.threat_class_id ORDER BY f.threat_class_id)
                            FILTER (WHERE COALESCE(f.attributes -> NEW.kind ? NEW.value, false)), '{}')
               END
          INTO NEW.seen_class_ids
          FROM casework_subjectfacet f WHERE f.subject_id = NEW.subject_id;
    ELSIF pg_trigger_depth() < 2 AND coalesce(current_setting('docket.subject_classes', true), '') <> 'recount' THEN
        -- An ordinary write (an ORM save of a row read earlier): the triggers' figures stay.
        NEW.subject_case_class_ids := OLD.subject_case_class_ids;
        NEW.subject_class_ids := OLD.subject_class_ids;
        NEW.seen_class_ids := OLD.seen_class_ids;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER casework_subjectattribute_holder_insert BEFORE INSERT ON casework_subjectattribute
    FOR EACH ROW EXECUTE FUNCTION casework_subjectattribute_holder();
CREATE TRIGGER casework_subjectattribute_holder_update BEFORE UPDATE ON casework_subjectattribute FOR EACH ROW
    WHEN (OLD.subject_class_ids IS NULL OR NEW.subject_id <> OLD.subject_id OR NEW.kind <> OLD.kind
          OR NEW.value <> OLD.value
          OR (NEW.subject_case_class_ids, NEW.subject_class_ids, NEW.seen_class_ids)
             IS DISTINCT FROM (OLD.subject_case_class_ids, OLD.subject_class_ids, OLD.seen_class_ids))
    EXECUTE FUNCTION casework_subjectattribute_holder();

-- A subject's class ids changed (it holds its row lock): its attribute rows take them.
CREATE OR REPLACE FUNCTION casework_subject_holder_classes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE casework_subjectattribute a
       SET subject_case_class_ids = NEW.case_class_ids, subject_class_ids = NEW.class_ids
     WHERE a.subject_id = NEW.id
       AND (a.subject_case_class_ids, a.subject_class_ids) IS DISTINCT FROM (NEW.case_class_ids, NEW.class_ids);
    RETURN NULL;
END $$;
CREATE TRIGGER casework_subject_holder_classes AFTER UPDATE ON casework_subject FOR EACH ROW
    WHEN (OLD.case_class_ids IS DISTINCT FROM NEW.case_class_ids OR OLD.class_ids IS DISTINCT FROM NEW.class_ids)
    EXECUTE FUNCTION casework_subject_holder_classes();

-- Facets written, changed or deleted: their subjects' rows recompute which classes carried each value.
CREATE OR REPLACE FUNCTION casework_subjectfacet_holder_classes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT DISTINCT subject_id FROM added);
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY(SELECT DISTINCT subject_id FROM gone);
    ELSE  -- only facets whose subject, class or values changed (intake rewrites a facet's reach too)
        ids := ARRAY(SELECT x.subject_id
                       FROM added n JOIN gone o ON o.id = n.id
                      CROSS JOIN LATERAL (VALUES (n.subject_id), (o.subject_id)) x(subject_id)
                      WHERE (n.subject_id, n.threat_class_id, n.attributes)
                            IS DISTINCT FROM (o.subject_id, o.threat_class_id, o.attributes)
                      GROUP BY x.subject_id);
    END IF;
    IF cardinality(ids) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM casework_subject WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE casework_subjectattribute a SET seen_class_ids = x.seen
      FROM (SELECT b.id, casework_value_seen_class_ids(b.subject_id, b.kind, b.value) AS seen
              FROM casework_subjectattribute b WHERE b.subject_id = ANY(ids)) x
     WHERE a.id = x.id AND a.seen_class_ids IS DISTINCT FROM x.seen;
    RETURN NULL;
END $$;
CREATE TRIGGER casework_subjectfacet_holder_classes_insert AFTER INSERT ON casework_subjectfacet
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION casework_subjectfacet_holder_classes();
CREATE TRIGGER casework_subjectfacet_holder_classes_update AFTER UPDATE ON casework_subjectfacet
    REFERENCING OLD TABLE AS gone NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION casework_subjectfacet_holder_classes();
CREATE TRIGGER casework_subjectfacet_holder_classes_delete AFTER DELETE ON casework_subjectfacet
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION casework_subjectfacet_holder_classes();
"""

HOLDER_TRIGGER_DROP_SQL = """
DROP TRIGGER IF EXISTS casework_subjectattribute_holder_insert ON casework_subjectattribute;
DROP TRIGGER IF EXISTS casework_subjectattribute_holder_update ON casework_subjectattribute;
DROP TRIGGER IF EXISTS casework_subject_holder_classes ON casework_subject;
DROP TRIGGER IF EXISTS casework_subjectfacet_holder_classes_insert ON casework_subjectfacet;
DROP TRIGGER IF EXISTS casework_subjectfacet_holder_classes_update ON casework_subjectfacet;
DROP TRIGGER IF EXISTS casework_subjectfacet_holder_classes_delete ON casework_subjectfacet;
DROP FUNCTION IF EXISTS casework_subjectattribute_holder();
DROP FUNCTION IF EXISTS casework_subject_holder_classes();
DROP FUNCTION IF EXISTS casework_subjectfacet_holder_classes();
DROP FUNCTION IF EXISTS casework_value_seen_class_ids(bigint, text, text);
"""

# Every attribute row, recomputed set-based (after a load that bypassed the triggers), under the
# ``recount`` setting: the rows whose figures differ from their subject's and facets'.
HOLDER_REBUILD_SQL = """
UPDATE casework_subjectattribute a
   SET subject_case_class_ids = x.case_class_ids, subject_class_ids = x.class_ids, seen_class_ids = x.seen
  FROM (SELECT b.id, s.case_class_ids, s.class_ids,
               casework_value_seen_class_ids(b.subject_id, b.kind, b.value) AS seen
          FROM casework_subjectattribute b JOIN casework_subject s ON s.id = b.subject_id) x
 WHERE a.id = x.id
   AND (a.subject_case_class_ids, a.subject_class_ids, a.seen_class_ids)
       IS DISTINCT FROM (x.case_class_ids, x.class_ids, x.seen)
"""


def subject_visible_with(subject, visible) -> bool:
    """The rule on one subject row already read: a case of a class in ``visible`` (class ids), or
    nothing of a class outside it."""
    visible = set(visible)
    return not visible.isdisjoint(subject.case_class_ids) or visible.issuperset(subject.class_ids)


def subject_classes_rebuild() -> int:
    """Recount every subject's classes from its cases and signals, and the figures its attribute rows
    keep; returns how many subject and attribute rows changed."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL docket.subject_classes = 'recount'")
        cur.execute(REBUILD_SQL)
        changed = cur.rowcount
        cur.execute(HOLDER_REBUILD_SQL)
        changed += cur.rowcount
        cur.execute("SET LOCAL docket.subject_classes = ''")
        return changed
