"""Database helpers for migrations."""

from __future__ import annotations

from django.db import migrations


def append_only(table: str) -> migrations.RunPython:
    """A migration operation: on PostgreSQL, `table` refuses UPDATE and DELETE.

    TRUNCATE is left alone (row-level triggers do not see it): test runs and full
    restores use it, and it needs table ownership the application role should not have
    in production (docs/deploy.md).
    """
    function = f"{table}_append_only"
    forward_sql = f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION USING
                MESSAGE = '{table} is append-only: ' || TG_OP || ' refused',
                ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER {function}
            BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {function}();
    """
    backward_sql = f"""
        DROP TRIGGER IF EXISTS {function} ON {table};
        DROP FUNCTION IF EXISTS {function}();
    """

    return _on_postgresql(forward_sql, backward_sql)


def append_only_except_erasure(table: str, unchanged: list[str]) -> migrations.RunPython:
    """Like `append_only`, but an erasure may rewrite the personal data in a row.

    An UPDATE is allowed only inside a transaction that ran `SET LOCAL appease.erasure =
    'on'` (appease.core.privacy does, and audits the erasure), and only when every
    column in `unchanged` keeps its value: who did what, to what and when stays as it was.
    """
    function = f"{table}_append_only"
    same = " AND ".join(f"NEW.{column} IS NOT DISTINCT FROM OLD.{column}" for column in unchanged)
    forward_sql = f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND current_setting('appease.erasure', true) = 'on' AND {same} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION USING
                MESSAGE = '{table} is append-only: ' || TG_OP || ' refused',
                ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
    """
    backward_sql = f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION USING
                MESSAGE = '{table} is append-only: ' || TG_OP || ' refused',
                ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
    """

    return _on_postgresql(forward_sql, backward_sql)


def _on_postgresql(forward_sql: str, backward_sql: str) -> migrations.RunPython:
    """A migration step that runs SQL on PostgreSQL and does nothing elsewhere (SQLite)."""

    def forward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(forward_sql)

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(backward_sql)

    return migrations.RunPython(forward, backward, elidable=False)
