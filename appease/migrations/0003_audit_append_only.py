"""On PostgreSQL, the audit log refuses UPDATE and DELETE at the database level."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION appease_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'appease_auditevent is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER appease_auditevent_append_only
    BEFORE UPDATE OR DELETE ON appease_auditevent
    FOR EACH ROW EXECUTE FUNCTION appease_auditevent_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS appease_auditevent_append_only ON appease_auditevent;
DROP FUNCTION IF EXISTS appease_auditevent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("appease", "0002_issuance_domain")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
