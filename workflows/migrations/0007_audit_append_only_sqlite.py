"""I7 on SQLite too: the database refuses UPDATE and DELETE of audit rows.

The same three tables as the PostgreSQL triggers of 0002; on other databases this
migration does nothing. SQLite has no session switch to skip triggers (PostgreSQL's
``session_replication_role``): whoever must rewrite these rows drops the triggers
first, on purpose. A later migration that alters one of these tables makes SQLite
rebuild it, which drops its triggers: such a migration must create them again
(``test_database_refuses_update_and_delete_of_audit_rows`` fails until it does).
"""

from django.db import migrations

TABLES = ("workflows_auditevent", "workflows_auditseal", "workflows_auditcheckpoint")
OPERATIONS = ("UPDATE", "DELETE")


def _trigger_name(table: str, operation: str) -> str:
    return f"{table}_refuse_{operation.lower()}"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table in TABLES:
        for operation in OPERATIONS:
            schema_editor.execute(
                f"CREATE TRIGGER {_trigger_name(table, operation)} "
                f"BEFORE {operation} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'audit rows are append-only: {operation} on {table} "
                f"refused'); END")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table in TABLES:
        for operation in OPERATIONS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(table, operation)}")


class Migration(migrations.Migration):
    dependencies = [("workflows", "0006_case_open_idx")]
    operations = [migrations.RunPython(forwards, backwards)]
