"""SQL the ORM does not write for us, written once."""

from collections.abc import Sequence

from django.db import connection, models


def insert_new(model: type[models.Model], *, columns: Sequence[str], rows: Sequence[Sequence],
               conflict: Sequence[str], returning: Sequence[str]) -> list[tuple]:
    """``INSERT ... VALUES ... ON CONFLICT (<conflict>) DO NOTHING RETURNING <returning>``.

    Insert the ``rows`` (values ready for the database, in ``columns``' order) whose
    ``conflict`` columns match no row yet, in one statement, and answer the
    ``returning`` columns of the rows actually inserted. A row already there, or written
    by a concurrent writer (PostgreSQL makes the insert wait for that writer's commit),
    costs nothing and never fails the caller's transaction: no savepoint to pay for,
    unlike ``bulk_create(ignore_conflicts=True)``, which cannot say what it inserted.
    Both PostgreSQL and SQLite (3.35+) speak this.
    """
    if not rows:
        return []
    quote = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = (f"INSERT INTO {quote(model._meta.db_table)} "
           f"({', '.join(quote(column) for column in columns)}) "
           f"VALUES {', '.join([row] * len(rows))} "
           f"ON CONFLICT ({', '.join(quote(column) for column in conflict)}) DO NOTHING "
           f"RETURNING {', '.join(quote(column) for column in returning)}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for values in rows for value in values])
        return cursor.fetchall()
