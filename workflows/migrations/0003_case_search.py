import django.db.models.deletion
from django.contrib.postgres.operations import TrigramExtension
from django.conf import settings
from django.db import migrations, models


SEARCH_INDEX = "case_search_trgm_idx"


def index_search_text(apps, schema_editor):
    """Cases opened before the search: their title, lower-cased, as their search text
    (the domain's values follow for cases opened from now on). On PostgreSQL, the
    trigram GIN index that serves ``LIKE '%term%'`` on it (``selectors.search_cases``);
    SQLite scans, which its small embedded databases afford."""
    table = schema_editor.quote_name(apps.get_model("workflows", "Case")._meta.db_table)
    schema_editor.execute(f"UPDATE {table} SET search_text = lower(title) WHERE title <> ''")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX {SEARCH_INDEX} ON {table} "
                              "USING gin (search_text gin_trgm_ops)")


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {SEARCH_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('workflows', '0002_audit_append_only'),
    ]

    operations = [
        # pg_trgm is a trusted extension (PostgreSQL 13+); a no-op elsewhere.
        TrigramExtension(),
        migrations.AddField(
            model_name='case',
            name='search_text',
            field=models.TextField(blank=True, default='', editable=False),
        ),
        migrations.RunPython(index_search_text, drop_search_index),
        migrations.CreateModel(
            name='SavedCaseView',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=80)),
                ('query', models.CharField(blank=True, max_length=1000)),
                ('created_at', models.DateTimeField()),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='saved_case_views', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name'],
                'constraints': [models.UniqueConstraint(fields=('user', 'name'), name='saved_case_view_name_once')],
            },
        ),
    ]
