"""I7: the database itself refuses UPDATE and DELETE of audit rows.

PostgreSQL raises from a row trigger; SQLite (the laptop demo) aborts from its own
triggers. SQLite has no session switch to skip triggers (PostgreSQL's
``session_replication_role``): whoever must rewrite these rows drops the triggers first,
on purpose. A later migration that alters one of these tables makes SQLite rebuild it,
which drops its triggers: such a migration must create them again
(``test_database_refuses_update_and_delete_of_audit_rows`` fails until it does).
"""

from django.db import migrations

TABLES = ("workflows_auditevent", "workflows_auditseal", "workflows_auditcheckpoint")
SQLITE_OPERATIONS = ("UPDATE", "DELETE")

POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION backstop_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are append-only: %% on %% refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def _sqlite_trigger_name(table: str, operation: str) -> str:
    return f"{table}_refuse_{operation.lower()}"


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION)
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION backstop_audit_append_only()")
    elif vendor == "sqlite":
        for table in TABLES:
            for operation in SQLITE_OPERATIONS:
                schema_editor.execute(
                    f"CREATE TRIGGER {_sqlite_trigger_name(table, operation)} "
                    f"BEFORE {operation} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, 'audit rows are append-only: {operation} on {table} "
                    f"refused'); END")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute("DROP FUNCTION IF EXISTS backstop_audit_append_only()")
    elif vendor == "sqlite":
        for table in TABLES:
            for operation in SQLITE_OPERATIONS:
                schema_editor.execute(
                    f"DROP TRIGGER IF EXISTS {_sqlite_trigger_name(table, operation)}")


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
