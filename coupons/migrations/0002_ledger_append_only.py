"""On PostgreSQL, the ledger refuses UPDATE and DELETE at the database level.

TRUNCATE is left alone (row-level triggers do not see it): it is what test runs and a
full restore use, and it needs table ownership that the application role should not
have in production (docs/deploy.md).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION coupons_codeevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'coupons_codeevent is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER coupons_codeevent_append_only
    BEFORE UPDATE OR DELETE ON coupons_codeevent
    FOR EACH ROW EXECUTE FUNCTION coupons_codeevent_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS coupons_codeevent_append_only ON coupons_codeevent;
DROP FUNCTION IF EXISTS coupons_codeevent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("coupons", "0001_initial")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
