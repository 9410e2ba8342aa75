from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

SEARCH_INDEX = "case_search_trgm_idx"


def create_search_index(apps, schema_editor):
    """On PostgreSQL, the trigram GIN index that serves ``LIKE '%term%'`` on a case's
    search text (``selectors.search_cases``); SQLite scans, which its small embedded
    databases afford."""
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("workflows", "Case")._meta.db_table)
        schema_editor.execute(f"CREATE INDEX {SEARCH_INDEX} ON {table} "
                              "USING gin (search_text gin_trgm_ops)")


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {SEARCH_INDEX}")


class Migration(migrations.Migration):

    dependencies = [("workflows", "0002_audit_append_only")]

    operations = [
        # pg_trgm is a trusted extension (PostgreSQL 13+); a no-op elsewhere.
        TrigramExtension(),
        migrations.RunPython(create_search_index, drop_search_index),
    ]
