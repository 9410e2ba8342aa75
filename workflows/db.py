"""SQL the ORM does not write for us, and the uses of Django's private API, written once.

Each function here has an ORM reference it must answer like (``tests/workflows/test_db.py``
holds them to it on small fixtures); it exists only because the reference costs more
statements or a savepoint on a hot path (the sweeper, escalation, intake).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection, models

from workflows.models import Case


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


# --- Model instances from raw rows (Django's private API) -----------------------------------


def db_values(obj: models.Model, fields: Iterable[models.Field]) -> list:
    """The values of ``obj``'s ``fields`` as the database takes them, for a raw INSERT."""
    return [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields]


def mark_saved(obj: models.Model, *, pk=None) -> None:
    """``obj`` was written by raw SQL: make it what ``save()`` would have left (its id set,
    no longer *adding*), so later saves UPDATE it."""
    if pk is not None:
        obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias


def instance_from_row(model: type[models.Model], row: Sequence,
                      fields: Sequence[models.Field] | None = None) -> models.Model:
    """The instance a query would have made of ``row`` (values of ``fields``, by default
    every concrete field), with the conversions a query applies (SQLite hands back
    datetimes as text)."""
    fields = list(fields if fields is not None else model._meta.concrete_fields)
    values = []
    for model_field, value in zip(fields, row, strict=True):
        column = model_field.get_col(model._meta.db_table)
        for convert in (connection.ops.get_db_converters(column)
                        + column.get_db_converters(connection)):
            value = convert(value, column, connection)
        values.append(value)
    return model.from_db(connection.alias, [field.attname for field in fields], values)


# --- Cases: the sweeper's and escalation's conditional updates ------------------------------


def claim_case_level(*, case_id: int, expected_level: int, states: Sequence[str],
                     expected_version: int | None = None) -> Case | None:
    """``UPDATE case SET escalation_level = expected_level + 1, version = version + 1
    WHERE id = … AND escalation_level = expected_level AND state IN (states) [AND version
    = expected_version] RETURNING *``: the case as it now is, without reading it again;
    None when no row matched.

    ORM reference: ``Case.objects.filter(...).update(...)`` then ``Case.objects.get``
    (two statements, and a window between them on SQLite).
    """
    quote = connection.ops.quote_name
    fields = Case._meta.concrete_fields
    states = [str(state) for state in states]
    conditions = ["id = %s", "escalation_level = %s",
                  f"state IN ({', '.join(['%s'] * len(states))})"]
    params = [expected_level + 1, case_id, expected_level, *states]
    if expected_version is not None:
        conditions.append("version = %s")
        params.append(expected_version)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Case._meta.db_table)} SET escalation_level = %s, "
            f"version = version + 1 WHERE {' AND '.join(conditions)} "
            f"RETURNING {', '.join(quote(field.column) for field in fields)}", params)
        row = cursor.fetchone()
    return None if row is None else instance_from_row(Case, row, fields)


def set_next_checks(moves: Sequence[tuple[int, int, int, datetime | None]]) -> None:
    """Set each case's ``sla_next_check_at`` in one UPDATE, only while its version and
    level are those given: ``moves`` are ``(case_id, version, level, next_at)``.

    ORM reference: per move, ``Case.objects.filter(pk=case_id, version=version,
    escalation_level=level).update(sla_next_check_at=next_at)`` (one statement each).
    """
    if not moves:
        return
    table = connection.ops.quote_name(Case._meta.db_table)
    # A NULL (no clock runs any more) needs its type on PostgreSQL.
    typed = "CAST(%s AS timestamp with time zone)" if connection.vendor == "postgresql" else "%s"
    params = [value for case_id, version, level, next_at in moves
              for value in (case_id, version, level,
                            connection.ops.adapt_datetimefield_value(next_at))]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH moves (case_id, case_version, case_level, next_at) AS (VALUES "
            f"{', '.join([f'(%s, %s, %s, {typed})'] * len(moves))}) "
            f"UPDATE {table} SET sla_next_check_at = moves.next_at FROM moves "
            f"WHERE {table}.id = moves.case_id AND {table}.version = moves.case_version "
            f"AND {table}.escalation_level = moves.case_level", params)
