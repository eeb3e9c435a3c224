"""A policy version's content is fixed once it is active.

Decisions cite the version they were made under; if its text, rules, ladder
or strike weight could change afterwards, a decision would point at words
that did not exist when it was made. The database refuses such an update
(and deleting a version that was ever in force), whoever issues it: the
admin, a script, raw SQL. A draft stays freely editable; a change to a
published version is a new draft (the admin's "new draft from this version").
"""

from django.db import migrations

IMMUTABLE = """
CREATE OR REPLACE FUNCTION policies_policyversion_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'policy version % is %: a published version cannot be deleted', OLD.id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.text IS DISTINCT FROM OLD.text
        OR NEW.rules IS DISTINCT FROM OLD.rules
        OR NEW.ladder IS DISTINCT FROM OLD.ladder
        OR NEW.strike_weight IS DISTINCT FROM OLD.strike_weight
        OR NEW.policy_id IS DISTINCT FROM OLD.policy_id
        OR NEW.number IS DISTINCT FROM OLD.number
    ) THEN
        RAISE EXCEPTION 'policy version % is %: its text, rules, ladder and strike weight are immutable; '
            'make a new draft from it', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status <> 'draft' AND NEW.status = 'draft' THEN
        RAISE EXCEPTION 'policy version % is %: it cannot go back to draft', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.status = 'retired' AND NEW.status <> 'retired' THEN
        RAISE EXCEPTION 'policy version % is retired: it cannot be reactivated; make a new draft from it', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER policyversion_immutable_once_published
    BEFORE UPDATE OR DELETE ON policies_policyversion
    FOR EACH ROW EXECUTE FUNCTION policies_policyversion_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS policyversion_immutable_once_published ON policies_policyversion;
DROP FUNCTION IF EXISTS policies_policyversion_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("policies", "0003_relabelitem")]
    operations = [migrations.RunSQL(IMMUTABLE, DROP)]
