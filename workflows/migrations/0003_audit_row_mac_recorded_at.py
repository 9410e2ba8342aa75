"""I7: each audit event carries a keyed MAC and a time the database assigned.

``row_mac`` (HMAC-SHA256 of ``row_hash`` with ``AUDIT_SIGNING_KEY``) makes a row written
without the key fail verification; ``recorded_at`` is the database's clock at insert,
which verification compares with ``occurred_at`` so that an event cannot be backdated;
``backfilled`` marks events a seed dated in the past on purpose.

The application cannot choose ``recorded_at``: PostgreSQL refuses a row whose value is
not its default (Django's ``Now()`` is ``statement_timestamp()`` there) from an ``AFTER
INSERT`` trigger, whose ``WHEN`` is checked as each row is stored and which, unlike a
``BEFORE`` row trigger, leaves ``COPY`` its multi-row inserts; SQLite refuses a value
more than a few seconds from its clock.

Adding these columns makes SQLite rebuild the table without its triggers, so the
append-only triggers of migration 0002 are created again here (and again when this
migration is reversed, which rebuilds the table once more).
"""

import importlib

from django.db import migrations, models
from django.db.models.functions import Now

append_only = importlib.import_module("workflows.migrations.0002_audit_append_only")

TABLE = "workflows_auditevent"
# How far from SQLite's clock an inserted recorded_at may be (its default is that clock).
SQLITE_SLACK_SECONDS = 5

POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION backstop_audit_recorded_by_database() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are recorded by the database: recorded_at %% refused '
        '(leave it to its default, statement_timestamp())', NEW.recorded_at
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def _restore_sqlite_append_only(schema_editor):
    for operation in append_only.SQLITE_OPERATIONS:
        name = append_only._sqlite_trigger_name(TABLE, operation)
        schema_editor.execute(
            f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON {TABLE} BEGIN "
            f"SELECT RAISE(ABORT, 'audit rows are append-only: {operation} on {TABLE} "
            f"refused'); END")


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION)
        schema_editor.execute(
            f"CREATE TRIGGER {TABLE}_recorded_at AFTER INSERT ON {TABLE} FOR EACH ROW "
            f"WHEN (NEW.recorded_at IS DISTINCT FROM statement_timestamp()) "
            f"EXECUTE FUNCTION backstop_audit_recorded_by_database()")
    elif vendor == "sqlite":
        _restore_sqlite_append_only(schema_editor)
        schema_editor.execute(
            f"CREATE TRIGGER {TABLE}_refuse_recorded_at BEFORE INSERT ON {TABLE} "
            f"WHEN abs(julianday(NEW.recorded_at) - julianday('now')) * 86400 > "
            f"{SQLITE_SLACK_SECONDS} BEGIN "
            f"SELECT RAISE(ABORT, 'audit rows are recorded by the database: recorded_at "
            f"refused (leave it to its default)'); END")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_recorded_at ON {TABLE}")
        schema_editor.execute("DROP FUNCTION IF EXISTS backstop_audit_recorded_by_database()")
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_refuse_recorded_at")


def restore_after_removing_columns(apps, schema_editor):
    # Reversing the AddFields below rebuilds the SQLite table, dropping its triggers.
    if schema_editor.connection.vendor == "sqlite":
        _restore_sqlite_append_only(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0002_audit_append_only")]
    operations = [
        migrations.RunPython(migrations.RunPython.noop, restore_after_removing_columns),
        migrations.AddField(
            model_name="auditevent",
            name="row_mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="recorded_at",
            field=models.DateTimeField(db_default=Now(), editable=False),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="backfilled",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(forwards, backwards),
    ]
