from django.db import migrations

# What the planner knows of the search text: 1,000 sampled values rather than the default
# 100. For ``LIKE '%term%'`` it estimates a term's frequency by matching the term against
# the column's histogram, so with 100 values a term in 4% of the cases could come out at
# "none" (one vendor at 1,000,000 cases did: estimated 100 rows, held by 40,000), and
# ``case_search.bounded`` took it for a rare word and read its 40,000 matches. With 1,000
# values, a term in 0.5% of the cases or more is seen as common.
SEARCH_STATISTICS = 1000


def sample_more(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("workflows", "Case")._meta.db_table)
        schema_editor.execute(
            f"ALTER TABLE {table} ALTER COLUMN search_text SET STATISTICS {SEARCH_STATISTICS}"
        )
        schema_editor.execute(f"ANALYZE {table} (search_text)")


def sample_as_before(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("workflows", "Case")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN search_text SET STATISTICS -1")


class Migration(migrations.Migration):
    dependencies = [("workflows", "0004_case_open_list_indexes")]

    operations = [migrations.RunPython(sample_more, sample_as_before)]
