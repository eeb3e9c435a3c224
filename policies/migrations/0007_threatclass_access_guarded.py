"""A threat class's ``restricted`` and ``legal_escalation`` flags change only with a second policy admin.

Lifting a restriction shows hidden material to everyone; dropping legal escalation stops
legal reports. Both go through an access change approved by a second policy admin
(``reviews.services.access``), which opens the transaction-local setting
``docket.access_change`` (``docket.visibility.access_change_allowed``). Any other
update -- the admin, a script, the shell, raw SQL -- is refused here. So is renaming a
restricted class: clearances name classes by slug, so a new slug could hand the class to
whoever holds a clearance of that name. A new class may be created with any flags.
"""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION policies_threatclass_access_guard() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('docket.access_change', true), '') = 'approved' THEN
        RETURN NEW;
    END IF;
    IF NEW.restricted IS DISTINCT FROM OLD.restricted OR NEW.legal_escalation IS DISTINCT FROM OLD.legal_escalation THEN
        RAISE EXCEPTION 'threat class %: restricted and legal_escalation change only through an access change '
            'approved by a second policy admin', OLD.slug USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.slug IS DISTINCT FROM OLD.slug AND (OLD.restricted OR NEW.restricted) THEN
        RAISE EXCEPTION 'threat class %: a restricted class keeps its slug (clearances name it)', OLD.slug
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER threatclass_access_guarded
    BEFORE UPDATE ON policies_threatclass
    FOR EACH ROW EXECUTE FUNCTION policies_threatclass_access_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS threatclass_access_guarded ON policies_threatclass;
DROP FUNCTION IF EXISTS policies_threatclass_access_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("policies", "0006_dsa_statements")]
    operations = [migrations.RunSQL(GUARD, UNGUARD)]
