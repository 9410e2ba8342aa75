"""What the benchmarks share: a PostgreSQL database of their own, Django set up against
it, and the column list of an ``INSERT ... SELECT generate_series`` of cases."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def database_url(name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def ensure_database(name: str, *, recreate: bool = False) -> None:
    """Create the bench's database if missing; drop it first with ``recreate``."""
    exists = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc",
         f"SELECT 1 FROM pg_database WHERE datname = '{name}'", "postgres"],
        capture_output=True, text=True, check=True).stdout.strip() == "1"
    if exists and recreate:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
        exists = False
    if not exists:
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)


def setup_django(name: str) -> None:
    """Django against the bench's database, quiet unless LOG_LEVEL says otherwise."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url(name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("BACKSTOP_DEMO", "1")  # the demo's keys; nothing here is exposed
    import django

    django.setup()


def case_columns(expressions: dict[str, str]) -> tuple[list[str], list[str]]:
    """Columns and SQL values for inserting cases: every NOT NULL column filled.

    Columns the bench does not care about get their model default, so the statement
    keeps working when the model grows.
    """
    from django.db import connection

    from workflows.models import Case

    columns, values = [], []
    for field in Case._meta.concrete_fields:
        if field.primary_key:
            continue
        if field.column in expressions:
            columns.append(field.column)
            values.append(expressions[field.column])
        elif not field.null:
            default = field.get_default()
            columns.append(field.column)
            values.append(f"'{default}'" if isinstance(default, str)
                          else str(connection.ops.adapt_unknown_value(default)))
    return columns, values
