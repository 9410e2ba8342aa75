"""I7: the database itself refuses UPDATE and DELETE of audit rows, and chooses the time
each audit event is recorded at.

PostgreSQL raises from a row trigger; SQLite (the laptop demo) aborts from its own
triggers. SQLite has no session switch to skip triggers (PostgreSQL's
``session_replication_role``): whoever must rewrite these rows drops the triggers first,
on purpose. A later migration that alters one of these tables makes SQLite rebuild it,
which drops its triggers: such a migration must create them again
(``test_database_refuses_update_and_delete_of_audit_rows`` fails until it does).

The application cannot choose an event's ``recorded_at``, which verification compares
with ``occurred_at`` so that an event cannot be backdated: PostgreSQL refuses a row whose
value is not its default (Django's ``Now()`` is ``statement_timestamp()`` there) from an
``AFTER INSERT`` trigger, whose ``WHEN`` is checked as each row is stored and which,
unlike a ``BEFORE`` row trigger, leaves ``COPY`` its multi-row inserts; SQLite refuses a
value more than a few seconds from its clock.
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


EVENTS = "workflows_auditevent"
# How far from SQLite's clock an inserted recorded_at may be (its default is that clock).
SQLITE_SLACK_SECONDS = 5

POSTGRESQL_RECORDED_AT_FUNCTION = """
CREATE OR REPLACE FUNCTION backstop_audit_recorded_by_database() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are recorded by the database: recorded_at %% refused '
        '(leave it to its default, statement_timestamp())', NEW.recorded_at
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
        schema_editor.execute(POSTGRESQL_RECORDED_AT_FUNCTION)
        schema_editor.execute(
            f"CREATE TRIGGER {EVENTS}_recorded_at AFTER INSERT ON {EVENTS} FOR EACH ROW "
            f"WHEN (NEW.recorded_at IS DISTINCT FROM statement_timestamp()) "
            f"EXECUTE FUNCTION backstop_audit_recorded_by_database()")
    elif vendor == "sqlite":
        for table in TABLES:
            for operation in SQLITE_OPERATIONS:
                schema_editor.execute(
                    f"CREATE TRIGGER {_sqlite_trigger_name(table, operation)} "
                    f"BEFORE {operation} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, 'audit rows are append-only: {operation} on {table} "
                    f"refused'); END")
        schema_editor.execute(
            f"CREATE TRIGGER {EVENTS}_refuse_recorded_at BEFORE INSERT ON {EVENTS} "
            f"WHEN abs(julianday(NEW.recorded_at) - julianday('now')) * 86400 > "
            f"{SQLITE_SLACK_SECONDS} BEGIN "
            f"SELECT RAISE(ABORT, 'audit rows are recorded by the database: recorded_at "
            f"refused (leave it to its default)'); END")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_recorded_at ON {EVENTS}")
        schema_editor.execute("DROP FUNCTION IF EXISTS backstop_audit_recorded_by_database()")
        for table in TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute("DROP FUNCTION IF EXISTS backstop_audit_append_only()")
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_refuse_recorded_at")
        for table in TABLES:
            for operation in SQLITE_OPERATIONS:
                schema_editor.execute(
                    f"DROP TRIGGER IF EXISTS {_sqlite_trigger_name(table, operation)}")


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
