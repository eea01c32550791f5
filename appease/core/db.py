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


def content_types_move(models: list[str], from_label: str, to_label: str, *, reversible: bool = True):
    """A migration operation: the content types of `models` (model names) move from app
    `from_label` to `to_label`, and back when unapplied (unless not `reversible`). They
    keep their ids, so their permissions, the groups and users holding them and the admin
    history follow the models.

    Each `migrate` run ends with post_migrate, which makes a content type for every model
    of the state it reached. A move done over two runs (a rollback takes two, `migrate
    core zero` then `migrate delivery zero`; or an upgrade that migrates one app first)
    finds one under each label: they are merged into the older (the original), which
    takes the newer's permission grants and admin history, and the newer goes.
    """

    def forward(apps, schema_editor):
        _content_types_move(apps, schema_editor.connection.alias, models, from_label, to_label)

    def backward(apps, schema_editor):
        _content_types_move(apps, schema_editor.connection.alias, models, to_label, from_label)

    return migrations.RunPython(forward, backward if reversible else migrations.RunPython.noop, elidable=False)


def _content_types_move(apps, using: str, models: list[str], from_label: str, to_label: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in models:
        found = list(
            ContentType.objects.using(using).filter(app_label__in=[from_label, to_label], model=model).order_by("pk")
        )
        if not found:
            continue
        kept, *newer = found
        for duplicate in newer:
            _content_type_merge(apps, using, duplicate, into=kept)
        if kept.app_label != to_label:
            kept.app_label = to_label
            kept.save(using=using, update_fields=["app_label"])


def _content_type_merge(apps, using: str, duplicate, *, into) -> None:
    Permission = apps.get_model("auth", "Permission")
    for permission in Permission.objects.using(using).filter(content_type=duplicate):
        same = Permission.objects.using(using).filter(content_type=into, codename=permission.codename).first()
        if same is None:
            permission.content_type = into
            permission.save(using=using, update_fields=["content_type"])
            continue
        same.group_set.add(*permission.group_set.all())
        same.user_set.add(*permission.user_set.all())
        permission.delete()
    try:
        LogEntry = apps.get_model("admin", "LogEntry")
    except LookupError:
        pass
    else:
        LogEntry.objects.using(using).filter(content_type=duplicate).update(content_type=into)
    duplicate.delete()
