"""SQL the ORM does not write for us, and the uses of Django's private API, written once.

Each function here has an ORM reference it must answer like (``tests/workflows/test_db.py``
holds them to it on small fixtures); it exists only because the reference costs more
statements or a savepoint on a hot path (the sweeper, escalation, intake).
"""

import functools
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.models.expressions import RawSQL
from django_fsm import ConcurrentTransition, FSMField

from workflows import json_codec
from workflows.models import (
    OPEN_STATES,
    AuditEvent,
    Case,
    CaseState,
    ConsultRequest,
    Escalation,
    Notification,
    OutboxMessage,
    Queue,
    RaciAssignment,
    RaciRole,
    Resolution,
    ReviewerStatus,
    Session,
)


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



def add_to_counters(model: type[models.Model], *, key: Sequence[str], counters: Sequence[str],
                    rows: Sequence[Sequence], returning: Sequence[str] = ()) -> list[tuple]:
    """Add each row's ``counters`` to the row of ``model`` with its ``key`` (a unique
    constraint's columns), creating that row with every other column at its default:
    ``INSERT ... ON CONFLICT (<key>) DO UPDATE SET c = c + EXCLUDED.c``, one statement.
    ``rows`` hold the key's values then the counters', as the database takes them. A
    concurrent writer of the same key waits for this one's commit, then adds to its sum;
    write rows in a fixed order (sorted by key) so that two writers never deadlock.

    ``returning`` names columns to answer for each row as it is after the add (in no
    particular order): a caller adding zero reads and locks the rows in one statement.

    ORM reference: per row, ``get_or_create(<key>)`` then ``update(c=F("c") + n)``
    (then reading ``returning``).
    """
    if not rows:
        return []
    with connection.cursor() as cursor:
        cursor.execute(*_adding_to_counters(model, key=key, counters=counters, rows=rows,
                                            returning=returning))
        return [tuple(found) for found in cursor.fetchall()] if returning else []


def _adding_to_counters(model, *, key, counters, rows, returning=()) -> tuple[str, list]:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    others, defaults = _other_columns(model, key=key, counters=counters)
    row = "(" + ", ".join(["%s"] * (len(key) + len(counters) + len(others))) + ")"
    answer = f" RETURNING {', '.join(map(quote, returning))}" if returning else ""
    return (f"INSERT INTO {table} ({', '.join(map(quote, [*key, *counters, *others]))}) "
            f"VALUES {', '.join([row] * len(rows))} "
            f"{_on_conflict_add(model, key=key, counters=counters)}{answer}",
            [value for values in rows for value in (*values, *defaults)])


def _adding_to_counters_from_json(model, *, key, counters, rows) -> tuple[str, list] | None:
    """``_adding_to_counters``' statement with every row in one JSON parameter (as
    ``_populating``'s), for ``write_at_once``: a rollup's row brings some fifty columns."""
    others, defaults = _other_columns(model, key=key, counters=counters)
    columns = [*key, *counters, *others]
    statement = _populating(model, columns, [(*values, *defaults) for values in rows])
    if statement is None:
        return None
    sql, params = statement
    return f"{sql} {_on_conflict_add(model, key=key, counters=counters)}", params


def _on_conflict_add(model, *, key, counters) -> str:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    sums = ", ".join(f"{quote(column)} = {table}.{quote(column)} + EXCLUDED.{quote(column)}"
                     for column in counters)
    return f"ON CONFLICT ({', '.join(map(quote, key))}) DO UPDATE SET {sums}"


_constant_defaults: dict[tuple, tuple[list[str], list]] = {}


def _other_columns(model, *, key, counters) -> tuple[list[str], list]:
    """The columns of ``model`` neither key nor counter, and their defaults as the
    database takes them (kept once worked out, unless a default is a callable)."""
    cache_key = (model, tuple(key), tuple(counters), connection.vendor)
    if (known := _constant_defaults.get(cache_key)) is not None:
        return known
    fields = {field.column: field for field in model._meta.concrete_fields}
    others = [column for column, field in fields.items()
              if column not in (*key, *counters) and not field.primary_key]
    defaults = [fields[column].get_db_prep_save(fields[column].get_default(), connection)
                for column in others]
    if not any(callable(fields[column].default) for column in others):
        _constant_defaults[cache_key] = (others, defaults)
    return others, defaults


def add_to_columns(model: type[models.Model], *, where: dict, adds: dict) -> int:
    """``UPDATE <table> SET c = c + %s, ... WHERE k = %s AND ...``: add ``adds`` (by
    attribute name) to the columns of the rows whose fields equal ``where``'s, creating
    none; answers how many rows it changed. An added value may be a ``RawSQL`` (asked
    inside the update, as ``case_has_event`` is). The statement's text is built once per
    set of names.

    ORM reference: ``model.objects.filter(**where).update(**{name: F(name) + value})``
    (rebuilt and compiled on every call: a third of an approval's CPU, the rollup's
    some fifteen columns).
    """
    write = adding_to_columns(model, where=where, adds=adds)
    with connection.cursor() as cursor:
        cursor.execute(write.sql, write.params)
        return cursor.rowcount


def adding_to_columns(model: type[models.Model], *, where: dict, adds: dict) -> "Write":
    """``add_to_columns``' statement, to run with others (``write_together``)."""
    raw = tuple(value.sql if isinstance(value, RawSQL) else None for value in adds.values())
    sql, set_fields, where_fields = _add_to_columns_statement(
        model, tuple(where), tuple(adds), raw)
    params = []
    for field, value in zip(set_fields, adds.values(), strict=True):
        if isinstance(value, RawSQL):
            params.extend(value.params)
        else:  # a number goes as it is (what its field would make of it, at less cost)
            params.append(value if type(value) in (int, float)
                          else field.get_db_prep_save(value, connection))
    params.extend(field.get_db_prep_value(value, connection)
                  for field, value in zip(where_fields, where.values(), strict=True))
    return Write(sql, params)


@functools.cache
def _add_to_columns_statement(model: type[models.Model], where: tuple[str, ...],
                              adds: tuple[str, ...], raw: tuple[str | None, ...]):
    quote = connection.ops.quote_name
    by_attname = {field.attname: field for field in model._meta.concrete_fields}
    set_fields = [by_attname[name] for name in adds]
    where_fields = [by_attname[name] for name in where]
    sets = ", ".join(f"{quote(field.column)} = {quote(field.column)} + {sql or '%s'}"
                     for field, sql in zip(set_fields, raw, strict=True))
    conditions = " AND ".join(f"{quote(field.column)} = %s" for field in where_fields)
    return (f"UPDATE {quote(model._meta.db_table)} SET {sets} WHERE {conditions}",
            set_fields, where_fields)


def write_at_once(*, objects: Sequence[tuple[type[models.Model], Sequence[models.Model]]],
                  rows: Sequence[tuple[type[models.Model], Sequence[str], Sequence[Sequence]]] = (),
                  counters: dict | None = None) -> None:
    """Model instances (their ids set, as ``reserve_ids`` gives them), then ``rows`` of
    models (columns and values as ``copy_rows`` takes them: a JSON column as JSON text),
    then ``add_to_counters(**counters)``, in one statement (PostgreSQL: data-modifying
    ``WITH`` parts). One statement is atomic by itself: outside a transaction it writes
    everything or nothing in one round trip, without BEGIN and COMMIT; a unique
    constraint's clash is an ``IntegrityError``. Each table's rows go as one JSON
    parameter (``jsonb_populate_recordset``): the statement stays short and few in
    parameters, so psycopg reuses its parsed form instead of parsing it every time.

    ORM reference: ``bulk_create`` of each model's instances, then the rows' inserts and
    ``add_to_counters``, in one transaction.
    """
    statements = []
    for model, objs in objects:
        fields = model._meta.concrete_fields
        statements.append(_populating(model, [field.column for field in fields], [
            [_json_value(getattr(obj, field.attname)) for field in fields]
            for obj in objs]))
    for model, columns, values in rows:
        json_columns = {field.column for field in model._meta.concrete_fields
                        if isinstance(field, models.JSONField)}
        statements.append(_populating(model, columns, values, json_text={
            n for n, column in enumerate(columns) if column in json_columns}))
    statements = [statement for statement in statements if statement]
    if counters and counters["rows"]:
        statements.append(_adding_to_counters_from_json(**counters))
    if not statements:
        return
    *first, (last, last_params) = statements
    sql = ("WITH " + ", ".join(f"w{n} AS ({part})" for n, (part, _) in enumerate(first)) + " "
           if first else "")
    with connection.cursor() as cursor:
        cursor.execute(sql + last, [*(value for _, part_params in first
                                      for value in part_params), *last_params])


def _populating(model, columns: Sequence[str], values: Sequence[Sequence],
                json_text: set[int] = frozenset()):
    """An INSERT of ``values`` into ``model``'s table from one JSON parameter; the values
    at the positions ``json_text`` are JSON text, taken as the JSON they spell."""
    if not values:
        return None
    quote = connection.ops.quote_name
    table, names = quote(model._meta.db_table), ", ".join(map(quote, columns))

    def records(as_json):
        return [{column: as_json(value) if n in json_text and value is not None else value
                 for n, (column, value) in enumerate(zip(columns, row, strict=True))}
                for row in values]
    try:
        text = orjson.dumps(records(orjson.Fragment), default=str).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard library
        text = json.dumps(records(json.loads), default=str)
    return (f"INSERT INTO {table} ({names}) SELECT {names} "
            f"FROM jsonb_populate_recordset(NULL::{table}, %s)", [text])


def _json_value(value):
    """A value as ``jsonb_populate_recordset`` reads it into its column."""
    if isinstance(value, timedelta):  # an interval: days apart, as PostgreSQL keeps them
        return f"{value.days} days {value.seconds}.{value.microseconds:06d} seconds"
    return value


# --- Model instances from raw rows (Django's private API) -----------------------------------


def db_values(obj: models.Model, fields: Iterable[models.Field]) -> list:
    """The values of ``obj``'s ``fields`` as the database takes them, for a raw INSERT.

    A value of a kind its field's ``get_db_prep_save`` only passes on (or wraps: an
    integer's size on PostgreSQL) is handed over without those calls (``_plain_values``):
    a transition writes some forty values, and the calls were a tenth of an approval.
    """
    values = []
    for field in fields:
        value = getattr(obj, field.attname)
        kinds, wrap = _plain_values(field)
        if value is None and kinds:
            values.append(None)
        elif type(value) in kinds and (type(value) is not datetime
                                       or value.tzinfo is not None):
            values.append(value if wrap is None else wrap(value))
        else:
            values.append(field.get_db_prep_save(value, connection))
    return values


_INTEGER_FIELDS = (models.IntegerField, models.BigIntegerField, models.SmallIntegerField,
                   models.PositiveIntegerField, models.PositiveBigIntegerField,
                   models.PositiveSmallIntegerField)


@functools.cache
def _plain_values(field: models.Field) -> tuple[tuple[type, ...], Callable | None]:
    """The types of value ``field.get_db_prep_save`` passes on unchanged on this database
    (None too, whenever there are any), and the wrapper it puts an integer in, if any.
    Django's own field classes only, exactly: a subclass may convert."""
    kind = type(field)
    if kind in (models.ForeignKey, models.OneToOneField) and type(field.target_field) in (
            models.AutoField, models.BigAutoField):
        return (int,), None  # exactly int: a bool (an int's subclass) is converted
    if kind in _INTEGER_FIELDS:
        wrappers = getattr(connection.ops, "integerfield_type_map", {})
        return (int,), wrappers.get(field.get_internal_type())
    if kind in (models.CharField, models.TextField, FSMField):
        return (str,), None
    if kind is models.BooleanField:
        return (bool,), None
    if kind is models.FloatField:
        return (float,), None
    if kind is models.DateTimeField and connection.vendor == "postgresql":
        # An aware one (``db_values`` asks): SQLite takes a datetime as text, PostgreSQL's
        # adapter as it is; a naive one its field makes aware (with a warning).
        return (datetime,), None
    return (), None


def mark_saved(obj: models.Model, *, pk=None) -> None:
    """``obj`` was written by raw SQL: make it what ``save()`` would have left (its id set,
    no longer *adding*), so later saves UPDATE it."""
    if pk is not None:
        obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias


def instance_as_read(model: type[models.Model], values: Sequence) -> models.Model:
    """The instance a query would have made of ``values``, already Python values of every
    concrete field in order: ``from_db`` skips ``__init__``'s keyword handling and
    defaults, a third of the cost of ``model(**fields)`` on intake's hot path."""
    return model.from_db(connection.alias, None, values)


def instance_from_row(model: type[models.Model], row: Sequence,
                      fields: Sequence[models.Field] | None = None) -> models.Model:
    """The instance a query would have made of ``row`` (values of ``fields``, by default
    every concrete field), with the conversions a query applies (SQLite hands back
    datetimes as text)."""
    fields = tuple(fields if fields is not None else model._meta.concrete_fields)
    values = [_converted(value, column, converters)
              for (column, converters), value in zip(_converters(model, fields), row, strict=True)]
    return model.from_db(connection.alias, [field.attname for field in fields], values)


@functools.cache
def _converters(model: type[models.Model], fields: tuple[models.Field, ...]) -> list:
    """Each field's column and the conversions a query applies to it, worked out once per
    process (they depend on the field and the database's vendor only)."""
    found = []
    for model_field in fields:
        column = model_field.get_col(model._meta.db_table)
        found.append((column, connection.ops.get_db_converters(column)
                      + column.get_db_converters(connection)))
    return found


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
    conditions = ["id = %s", "escalation_level = %s", f"state IN {in_states(states)}"]
    params = [expected_level + 1, case_id, expected_level]
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


def claim_case_level_with_escalation(*, case_id: int, expected_level: int,
                                     states: Sequence[str], expected_version: int | None,
                                     escalation: Escalation,
                                     due_at_from: str | None) -> Case | None:
    """``claim_case_level``, and in the same statement (PostgreSQL) the unsaved
    ``escalation`` of the level claimed, unless its (case, level) is written already
    (``ON CONFLICT DO NOTHING``). Answers the case as it now is, or None when no row
    matched; the escalation is then saved (its id set, its ``case`` the case answered,
    its ``due_at`` the case's ``due_at_from`` field, none without), or left without an id
    when its level was written before. Elsewhere (SQLite) the reference itself.

    ORM reference: ``claim_case_level``, then ``insert_new`` of the escalation
    (``conflict=("case_id", "level")``).
    """
    if connection.vendor != "postgresql":
        case = claim_case_level(case_id=case_id, expected_level=expected_level,
                                states=states, expected_version=expected_version)
        if case is not None:
            _escalation_of(escalation, case, due_at_from)
            fields = [f for f in Escalation._meta.concrete_fields if not f.primary_key]
            inserted = insert_new(Escalation, columns=[f.column for f in fields],
                                  rows=[db_values(escalation, fields)],
                                  conflict=("case_id", "level"), returning=("id",))
            if inserted:
                mark_saved(escalation, pk=inserted[0][0])
        return case
    sql, given = _claim_with_escalation_statement(tuple(str(state) for state in states),
                                                   expected_version is not None, due_at_from)
    params = [expected_level + 1, case_id, expected_level,
              *([expected_version] if expected_version is not None else []),
              *db_values(escalation, given)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    case = instance_from_row(Case, row[:-1], Case._meta.concrete_fields)
    _escalation_of(escalation, case, due_at_from)
    if row[-1] is not None:
        mark_saved(escalation, pk=row[-1])
    return case


def _escalation_of(escalation: Escalation, case: Case, due_at_from: str | None) -> None:
    escalation.case, escalation.level = case, case.escalation_level
    escalation.due_at = getattr(case, due_at_from) if due_at_from else None


@functools.cache
def _claim_with_escalation_statement(states: tuple[str, ...], versioned: bool,
                                     due_at_from: str | None):
    quote = connection.ops.quote_name
    case_fields = Case._meta.concrete_fields
    # What the escalation takes from the row claimed; the rest are parameters.
    from_case = {"case_id": "id", "level": "escalation_level",
                 "due_at": Case._meta.get_field(due_at_from).column if due_at_from else None}
    fields = [field for field in Escalation._meta.concrete_fields if not field.primary_key]
    given = [field for field in fields if field.attname not in from_case
             or from_case[field.attname] is None]
    values = ", ".join(f"claimed.{quote(from_case[field.attname])}" if field not in given
                       else f"CAST(%s AS {field.db_type(connection)})" for field in fields)
    conditions = ["id = %s", "escalation_level = %s", f"state IN {in_states(states)}",
                  *(["version = %s"] if versioned else [])]
    return (f"WITH claimed AS (UPDATE {quote(Case._meta.db_table)} SET escalation_level = %s,"
            f" version = version + 1 WHERE {' AND '.join(conditions)}"
            f" RETURNING {', '.join(quote(field.column) for field in case_fields)}),"
            f" raised AS (INSERT INTO {quote(Escalation._meta.db_table)}"
            f" ({', '.join(quote(field.column) for field in fields)})"
            f" SELECT {values} FROM claimed"
            f" ON CONFLICT (case_id, level) DO NOTHING RETURNING id)"
            f" SELECT claimed.*, raised.id FROM claimed LEFT JOIN raised ON TRUE"), given


def update_columns(obj: models.Model, attnames: Sequence[str]) -> None:
    """``UPDATE <table> SET <column> = <value>, ... WHERE <pk> = obj.pk``: store these
    fields of ``obj`` (by attribute name) as they stand; the statement's text is built
    once per set of fields.

    ORM reference: ``type(obj).objects.filter(pk=obj.pk).update(**{name: getattr(obj,
    name) for name in attnames})``.
    """
    sql, fields = _update_columns_statement(type(obj), tuple(attnames))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*db_values(obj, fields), obj.pk])


@functools.cache
def _update_columns_statement(model: type[models.Model], attnames: tuple[str, ...]):
    quote = connection.ops.quote_name
    by_attname = {field.attname: field for field in model._meta.concrete_fields}
    fields = [by_attname[name] for name in attnames]
    sets = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    return (f"UPDATE {quote(model._meta.db_table)} SET {sets}"
            f" WHERE {quote(model._meta.pk.column)} = %s"), fields


def update_columns_with_effects(obj: models.Model, attnames: Sequence[str], *,
                                messages: Sequence[OutboxMessage],
                                events: Sequence[AuditEvent]) -> set:
    """``update_columns(obj, attnames)``, then the outbox ``messages`` whose ``dedup_key``
    is not written yet and the audit ``events``, in one statement on PostgreSQL (a
    ``WITH`` of data-modifying parts, each run once); answers the ids of the messages
    inserted and sets the events' ids. Elsewhere (SQLite) the reference itself.

    ORM reference: ``update_columns(obj, attnames)`` (when there are any), ``insert_new``
    of the messages on conflict of ``dedup_key`` (as ``outbox.write`` does), then
    ``AuditEvent.objects.bulk_create(events)``.
    """
    message_fields = OutboxMessage._meta.concrete_fields
    key = OutboxMessage._meta.pk
    if connection.vendor != "postgresql":
        if attnames:
            update_columns(obj, attnames)
        inserted = insert_new(OutboxMessage, columns=[field.column for field in message_fields],
                              rows=[db_values(m, message_fields) for m in messages],
                              conflict=("dedup_key",), returning=(key.column,))
        AuditEvent.objects.bulk_create(events)
        return {key.to_python(value) for (value,) in inserted}
    sql, fields, event_fields = _update_with_effects_statement(type(obj), tuple(attnames))
    params = [*db_values(obj, fields), obj.pk] if attnames else []
    # Each table's rows as one JSON parameter (as ``write_at_once``): orjson makes it
    # faster than Django and psycopg prepare a parameter per value.
    params += [_rows_as_json(message_fields, messages), _rows_as_json(event_fields, events)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        message_ids, event_ids = cursor.fetchone()
    for event, pk in zip(events, event_ids, strict=True):
        mark_saved(event, pk=pk)
    return {key.to_python(value) for value in message_ids}


def _rows_as_json(fields: Sequence[models.Field], objs: Sequence[models.Model]) -> str:
    return orjson.dumps([{field.column: _json_value(getattr(obj, field.attname))
                          for field in fields} for obj in objs], default=str).decode()


@functools.cache
def _update_with_effects_statement(model: type[models.Model], attnames: tuple[str, ...]):
    quote = connection.ops.quote_name
    parts, fields = [], []
    if attnames:
        update, fields = _update_columns_statement(model, attnames)
        parts.append(f"changed AS ({update})")

    def inserting(name, insert_model, insert_fields, conflict=""):
        table = quote(insert_model._meta.db_table)
        columns = ", ".join(quote(field.column) for field in insert_fields)
        parts.append(
            f"{name} AS (INSERT INTO {table} ({columns}) SELECT {columns}"
            f" FROM jsonb_populate_recordset(NULL::{table}, %s){conflict}"
            f" RETURNING {quote(insert_model._meta.pk.column)})")

    inserting("messages", OutboxMessage, OutboxMessage._meta.concrete_fields,
              " ON CONFLICT (dedup_key) DO NOTHING")
    # ``recorded_at`` is the database's to set (a trigger refuses any other value).
    event_fields = [field for field in AuditEvent._meta.concrete_fields
                    if not field.primary_key and field.db_default is models.NOT_PROVIDED]
    inserting("events", AuditEvent, event_fields)
    # ARRAY(subquery) keeps each insert's RETURNING order: the events' ids in their order.
    return (f"WITH {', '.join(parts)}"
            f" SELECT ARRAY(SELECT {quote(OutboxMessage._meta.pk.column)} FROM messages),"
            f" ARRAY(SELECT {quote(AuditEvent._meta.pk.column)} FROM events)",
            fields, event_fields)


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


def renew_lease(*, case_id: int, holder_id: int, now: datetime, until: datetime) -> bool:
    """Move the lease of the case ``holder_id`` holds to ``until`` if it is still live at
    ``now``; answer whether it did. The case page renews it on every view of the holder:
    one plain statement (the ORM's update cost more to build and compile than to run).

    ORM reference (``claiming.extend_lease``): ``Case.objects.filter(pk=case_id,
    state=CaseState.ASSIGNED, assignee=holder_id, lease_expires_at__gt=now)
    .update(lease_expires_at=until)``.
    """
    quote, adapt = connection.ops.quote_name, connection.ops.adapt_datetimefield_value
    lease = quote(Case._meta.get_field("lease_expires_at").column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(Case._meta.db_table)} SET {lease} = %s"
            f" WHERE {quote(Case._meta.pk.column)} = %s"
            f" AND {quote(Case._meta.get_field('state').column)} = %s"
            f" AND {quote(Case._meta.get_field('assignee').column)} = %s AND {lease} > %s",
            (adapt(until), case_id, str(CaseState.ASSIGNED), holder_id, adapt(now)))
        return cursor.rowcount > 0


def claimant_available(user_id: int) -> RawSQL:
    """For a claim's statement (PostgreSQL): is the person available to take cases (no
    status row: yes)? Their status row is locked until commit whatever it says, as
    ``assignment.refuse_if_away`` locks it: going away meanwhile waits for the claim,
    then hands its case over. Uncorrelated, so asked once, before any case is read or
    locked: a person marked away locks no case.

    ORM reference: ``assignment.is_available(user)`` after
    ``ReviewerStatus.objects.select_for_update().filter(user=user_id)`` was read.
    """
    status = ReviewerStatus._meta
    return RawSQL(
        f"COALESCE((SELECT s.{status.get_field('available').column}"
        f" FROM {status.db_table} s WHERE s.{status.get_field('user').column} = %s"
        f" FOR UPDATE), TRUE)", (user_id,), output_field=models.BooleanField())


# --- Bulk writes by COPY (PostgreSQL) --------------------------------------------------------


def reserve_ids(*wanted: tuple[type[models.Model], int]) -> list[list[int]]:
    """``count`` new ids from each model's id sequence, in one query: rows written by
    ``copy_objects`` need their ids before they are sent (audit events hash them).

    ORM reference: the ids ``bulk_create`` would have given, i.e. fresh values of the
    same sequence, never reused.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(
            "array(SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s))"
            for _ in wanted), [value for model, count in wanted
                               for value in (model._meta.db_table, model._meta.pk.column, count)])
        return list(cursor.fetchone())


def copy_objects(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """``objs`` of ``model``, ids included, by one COPY.

    ORM reference: ``model.objects.bulk_create(objs)`` stores the same rows.
    """
    if not objs:
        return
    fields = model._meta.concrete_fields
    json_fields = [(n, field.encoder) for n, field in enumerate(fields)
                   if isinstance(field, models.JSONField)]

    def rows():
        for obj in objs:
            values = [getattr(obj, field.attname) for field in fields]
            for n, encoder in json_fields:
                values[n] = json_codec.dumps(values[n], ensure_ascii=False,
                                             encoder=encoder or json.JSONEncoder).decode()
            yield values

    copy_rows(model._meta.db_table, [field.column for field in fields], rows())


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """One COPY of ``rows`` (at least one). They are built as they are sent: psycopg
    sends every 32 KiB, so PostgreSQL stores the first rows while the next are built."""
    quote = connection.ops.quote_name
    sql = f"COPY {quote(table)} ({', '.join(map(quote, columns))}) FROM STDIN"
    started = time.monotonic()
    count = 0
    # Errors become Django's (a clash on a unique constraint is an IntegrityError).
    with (connection.cursor() as cursor, connection.wrap_database_errors,
          cursor.cursor.copy(sql) as copy):
        for values in rows:
            copy.write_row(values)
            count += 1
    if connection.queries_logged:  # counted and shown like any other statement
        connection.queries_log.append({"sql": f"{sql} -- {count} rows",
                                       "time": f"{time.monotonic() - started:.3f}"})


# --- Locks and liveness -----------------------------------------------------------------------


def hold_transaction_lock(*keys: int) -> None:
    """Wait for, then hold until this transaction ends, the locks named ``keys``
    (``pg_advisory_xact_lock``), taken in their order in one statement. SQLite needs
    none: its write transactions (IMMEDIATE here) already run one at a time."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(['pg_advisory_xact_lock(%s)'] * len(keys))}", keys)


def ping() -> None:
    """One round trip to the database; raises if it does not answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


# --- Claim-next's candidate: one plain statement per shape -----------------------------------


def claim_candidate(*, user_id: int, states: Sequence[str], everyone: bool,
                    queue_id: int | None = None, queue_slug: str | None = None,
                    heads: int | None = None, related: Sequence[str] = (),
                    omit: Sequence[str] = ()) -> Case | None:
    """The most urgent case in ``states`` the person may claim that no other claimer holds,
    locked ``FOR UPDATE SKIP LOCKED`` until commit, or None (PostgreSQL). With it, in the
    same statement: its queue, its resolution (or that it has none), ``has_consults``, and
    the relations ``related`` (``Case``'s ``select_related`` paths, as the content hooks
    name them) without the fields ``omit`` names along them. Nothing while the person is
    away (``claimant_available``: their status row locked whatever it says).

    Where it looks: the queue ``queue_id``, or the one named ``queue_slug`` (read inside the
    statement, not first), or, with ``heads``, among the ``heads`` most urgent cases of each
    of their queues (``id = ANY(ARRAY(...))``: one LATERAL range of ``case_claimable_idx``
    per queue, found first, then the cases read by primary key; as ``IN (...)`` the planner
    joined every waiting case with its content before the heads), else all their queues.
    ``everyone``: they work every queue (a manager). The text is built once per process
    per shape: the ORM's five joins, ``Exists``, membership and sub-selects cost more to
    build and compile than PostgreSQL took to run them, on every claim.

    ORM reference (``tests/workflows/test_db.py``): ``selectors.workable_cases(user=user,
    queue=..., queue_slug=...)`` (with ``heads``: ``filter(pk__in=<each of their queues'
    first heads by urgency>)``), ``.select_related("queue", "resolution", *related)
    .defer(*omit).annotate(has_consults=Exists(<its consults>))
    .filter(claimant_available(user_id)).select_for_update(skip_locked=True, of=("self",))
    .first()``.
    """
    where = ("queue" if queue_id is not None else "slug" if queue_slug is not None
             else "heads" if heads else "all")
    sql, slots, nodes = _claim_candidate_statement(
        where=where, everyone=everyone, heads=heads or 0,
        states=tuple(str(state) for state in states), related=tuple(related),
        omit=tuple(omit))
    values = {"user": user_id, "queue": queue_id if where == "queue" else queue_slug}
    params = [values[slot] for slot in slots]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else _case_with_relations(row, nodes)


def _case_with_relations(row: Sequence, nodes: Sequence[tuple]) -> Case:
    """The case of ``row`` (``has_consults`` then each node's columns), its relations
    cached as ``select_related`` leaves them: a missing row cached as None (its own
    relations not at all), a one-to-one's other side cached too."""
    read: list = []
    at = 1
    for parent, field, reverse, model, fields in nodes:
        values = row[at:at + len(fields)]
        at += len(fields)
        if parent is None:
            read.append(instance_from_row(model, values, fields))
            continue
        owner = read[parent]
        found = (None if owner is None or values[0] is None  # its id: a LEFT JOIN's NULLs
                 else instance_from_row(model, values, fields))
        read.append(found)
        if owner is None:
            continue
        if reverse:
            field.remote_field.set_cached_value(owner, found)
            if found is not None:
                field.set_cached_value(found, owner)
        else:
            field.set_cached_value(owner, found)
            if found is not None and field.unique:
                field.remote_field.set_cached_value(found, owner)
    case = read[0]
    case.has_consults = bool(row[0])
    return case


@functools.cache
def _claim_candidate_statement(*, where: str, everyone: bool, heads: int,
                               states: tuple[str, ...], related: tuple[str, ...],
                               omit: tuple[str, ...]):
    """``claim_candidate``'s statement, the order of its parameters (``"user"`` or
    ``"queue"``) and the nodes its row is read into (``_case_joins``).

    The states are written into the text (``in_states``): ``case_claimable_idx``'s
    condition."""
    quote = connection.ops.quote_name
    case = Case._meta
    table = quote(case.db_table)
    nodes, columns, joins = _case_joins(("queue", "resolution", *related), omit)
    consults = ConsultRequest._meta
    states = in_states(states)
    state_column, queue_column = (quote(case.get_field("state").column),
                                  quote(case.get_field("queue").column))
    members = _memberships(select="{queue}", where="{user} = %s")
    member_slots = ("user",) * MEMBERSHIP_BRANCHES
    urgency = (f"{{0}}.{quote(case.get_field('priority').column)} DESC,"
               f" {{0}}.{quote(case.get_field('due_at').column)} ASC,"
               f" {{0}}.{quote(case.pk.column)} ASC")
    conditions, slots = [], []
    if where == "heads":
        queue = Queue._meta
        mine = f"SELECT q.{quote(queue.pk.column)} FROM {quote(queue.db_table)} q"
        if not everyone:
            mine += f" WHERE q.{quote(queue.pk.column)} IN ({members})"
            slots += member_slots
        conditions.append(
            f"c.{quote(case.pk.column)} = ANY(ARRAY(SELECT head.id FROM ({mine})"
            f" AS mine (queue_id) CROSS JOIN LATERAL (SELECT h.{quote(case.pk.column)}"
            f" FROM {table} h WHERE h.{queue_column} = mine.queue_id"
            f" AND h.{state_column} IN {states} ORDER BY {urgency.format('h')}"
            f" LIMIT {int(heads)}) AS head))")
    conditions.append(f"c.{state_column} IN {states}")
    if where == "queue":
        conditions.append(f"c.{queue_column} = %s")
        slots.append("queue")
    elif where == "slug":
        queue = Queue._meta
        conditions.append(f"c.{queue_column} = (SELECT q.{quote(queue.pk.column)}"
                          f" FROM {quote(queue.db_table)} q"
                          f" WHERE q.{quote(queue.get_field('slug').column)} = %s LIMIT 1)")
        slots.append("queue")
    if where != "heads" and not everyone:
        conditions.append(f"c.{queue_column} IN ({members})")
        slots += member_slots
    conditions.append(claimant_available(0).sql)
    slots.append("user")
    sql = (f"SELECT EXISTS (SELECT 1 FROM {quote(consults.db_table)} k"
           f" WHERE k.{quote(consults.get_field('case').column)} = c.{quote(case.pk.column)}),"
           f" {columns} FROM {table} c{joins}"
           f" WHERE {' AND '.join(conditions)}"
           f" ORDER BY {urgency.format('c')} LIMIT 1 FOR UPDATE OF c SKIP LOCKED")
    return sql, tuple(slots), tuple(nodes)


def in_states(states: Iterable[str]) -> str:
    """``('open', 'escalated')``: states written into a statement's text rather than
    passed as parameters. A prepared statement is planned once for any parameters (after
    its first runs), and such a plan cannot know that parameters match a partial index's
    condition (``state IN (...)``): PostgreSQL would plan the statement at every run."""
    return f"({', '.join(map(_state_literal, states))})"


def _state_literal(state: str) -> str:
    # A state is a name from the code (``CaseState``), never a person's input.
    state = str(state)
    if not re.fullmatch(r"[a-z_]+", state):
        raise ValueError(f"not a state: {state!r}")
    return f"'{state}'"


def _kept_fields(model, prefix: str, omit: Sequence[str]) -> tuple[models.Field, ...]:
    """The model's fields a read keeps, ``omit`` naming the others by their path (with
    ``prefix``): in the model's order (``from_db`` takes them so), the primary key never
    left out, and first: it tells a missing row of a nullable relation."""
    fields = tuple(field for field in model._meta.concrete_fields
                   if field.primary_key or f"{prefix}{field.name}" not in omit)
    assert fields[0].primary_key, model
    return fields


def _case_joins(paths: Sequence[str], omit: Sequence[str]) -> tuple[tuple, str, str]:
    """A case ``c`` with its relations ``paths`` (``select_related``'s), without the fields
    ``omit`` names along them: the nodes its columns are read into (``_case_with_relations``:
    ``(parent node, the relation's forward field, whether it is followed backwards, model,
    fields)``, the case first), the columns and the joins."""
    quote = connection.ops.quote_name

    def kept(model, prefix: str) -> tuple[models.Field, ...]:
        return _kept_fields(model, prefix, omit)

    nodes = [(None, None, False, Case, kept(Case, ""))]
    aliases, outer, joins = ["c"], [False], []
    at_path = {"": 0}
    for path in paths:
        names = path.split("__")
        for depth in range(1, len(names) + 1):
            prefix = "__".join(names[:depth])
            if prefix in at_path:
                continue
            parent = at_path["__".join(names[:depth - 1])]
            relation = nodes[parent][3]._meta.get_field(names[depth - 1])
            reverse = not relation.concrete  # a one-to-one followed from its other side
            field = relation.field if reverse else relation
            model = relation.related_model
            alias = f"t{len(nodes)}"
            left = reverse or field.null or outer[parent]
            if reverse:
                on = (f"{alias}.{quote(field.column)}"
                      f" = {aliases[parent]}.{quote(field.target_field.column)}")
            else:
                on = (f"{alias}.{quote(field.target_field.column)}"
                      f" = {aliases[parent]}.{quote(field.column)}")
            joins.append(f" {'LEFT JOIN' if left else 'JOIN'} {quote(model._meta.db_table)}"
                         f" {alias} ON {on}")
            at_path[prefix] = len(nodes)
            nodes.append((parent, field, reverse, model, kept(model, f"{prefix}__")))
            aliases.append(alias)
            outer.append(left)
    columns = ", ".join(f"{alias}.{quote(field.column)}"
                        for alias, node in zip(aliases, nodes, strict=True) for field in node[4])
    return tuple(nodes), columns, "".join(joins)


# --- Who works a queue: a member, or Responsible on its process (each directly or through
# a group) ----------------------------------------------------------------------------------
# Plain SQL over the membership and RACI tables rather than the ORM's ``through``
# subqueries: the fragment sits in every scoped query, claim-next's included, and
# compiling it costs next to nothing.


def _memberships(*, select: str, where: str) -> str:
    """``SELECT <select> ... WHERE <where>`` over every way of working a queue; ``{queue}``
    and ``{user}`` in both stand for the membership's columns. Each parameter of
    ``where`` is passed once per branch of the UNION (``MEMBERSHIP_BRANCHES`` times).

    A person works a queue as a member (directly or through a group) or as Responsible
    ("R", for any activity, directly or through a group) in the RACI matrix of the
    queue's process: whoever is made Responsible for a process's work works its queues.
    """
    direct = Queue.members.through._meta
    by_group = Queue.member_groups.through._meta
    user_groups = get_user_model().groups.through._meta
    ug_user, ug_group = (user_groups.get_field("user").column,
                         user_groups.get_field("group").column)
    raci = RaciAssignment._meta
    queue_table, queue_process = Queue._meta.db_table, Queue._meta.get_field("process").column
    responsible = (f"{raci.db_table} r JOIN {queue_table} q"
                   f" ON q.{queue_process} = r.{raci.get_field('process').column}")
    role = f"r.{raci.get_field('role').column} = '{RaciRole.RESPONSIBLE.value}'"
    branches = (
        (f"m.{direct.get_field('queue').column}", f"m.{direct.get_field('user').column}",
         f"{direct.db_table} m", "TRUE"),
        (f"g.{by_group.get_field('queue').column}", f"ug.{ug_user}",
         f"{by_group.db_table} g JOIN {user_groups.db_table} ug"
         f" ON ug.{ug_group} = g.{by_group.get_field('group').column}", "TRUE"),
        ("q.id", f"r.{raci.get_field('user').column}", responsible,
         f"{role} AND r.{raci.get_field('user').column} IS NOT NULL"),
        ("q.id", f"ug.{ug_user}",
         f"{responsible} JOIN {user_groups.db_table} ug"
         f" ON ug.{ug_group} = r.{raci.get_field('group').column}", role),
    )
    return " UNION ".join(
        f"SELECT {select.format(queue=queue, user=user)} FROM {tables}"
        f" WHERE {condition} AND {where.format(queue=queue, user=user)}"
        for queue, user, tables, condition in branches)


# How many times ``_memberships`` repeats each parameter of its ``where``.
MEMBERSHIP_BRANCHES = 4


def queues_worked_by(user_id: int) -> RawSQL:
    """Ids of the queues the person works: a member directly or through a group, or
    Responsible in the RACI matrix of the queue's process (directly or through a group).

    ORM reference: ``Queue.objects.filter(Q(members=user) | Q(member_groups__user=user)
    | Q(process__raci__role="R", process__raci__user=user)
    | Q(process__raci__role="R", process__raci__group__user=user))``.
    """
    return RawSQL(_memberships(select="{queue}", where="{user} = %s"),
                  (user_id,) * MEMBERSHIP_BRANCHES)


def workers_of_queue(queue_id: int) -> RawSQL:
    """Ids of the people who work the queue: its members, directly or through a group,
    and the Responsible of its process's RACI matrix, directly or through a group.

    ORM reference: ``User.objects.filter(Q(review_queues=q) | Q(groups__review_queues=q)
    | Q(raci_assignments__role="R", raci_assignments__process__queues=q)
    | Q(groups__raci_assignments__role="R", groups__raci_assignments__process__queues=q))``.
    """
    return RawSQL(_memberships(select="{user}", where="{queue} = %s"),
                  (queue_id,) * MEMBERSHIP_BRANCHES)


def queue_worker_pairs(queue_ids: Sequence[int]) -> list[tuple[int, int]]:
    """Every (queue id, person id) membership of the queues, direct or through a group, in
    one statement: the reference of ``workers_of_queue`` for each queue."""
    if not queue_ids:
        return []
    placeholders = ", ".join(["%s"] * len(queue_ids))
    sql = _memberships(select="{queue}, {user}", where=f"{{queue}} IN ({placeholders})")
    with connection.cursor() as cursor:
        cursor.execute(sql, list(queue_ids) * MEMBERSHIP_BRANCHES)
        return cursor.fetchall()


def capped_case_count(*, states: Sequence[str], cap: int) -> RawSQL:
    """Per queue row of the outer query, its cases in ``states``, counted up to ``cap``
    and no further: at most ``cap`` entries of ``case_claimable_idx`` are read however
    long the backlog.

    ORM reference: ``min(Case.objects.filter(queue=q, state__in=states).count(), cap)``.
    """
    return RawSQL(
        f"SELECT count(*) FROM (SELECT 1 FROM {Case._meta.db_table} c"
        f" WHERE c.queue_id = {Queue._meta.db_table}.id"
        f" AND c.state IN {in_states(states)}"
        f" LIMIT %s) AS capped", (cap,))


# --- What every signed-in request asks: the person's permissions and the top bar ------------
# Plain SQL: building and compiling the ORM's versions cost 0.4-1 ms of CPU a request
# (the approvals count alone 1 ms), for statements the database answers in microseconds.


def permission_names(user_id: int) -> set[str]:
    """The person's permissions, their own and their groups', as ``app_label.codename``.

    ORM reference (``workflows.permissions_backend``): ``Permission.objects.filter(
    Q(user=user) | Q(group__user=user)).values_list("content_type__app_label",
    "codename")``.
    """
    with connection.cursor() as cursor:
        cursor.execute(_permission_names_sql("%s"), (user_id, user_id))
        return {name for (name,) in cursor.fetchall()}


@functools.cache
def _permission_names_sql(user: str, *, aggregate: str = "") -> str:
    """``SELECT`` of the names (one a row, or all in one through ``aggregate``) of the
    permissions of the person whose id is ``user`` (a column, or ``%s`` twice)."""
    User = get_user_model()
    own, groups = User.user_permissions.through._meta, User.groups.through._meta
    group_permissions = Group.permissions.through._meta
    permission, content_type = Permission._meta, ContentType._meta
    name = (f"ct.{content_type.get_field('app_label').column} || '.'"
            f" || p.{permission.get_field('codename').column}")
    return (f"SELECT {f'{aggregate}({name})' if aggregate else name}"
            f" FROM {permission.db_table} p JOIN {content_type.db_table} ct"
            f" ON ct.id = p.{permission.get_field('content_type').column}"
            f" WHERE p.id IN ("
            f"SELECT o.{own.get_field('permission').column} FROM {own.db_table} o"
            f" WHERE o.{own.get_field('user').column} = {user}"
            f" UNION SELECT gp.{group_permissions.get_field('permission').column}"
            f" FROM {group_permissions.db_table} gp JOIN {groups.db_table} ug"
            f" ON ug.{groups.get_field('group').column}"
            f" = gp.{group_permissions.get_field('group').column}"
            f" WHERE ug.{groups.get_field('user').column} = {user})")


def _permission_names_column(user: str, vendor: str) -> str:
    """One column: the names of ``_permission_names_sql`` aggregated (an array in
    PostgreSQL, a JSON array in SQLite: ``_names_from`` reads either)."""
    if vendor == "postgresql":
        return f"ARRAY({_permission_names_sql(user)})"
    return f"({_permission_names_sql(user, aggregate='json_group_array')})"


def _names_from(column) -> set[str]:
    return set(column if isinstance(column, list) else json.loads(column))


def availability_and_loads(user_ids: Sequence[int], *,
                           states: Sequence[str]) -> dict[int, tuple[bool | None, int]]:
    """Per person: whether they are available (their status says so; None: they have
    none) and how many cases in ``states`` they hold (``case_assignee_idx``); one
    statement.

    ORM reference (``workflows.services.assignment``): ``statuses(user_ids)`` and
    ``open_loads(user_ids)``, two queries.
    """
    if not user_ids:
        return {}
    status, case = ReviewerStatus._meta, Case._meta
    people = ", ".join(["%s"] * len(user_ids))
    held = ", ".join(["%s"] * len(states))
    sql = (f"SELECT u.id, s.{status.get_field('available').column},"
           f" (SELECT COUNT(*) FROM {case.db_table} c"
           f" WHERE c.{case.get_field('assignee').column} = u.id"
           f" AND c.{case.get_field('state').column} IN ({held}))"
           f" FROM {get_user_model()._meta.db_table} u"
           f" LEFT JOIN {status.db_table} s ON s.{status.get_field('user').column} = u.id"
           f" WHERE u.id IN ({people})")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(str(state) for state in states), *user_ids])
        return {user_id: (None if available is None else bool(available), load)
                for user_id, available, load in cursor.fetchall()}


def top_bar_counts(*, user_id: int, manager: bool,
                   reads_everything: bool) -> tuple[bool, int, int]:
    """For the top bar, one statement: does the person work any queue (a manager works
    every one), how many four-eyes cases wait for their approval, how many of their
    notifications are unread.

    ORM reference (``workflows.selectors``): ``is_manager(user) or
    member_queues(user=user).exists()``, ``pending_approvals(user=user).count()``,
    ``unread_notification_count(user=user)``; a manager or an auditor
    (``reads_everything``) sees every case, anyone else the cases of ``visible_cases``.
    """
    case, notification = Case._meta, Notification._meta
    member_sql = _memberships(select="{queue}", where="{user} = %s")
    member_params = (user_id,) * MEMBERSHIP_BRANCHES
    first_reviewer = f"c.{case.get_field('first_reviewer').column}"
    params: list = []
    works = "TRUE"
    if not manager:
        works = f"EXISTS ({member_sql})"
        params += member_params
    scope = ""
    params.append(user_id)
    if not reads_everything:
        scope, scope_params = _case_scope(user_id)
        scope = f" AND {scope}"
        params += scope_params
    params.append(user_id)
    sql = (f"SELECT {works},"
           f" (SELECT COUNT(*) FROM {case.db_table} c"
           f" WHERE c.{case.get_field('state').column}"
           f" = {_state_literal(CaseState.PENDING_APPROVAL)}"
           f" AND ({first_reviewer} IS NULL OR {first_reviewer} <> %s){scope}),"
           f" (SELECT COUNT(*) FROM {notification.db_table} n"
           f" WHERE n.{notification.get_field('user').column} = %s"
           f" AND n.{notification.get_field('read_at').column} IS NULL)")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        works_queues, approvals, unread = cursor.fetchone()
    return bool(works_queues), approvals, unread


def _case_scope(user_id: int) -> tuple[str, list]:
    """The condition on a case row ``c`` that it is one of ``selectors.visible_cases``
    for a person who does not read everything (I8), and its parameters."""
    case, consult = Case._meta, ConsultRequest._meta
    sql = (f"(c.{case.get_field('queue').column} IN"
           f" ({_memberships(select='{queue}', where='{user} = %s')})"
           f" OR c.{case.get_field('assignee').column} = %s"
           f" OR c.{case.get_field('first_reviewer').column} = %s"
           f" OR (c.id IN (SELECT k.{consult.get_field('case').column}"
           f" FROM {consult.db_table} k"
           f" WHERE k.{consult.get_field('consultee').column} = %s)"
           f" AND c.{case.get_field('state').column} IN {in_states(OPEN_STATES)}))")
    return sql, [*(user_id,) * MEMBERSHIP_BRANCHES, user_id, user_id, user_id]


def case_for_page(*, case_id: int, user_id: int, reads_everything: bool) -> Case | None:
    """The case, if the person may see it (I8), with everything its page shows of it:
    its queue, holder and first reviewer, its resolution with who resolved and approved
    it, and ``user_works_queue`` (which actions the page offers) and ``has_consults``
    (most have none). None when there is no such case or it is out of their scope, so a
    404 costs this one statement. Plain SQL: the ORM's five joins and scope filter cost
    more to build and compile than to run, on every case page.

    ORM reference: ``selectors.with_membership(selectors.visible_cases(user=user),
    user=user).annotate(has_consults=case_has_consults()).select_related("queue",
    "assignee", "first_reviewer", "resolution__resolved_by", "resolution__approved_by")
    .filter(pk=case_id).first()``.
    """
    parts, sql = _cases_for_pages_sql(scoped=not reads_everything, approvals=False)
    params: list = [*(user_id,) * MEMBERSHIP_BRANCHES, case_id]
    if not reads_everything:
        params += _case_scope(user_id)[1]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else _case_for_pages(row, parts)


def pending_approvals(*, user_id: int, reads_everything: bool, offset: int,
                      limit: int) -> list[Case]:
    """A page of the four-eyes cases waiting for the person's approval (in their scope,
    I8, and not resolved first by them), most urgent first, each read as
    ``case_for_page`` reads a case: the approvals page, one plain statement.

    ORM reference: ``selectors.pending_approvals(user=user).select_related(
    "resolution__resolved_by")[offset:offset + limit]``.
    """
    parts, sql = _cases_for_pages_sql(scoped=not reads_everything, approvals=True)
    params: list = [*(user_id,) * MEMBERSHIP_BRANCHES, str(CaseState.PENDING_APPROVAL),
                    user_id]
    if not reads_everything:
        params += _case_scope(user_id)[1]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit, offset])
        return [_case_for_pages(row, parts) for row in cursor.fetchall()]


def _case_for_pages(row: Sequence, parts: tuple) -> Case:
    read, at = [], 2
    for model, fields in parts:
        values = row[at:at + len(fields)]
        at += len(fields)
        # A missing row (no holder, no resolution...) comes back as NULLs, its id too.
        read.append(None if values[0] is None else instance_from_row(model, values, fields))
    case, queue, assignee, first_reviewer, resolution, resolved_by, approved_by = read
    # As select_related leaves them: each relation cached, a missing one as None.
    case.queue, case.assignee, case.first_reviewer = queue, assignee, first_reviewer
    Case._meta.get_field("resolution").set_cached_value(case, resolution)
    if resolution is not None:
        resolution.case, resolution.resolved_by, resolution.approved_by = (
            case, resolved_by, approved_by)
    case.user_works_queue, case.has_consults = bool(row[0]), bool(row[1])
    return case


@functools.cache
def _cases_for_pages_sql(*, scoped: bool, approvals: bool) -> tuple[tuple, str]:
    """``case_for_page``'s (and ``pending_approvals``') models with their columns in the
    order it selects them, and its statement (the same text every time: written once
    per process)."""
    User = get_user_model()
    case, consult, resolution = Case._meta, ConsultRequest._meta, Resolution._meta
    quote = connection.ops.quote_name
    people = tuple(User._meta.concrete_fields)
    parts = (("c", Case, tuple(case.concrete_fields)),
             ("q", Queue, tuple(Queue._meta.concrete_fields)),
             ("a", User, people), ("f", User, people),
             ("r", Resolution, tuple(resolution.concrete_fields)),
             ("rb", User, people), ("ab", User, people))
    columns = ", ".join(f"{alias}.{quote(field.column)}"
                        for alias, _model, fields in parts for field in fields)
    users, user_pk = quote(User._meta.db_table), quote(User._meta.pk.column)
    first_reviewer = f"c.{case.get_field('first_reviewer').column}"
    where = "c.id = %s"
    if approvals:
        where = (f"c.{case.get_field('state').column} = %s"
                 f" AND ({first_reviewer} IS NULL OR {first_reviewer} <> %s)")
    sql = (f"SELECT c.{case.get_field('queue').column} IN"
           f" ({_memberships(select='{queue}', where='{user} = %s')}),"
           f" EXISTS (SELECT 1 FROM {consult.db_table} k"
           f" WHERE k.{consult.get_field('case').column} = c.id), {columns}"
           f" FROM {case.db_table} c"
           f" JOIN {quote(Queue._meta.db_table)} q"
           f" ON q.{quote(Queue._meta.pk.column)} = c.{case.get_field('queue').column}"
           f" LEFT JOIN {users} a ON a.{user_pk} = c.{case.get_field('assignee').column}"
           f" LEFT JOIN {users} f ON f.{user_pk} = {first_reviewer}"
           f" LEFT JOIN {quote(resolution.db_table)} r"
           f" ON r.{resolution.get_field('case').column} = c.id"
           f" LEFT JOIN {users} rb"
           f" ON rb.{user_pk} = r.{resolution.get_field('resolved_by').column}"
           f" LEFT JOIN {users} ab"
           f" ON ab.{user_pk} = r.{resolution.get_field('approved_by').column}"
           f" WHERE {where}{' AND ' + _case_scope(0)[0] if scoped else ''}")
    if approvals:  # ``selectors.URGENCY_ORDER``
        sql += (f" ORDER BY c.{case.get_field('priority').column} DESC,"
                f" c.{case.get_field('due_at').column} ASC, c.id ASC LIMIT %s OFFSET %s")
    return tuple((model, fields) for _alias, model, fields in parts), sql


def case_list_rows(*, fields: Sequence[str], user_id: int, reads_everything: bool,
                   after: int | None = None, older: bool = True, offset: int = 0,
                   limit: int) -> list[tuple]:
    """A page of the cases the person may see (I8), by id, newest first (``older``) or
    oldest first, past the case ``after`` if given: each row the case's ``fields``
    (attribute names of its columns), then its queue's slug and its holder's username.
    Plain SQL: the list's scope, joins and ordering cost more to build and compile
    through the ORM than to run, on every page of the case API.

    ORM reference: ``selectors.visible_cases(user=user).filter(id__lt=after)`` (``__gt``
    oldest first) ``.order_by("-id")`` (``"id"``) ``.values_list(*fields, "queue__slug",
    "assignee__username")[offset:offset + limit]``.
    """
    sql = _case_list_sql(tuple(fields), scoped=not reads_everything, older=older,
                         after=after is not None)
    params: list = _case_scope(user_id)[1] if not reads_everything else []
    if after is not None:
        params.append(after)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit, offset])
        rows = cursor.fetchall()
    converters = _converters(Case, tuple(Case._meta.get_field(name) for name in fields))
    if not any(each for _column, each in converters):  # PostgreSQL's rows are as read
        return rows
    # SQLite hands back datetimes as text, naive: converted as a query converts them.
    return [(*(_converted(value, column, each) for value, (column, each)
               in zip(row, converters, strict=False)), *row[len(fields):]) for row in rows]


def _converted(value, column, converters):
    for convert in converters:
        value = convert(value, column, connection)
    return value


@functools.cache
def _case_list_sql(fields: tuple[str, ...], *, scoped: bool, older: bool, after: bool) -> str:
    case = Case._meta
    quote = connection.ops.quote_name
    User = get_user_model()
    columns = ", ".join(f"c.{quote(case.get_field(name).column)}" for name in fields)
    conditions = [_case_scope(0)[0]] if scoped else []
    if after:
        conditions.append(f"c.id {'<' if older else '>'} %s")
    return (f"SELECT {columns}, q.{quote(Queue._meta.get_field('slug').column)},"
            f" a.{quote(User._meta.get_field('username').column)}"
            f" FROM {case.db_table} c"
            f" JOIN {quote(Queue._meta.db_table)} q"
            f" ON q.{quote(Queue._meta.pk.column)} = c.{case.get_field('queue').column}"
            f" LEFT JOIN {quote(User._meta.db_table)} a"
            f" ON a.{quote(User._meta.pk.column)} = c.{case.get_field('assignee').column}"
            f"{' WHERE ' + ' AND '.join(conditions) if conditions else ''}"
            f" ORDER BY c.id {'DESC' if older else 'ASC'} LIMIT %s OFFSET %s")


def person(user_id: int):
    """The person with this id and their permissions' names (as ``permission_names``), in
    one statement, read afresh (every request re-reads its person, so a deactivation, a
    new password or a changed group takes effect at once): ``(person, names)``, or None.

    ORM reference (``ModelBackend.get_user``, then its permissions):
    ``User.objects.get(pk=user_id)``, ``permission_names(user_id)``.
    """
    with connection.cursor() as cursor:
        cursor.execute(_person_sql(connection.vendor), (user_id,))
        row = cursor.fetchone()
    if row is None:
        return None
    return instance_from_row(get_user_model(), row[:-1]), _names_from(row[-1])


@functools.cache
def _person_sql(vendor: str) -> str:
    User = get_user_model()
    quote = connection.ops.quote_name
    user_id = f"u.{quote(User._meta.pk.column)}"
    columns = [f"u.{quote(field.column)}" for field in User._meta.concrete_fields]
    return (f"SELECT {', '.join(columns)}, {_permission_names_column(user_id, vendor)}"
            f" FROM {quote(User._meta.db_table)} u WHERE {user_id} = %s")


def person_named(username: str):
    """The active person with this username, their permissions' names (as
    ``permission_names``) and the ids of the queues they work (as ``queues_worked_by``),
    in one statement: ``(person, names, queue_ids)``, or None. A manager reassigning a
    case names its new holder so; whether they may take it needs no further query.

    ORM reference: ``User.objects.get(username=username, is_active=True)``,
    ``permission_names(person.pk)``, ``Queue.objects.filter(pk__in=queues_worked_by(
    person.pk))``.
    """
    with connection.cursor() as cursor:
        cursor.execute(_person_named_sql(connection.vendor), (username,))
        row = cursor.fetchone()
    if row is None:
        return None
    return (instance_from_row(get_user_model(), row[:-2]), _names_from(row[-2]),
            {int(queue_id) for queue_id in _names_from(row[-1])})


@functools.cache
def _person_named_sql(vendor: str) -> str:
    User = get_user_model()
    quote = connection.ops.quote_name
    user_id = f"u.{quote(User._meta.pk.column)}"
    columns = [f"u.{quote(field.column)}" for field in User._meta.concrete_fields]
    queues = _memberships(select="{queue} AS worked", where="{user} = " + user_id)
    queues = (f"ARRAY({queues})" if vendor == "postgresql"
              else f"(SELECT json_group_array(worked) FROM ({queues}))")
    return (f"SELECT {', '.join(columns)}, {_permission_names_column(user_id, vendor)},"
            f" {queues} FROM {quote(User._meta.db_table)} u"
            f" WHERE u.{quote(User._meta.get_field(User.USERNAME_FIELD).column)} = %s"
            f" AND u.{quote(User._meta.get_field('is_active').column)}")


def people(user_ids: Sequence[int]) -> list:
    """The people with these ids, read afresh (in no particular order).

    ORM reference: ``User.objects.filter(pk__in=user_ids)``.
    """
    if not user_ids:
        return []
    User = get_user_model()
    fields = User._meta.concrete_fields
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(quote(field.column) for field in fields)}"
                       f" FROM {quote(User._meta.db_table)}"
                       f" WHERE {quote(User._meta.pk.column)}"
                       f" IN ({', '.join(['%s'] * len(user_ids))})", list(user_ids))
        rows = cursor.fetchall()
    return [instance_from_row(User, row) for row in rows]


def person_by_token(key: str):
    """The API token with this key, its person and their permissions' names, as
    ``(person, token, names)``, or None: one statement, on every request, so a rotated
    token, a deactivation or a changed group takes effect at once.

    ORM reference (DRF's ``TokenAuthentication``): ``Token.objects.select_related("user")
    .get(key=key)``, then ``permission_names(token.user_id)``.
    """
    from rest_framework.authtoken.models import Token

    with connection.cursor() as cursor:
        cursor.execute(_person_by_token_sql(connection.vendor), (key,))
        row = cursor.fetchone()
    if row is None:
        return None
    token_fields = Token._meta.concrete_fields
    token = instance_from_row(Token, row[:len(token_fields)], token_fields)
    # As select_related leaves it: the token with its person.
    token.user = instance_from_row(get_user_model(), row[len(token_fields):-1])
    return token.user, token, _names_from(row[-1])


@functools.cache
def _person_by_token_sql(vendor: str) -> str:
    from rest_framework.authtoken.models import Token

    quote = connection.ops.quote_name
    return _row_with_person_sql(
        Token, alias="t", join="JOIN", vendor=vendor,
        where=f"t.{quote(Token._meta.get_field('key').column)} = %s")


def _row_with_person_sql(model: type[models.Model], *, alias: str, join: str, vendor: str,
                         where: str) -> str:
    """A row of ``model`` (as ``alias``) with the person its ``user`` field names and
    their permissions' names: the row's columns, the person's, the names."""
    User = get_user_model()
    quote = connection.ops.quote_name
    user_id = f"u.{quote(User._meta.pk.column)}"
    columns = ", ".join([*(f"{alias}.{quote(field.column)}"
                           for field in model._meta.concrete_fields),
                         *(f"u.{quote(field.column)}" for field in User._meta.concrete_fields),
                         _permission_names_column(user_id, vendor)])
    return (f"SELECT {columns} FROM {quote(model._meta.db_table)} {alias}"
            f" {join} {quote(User._meta.db_table)} u"
            f" ON {user_id} = {alias}.{quote(model._meta.get_field('user').column)}"
            f" WHERE {where}")


def session_with_person(session_key: str, *, now: datetime):
    """The session with this key, unexpired at ``now``, and the person signed in on it
    with their permissions' names (as ``person``), in one statement: ``(session, person,
    names)``, person None when no one is (or they are gone); None without such a session.
    Every request reads both afresh, so a sign-out, a deactivation, a new password or a
    changed group counts from the next request.

    ORM reference (Django's database sessions, then ``person``):
    ``Session.objects.get(session_key=session_key, expire_date__gt=now)``,
    ``person(session.user_id)``.
    """
    with connection.cursor() as cursor:
        cursor.execute(_session_with_person_sql(connection.vendor),
                       (session_key, connection.ops.adapt_datetimefield_value(now)))
        row = cursor.fetchone()
    if row is None:
        return None
    fields = Session._meta.concrete_fields
    session = instance_from_row(Session, row[:len(fields)], fields)
    if row[len(fields)] is None:  # the person's id: no one joined
        return session, None, set()
    return (session, instance_from_row(get_user_model(), row[len(fields):-1]),
            _names_from(row[-1]))


@functools.cache
def _session_with_person_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    return _row_with_person_sql(
        Session, alias="s", join="LEFT JOIN", vendor=vendor,
        where=f"s.{quote(Session._meta.pk.column)} = %s"
              f" AND s.{quote(Session._meta.get_field('expire_date').column)} > %s")


def queue_summary_rows(*, worked_by: int | None, queue_ids: Sequence[int] | None,
                       states: Sequence[str], cap: int) -> list[tuple]:
    """Each queue the person ``worked_by`` works (every queue when None: a manager), of
    ``queue_ids`` if given, by name: ``(queue, its cases in states counted up to cap,
    the oldest one's creation time or None)``. One statement, for home's queue list.

    ORM reference (``selectors.queue_summaries`` before it used this):
    ``queues.order_by("name").annotate(open_count=capped_case_count(states=states,
    cap=cap), oldest_open_at=Subquery(Case.objects.filter(queue=OuterRef("pk"),
    state__in=states).order_by("created_at").values("created_at")[:1]))`` over
    ``Queue.objects.filter(pk__in=queues_worked_by(worked_by))`` (or every queue)
    filtered by ``pk__in=queue_ids``.
    """
    if queue_ids is not None and not queue_ids:
        return []
    sql, fields, created_converters = _queue_summary_statement(
        tuple(str(state) for state in states), worked=worked_by is not None,
        listed=None if queue_ids is None else len(queue_ids))
    params = [cap]
    if worked_by is not None:
        params += [worked_by] * MEMBERSHIP_BRANCHES
    if queue_ids is not None:
        params += list(queue_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    created_column, created_converters = created_converters
    found = []
    for row in rows:
        oldest = row[len(fields) + 1]
        for convert in created_converters:
            oldest = convert(oldest, created_column, connection)
        found.append((instance_from_row(Queue, row[:len(fields)], fields),
                      row[len(fields)], oldest))
    return found


@functools.cache
def _queue_summary_statement(states: tuple[str, ...], *, worked: bool,
                             listed: int | None):
    """``queue_summary_rows``' statement for those states, of the queues a person
    works (``worked``) or every queue, of ``listed`` ids or all: its text, the queue's
    fields and the creation time's converters, worked out once per process."""
    quote = connection.ops.quote_name
    queue_table, case = quote(Queue._meta.db_table), Case._meta
    fields = tuple(Queue._meta.concrete_fields)
    created = case.get_field("created_at")
    # The fragment's text only: its cap goes as the statement's parameter.
    capped = capped_case_count(states=states, cap=0).sql
    where = []
    if worked:
        where.append(f"{queue_table}.id IN ({queues_worked_by(0).sql})")
    if listed is not None:
        where.append(f"{queue_table}.id IN ({', '.join(['%s'] * listed)})")
    sql = (f"SELECT {', '.join(f'{queue_table}.{quote(field.column)}' for field in fields)},"
           f" ({capped}),"
           f" (SELECT c.{quote(created.column)} FROM {quote(case.db_table)} c"
           f" WHERE c.{quote(case.get_field('queue').column)} = {queue_table}.id"
           f" AND c.{quote(case.get_field('state').column)} IN {in_states(states)}"
           f" ORDER BY c.{quote(created.column)} ASC LIMIT 1)"
           f" FROM {queue_table}"
           f"{' WHERE ' + ' AND '.join(where) if where else ''}"
           f" ORDER BY {queue_table}.{quote(Queue._meta.get_field('name').column)} ASC")
    [created_converters] = _converters(Case, (created,))
    return sql, fields, created_converters


def reviewer_status(user_id: int) -> ReviewerStatus | None:
    """The person's availability with their delegate (None: never marked), for home's
    "you are marked away". One plain statement (the ORM's cost more to build and
    compile than to run, on every home page).

    ORM reference (``assignment.statuses``): ``ReviewerStatus.objects
    .select_related("delegate").filter(user=user_id).first()``.
    """
    found = _rows_with_person(ReviewerStatus, person="delegate", where="user", value=user_id,
                              first=True)
    return found[0] if found else None


def _rows_with_person(model: type[models.Model], *, person: str, where: str, value,
                      first: bool = False) -> list:
    """The ``model`` rows whose ``where`` field is ``value`` by id (the ``first`` alone),
    each with the person its ``person`` field names, as ``select_related(person)``
    leaves them."""
    sql, fields, user_fields = _rows_with_person_statement(model, person, where, first)
    with connection.cursor() as cursor:
        cursor.execute(sql, (value,))
        rows = cursor.fetchall()
    User, person_id = get_user_model(), model._meta.get_field(person).attname
    found = []
    for row in rows:
        item = instance_from_row(model, row[:len(fields)], fields)
        setattr(item, person, None if getattr(item, person_id) is None else
                instance_from_row(User, row[len(fields):], user_fields))
        found.append(item)
    return found


@functools.cache
def _rows_with_person_statement(model, person: str, where: str, first: bool):
    User = get_user_model()
    fields, user_fields = tuple(model._meta.concrete_fields), tuple(User._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = ", ".join([*(f"m.{quote(field.column)}" for field in fields),
                         *(f"u.{quote(field.column)}" for field in user_fields)])
    return (f"SELECT {columns} FROM {quote(model._meta.db_table)} m"
            f" LEFT JOIN {quote(User._meta.db_table)} u ON u.{quote(User._meta.pk.column)}"
            f" = m.{quote(model._meta.get_field(person).column)}"
            f" WHERE m.{quote(model._meta.get_field(where).column)} = %s"
            f" ORDER BY m.{quote(model._meta.pk.column)}{' LIMIT 1' if first else ''}",
            fields, user_fields)


def cases_in_hand(*, user_id: int, states: Sequence[str], fields: Sequence[str],
                  queue_fields: Sequence[str]) -> list[Case]:
    """The person's cases in ``states``, each with its queue, most urgent first
    (priority, then due time, then id): home's "your cases in hand", one plain
    statement. Only ``fields`` of each case and ``queue_fields`` of its queue are read
    (the others, deferred, would be read on access: a query each).

    ORM reference (``selectors.my_cases`` before it used this): ``Case.objects
    .filter(assignee=user_id, state__in=states).select_related("queue")
    .only(*fields, *(f"queue__{name}" for name in queue_fields))
    .order_by("-priority", "due_at", "id")``.
    """
    sql, case_fields, queue_fields = _cases_in_hand_statement(
        tuple(str(state) for state in states), tuple(fields), tuple(queue_fields))
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id])
        rows = cursor.fetchall()
    found = []
    for row in rows:
        item = instance_from_row(Case, row[:len(case_fields)], case_fields)
        item.queue = instance_from_row(Queue, row[len(case_fields):], queue_fields)
        found.append(item)
    return found


@functools.cache
def _cases_in_hand_statement(states: tuple[str, ...], fields: tuple[str, ...],
                             queue_fields: tuple[str, ...]):
    """``cases_in_hand``' statement for those states, reading ``fields`` of the case
    and ``queue_fields`` of its queue (each with its id), worked out once per process."""
    case, queue = Case._meta, Queue._meta
    # In the model's order, which ``from_db`` expects of a row with deferred fields.
    case_fields = tuple(field for field in case.concrete_fields
                        if field.primary_key or field.name in fields)
    queue_fields = tuple(field for field in queue.concrete_fields
                         if field.primary_key or field.name in queue_fields)
    quote = connection.ops.quote_name
    columns = ", ".join([*(f"c.{quote(field.column)}" for field in case_fields),
                         *(f"q.{quote(field.column)}" for field in queue_fields)])
    return (f"SELECT {columns} FROM {quote(case.db_table)} c"
            f" JOIN {quote(queue.db_table)} q"
            f" ON q.{quote(queue.pk.column)} = c.{quote(case.get_field('queue').column)}"
            f" WHERE c.{quote(case.get_field('assignee').column)} = %s"
            f" AND c.{quote(case.get_field('state').column)} IN {in_states(states)}"
            f" ORDER BY c.{quote(case.get_field('priority').column)} DESC,"
            f" c.{quote(case.get_field('due_at').column)} ASC, c.{quote(case.pk.column)} ASC",
            case_fields, queue_fields)


def case_events(case_id: int) -> list[AuditEvent]:
    """Every audit event of the case, oldest first, each with its actor: the case
    page's timeline, one plain statement (``audit_case_idx``).

    ORM reference (``selectors.case_timeline`` before it used this):
    ``AuditEvent.objects.filter(case=case_id).select_related("actor").order_by("id")``.
    """
    return _rows_with_person(AuditEvent, person="actor", where="case", value=case_id)


def case_has_consults() -> RawSQL:
    """Per case row of the outer query: has it any consult? Compiled as plain text (the
    case page reads it with the case, and ``Exists`` cost as much to compile as the
    query it saves).

    ORM reference: ``Exists(ConsultRequest.objects.filter(case=OuterRef("pk")))``.
    """
    return has_any(ConsultRequest, field="case")


def case_has_event(*, case_id: int, verb: str) -> RawSQL:
    """1 if the case has an audit event of ``verb``, else 0: a value to add inside an
    update (``add_to_columns``), asked as the update runs.

    ORM reference: ``Cast(Exists(AuditEvent.objects.filter(case_id=case_id, verb=verb)),
    IntegerField())``.
    """
    return RawSQL(_case_has_event_sql(), (case_id, str(verb)))


@functools.cache
def _case_has_event_sql() -> str:
    quote = connection.ops.quote_name
    return (f"CASE WHEN EXISTS (SELECT 1 FROM {quote(AuditEvent._meta.db_table)}"
            f" WHERE {quote(AuditEvent._meta.get_field('case').column)} = %s"
            f" AND {quote(AuditEvent._meta.get_field('verb').column)} = %s) THEN 1 ELSE 0 END")


def has_any(model: type[models.Model], *, field: str) -> RawSQL:
    """Per row of the outer query (of the model ``model.field`` points to): has it any
    ``model`` row? Compiled as plain text, as ``case_has_consults``.

    ORM reference: ``Exists(model.objects.filter(**{field: OuterRef("pk")}))``.
    """
    meta, target = model._meta, model._meta.get_field(field)
    outer = target.related_model._meta
    quote = connection.ops.quote_name
    return RawSQL(
        f"EXISTS (SELECT 1 FROM {quote(meta.db_table)} k"
        f" WHERE k.{quote(target.column)} = {quote(outer.db_table)}.{quote(outer.pk.column)})",
        (), output_field=models.BooleanField())



# --- A case about to change: the transitions' one read ---------------------------------------


def case_for_change(*, case_id: int, user_id: int | None, related: Sequence[str] = (),
                    omit: Sequence[str] = ()) -> Case | None:
    """The case with what a transition and its answer read besides it, or None: its
    queue, its resolution (or that it has none), its first reviewer, whether anyone was
    consulted on it (``has_consults``) and whether the person works its queue
    (``user_works_queue``); and the relations ``related`` (``Case``'s ``select_related``
    paths, as the content hooks name them) without the fields ``omit`` names along them.
    One plain statement whose text is built once per process per shape: its ORM form
    (several tables, an ``Exists`` and a membership condition) cost more to build and
    compile than PostgreSQL took to run it.

    ORM reference: ``selectors.with_membership(transitions.with_answer_facts(
    Case.objects), user=user).select_related(*related).defer(*omit).get(pk=case_id)``.
    """
    sql, nodes = _case_for_change_statement(tuple(related), tuple(omit))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(user_id,) * MEMBERSHIP_BRANCHES, case_id])
        row = cursor.fetchone()
    if row is None:
        return None
    case = _case_with_relations(row[:-1], nodes)  # ``has_consults`` first
    case.user_works_queue = bool(row[-1])
    return case


@functools.cache
def _case_for_change_statement(related: tuple[str, ...], omit: tuple[str, ...]
                               ) -> tuple[str, tuple]:
    quote = connection.ops.quote_name
    case, consults = Case._meta, ConsultRequest._meta
    nodes, columns, joins = _case_joins(
        ("queue", "resolution", "first_reviewer", *related), omit)
    queue_column = f"c.{quote(case.get_field('queue').column)}"
    return (f"SELECT EXISTS (SELECT 1 FROM {quote(consults.db_table)} k"
            f" WHERE k.{quote(consults.get_field('case').column)} = c.id), {columns},"
            f" {queue_column} IN ({_memberships(select='{queue}', where='{user} = %s')})"
            f" FROM {quote(case.db_table)} c{joins}"
            f" WHERE c.id = %s"), nodes


# --- One row with its related rows, by a column ----------------------------------------------


def one_with_related(model: type[models.Model], *, by: str, value,
                     related: Sequence[str] = (), omit: Sequence[str] = (),
                     has: Sequence[tuple[str, type[models.Model], str]] = ()):
    """The first ``model`` (by id) whose field ``by`` is ``value``, with its forward
    foreign keys ``related`` read in the same statement, leaving out the fields ``omit``
    names (``name`` of ``model``, ``relation__name`` of a related model: read on access,
    as ``defer`` leaves them), or None. The statement's text is built once per process:
    for a row read on every answer, the ORM built and compiled a three-table query each
    time, several times what PostgreSQL took to run it.

    Each ``(attribute, other, field)`` of ``has`` sets ``attribute``: whether any
    ``other`` row points to it by ``field`` (``has_any``'s test, in the same statement).

    ORM reference: ``model.objects.select_related(*related).defer(*omit)
    .annotate(**{attribute: has_any(other, field=field), ...})
    .filter(**{by: value}).first()``.
    """
    sql, parts = _with_related_statement(model, by, tuple(related), tuple(omit), tuple(has),
                                         count=None)
    with connection.cursor() as cursor:
        cursor.execute(sql, (value,))
        row = cursor.fetchone()
    return None if row is None else _with_related_from_row(model, row, parts, has)


def with_related(model: type[models.Model], *, by: str, values: Sequence,
                 related: Sequence[str] = (), omit: Sequence[str] = (),
                 has: Sequence[tuple[str, type[models.Model], str]] = ()) -> list:
    """Every ``model`` whose field ``by`` is one of ``values``, by id, each read as
    ``one_with_related`` reads one, in one statement (its text built once per process
    for each power of two of values: the rest are NULLs, which match nothing).

    ORM reference: ``model.objects.select_related(*related).defer(*omit)
    .annotate(**{attribute: has_any(other, field=field), ...})
    .filter(**{f"{by}__in": values}).order_by("pk")``.
    """
    if not values:
        return []
    count = 1 << (len(values) - 1).bit_length()
    sql, parts = _with_related_statement(model, by, tuple(related), tuple(omit), tuple(has),
                                         count=count)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *[None] * (count - len(values))])
        rows = cursor.fetchall()
    return [_with_related_from_row(model, row, parts, has) for row in rows]


def _with_related_from_row(model, row: Sequence, parts: list, has: Sequence):
    start = len(parts[0][1])
    found = instance_from_row(model, row[:start], parts[0][1])
    for relation, fields in parts[1:]:
        values = row[start:start + len(fields)]
        start += len(fields)
        # A nullable relation's missing row comes back as NULLs: no instance, as the ORM.
        other = None if values[0] is None else instance_from_row(
            relation.related_model, values, fields)
        relation.set_cached_value(found, other)
    for (attribute, _, _), any_found in zip(has, row[start:], strict=True):
        setattr(found, attribute, bool(any_found))  # SQLite answers EXISTS with 0 or 1
    return found


@functools.cache
def _with_related_statement(model, by: str, related: tuple[str, ...], omit: tuple[str, ...],
                            has: tuple[tuple[str, type[models.Model], str], ...], *,
                            count: int | None) -> tuple[str, list]:
    """``one_with_related``'s statement (``count`` None: the first whose ``by`` is the
    value) or ``with_related``'s (every one whose ``by`` is one of ``count`` values)."""
    quote = connection.ops.quote_name

    def kept(of, prefix: str) -> tuple[models.Field, ...]:
        return _kept_fields(of, prefix, omit)

    parts = [(None, kept(model, ""))]
    joins = []
    for number, name in enumerate(related, 1):
        relation = model._meta.get_field(name)
        other = relation.related_model
        parts.append((relation, kept(other, f"{name}__")))
        joins.append(f" {'LEFT JOIN' if relation.null else 'JOIN'}"
                     f" {quote(other._meta.db_table)} t{number}"
                     f" ON t{number}.{quote(relation.target_field.column)}"
                     f" = t0.{quote(relation.column)}")
    columns = ", ".join(f"t{number}.{quote(field.column)}"
                        for number, (_, fields) in enumerate(parts) for field in fields)
    for _, other, field in has:
        pointing = other._meta.get_field(field)
        columns += (f", EXISTS (SELECT 1 FROM {quote(other._meta.db_table)} k"
                    f" WHERE k.{quote(pointing.column)}"
                    f" = t0.{quote(pointing.target_field.column)})")
    where = (" = %s" if count is None else f" IN ({', '.join(['%s'] * count)})")
    return (f"SELECT {columns} FROM {quote(model._meta.db_table)} t0{''.join(joins)}"
            f" WHERE t0.{quote(model._meta.get_field(by).column)}{where}"
            f" ORDER BY t0.{quote(model._meta.pk.column)}"
            f"{' LIMIT 1' if count is None else ''}"), parts


# --- A case's change and its audit event in one round trip ---------------------------------


def save_case_with_event(case: Case, event_for: Callable[[Case], models.Model], *,
                         and_update: tuple[models.Model, Sequence[str]] | None = None) -> None:
    """Save the changed ``case`` as ``Case.save`` does (I4: only if its state and version
    are still those it was read with, the version moved on by one; otherwise
    ``ConcurrentTransition`` and nothing written), then insert the audit event
    ``event_for(case)`` builds of the saved case (I7), in one statement on PostgreSQL: a
    data-modifying ``WITH`` whose INSERT takes place only if the UPDATE changed the row.
    Elsewhere (SQLite) the reference itself, in two.

    ``and_update``, an object and some of its fields (attribute names), stores those
    fields in the same statement, again only if the case's UPDATE changed its row (an
    approval's resolution): as ``update_columns`` would after the save.

    ORM reference: ``case.save()``, then ``event_for(case).save()`` (then
    ``update_columns(*and_update)``).
    """
    if connection.vendor != "postgresql":
        case.save()
        event_for(case).save()
        if and_update is not None:
            update_columns(*and_update)
        return
    also, also_obj = None, None
    if and_update is not None:
        also_obj, attnames = and_update
        also = (type(also_obj), tuple(attnames))
    version_read = case.version
    case.bump_version()
    try:
        event = event_for(case)
        sql, case_fields, event_fields, also_fields = _case_with_event_statement(
            type(event), also)
        also_params = [*db_values(also_obj, also_fields), also_obj.pk] if also else []
        state_read = case._ConcurrentTransitionMixin__initial_states["state"]
        with connection.cursor() as cursor:
            cursor.execute(sql, [*db_values(case, case_fields), case.pk, state_read,
                                 version_read, *also_params, *db_values(event, event_fields)])
            written = cursor.fetchone()
        if written is None:
            raise ConcurrentTransition(
                "Cannot save the case: it was changed since it was fetched from the database.")
    except BaseException:
        case.version = version_read
        raise
    mark_saved(event, pk=written[0])
    case._update_initial_state()  # as ``ConcurrentTransitionMixin.save`` leaves it


@functools.cache
def _case_with_event_statement(event_model, also: tuple | None = None) -> tuple:
    quote = connection.ops.quote_name
    case_fields = [field for field in Case._meta.concrete_fields if not field.primary_key]
    # ``recorded_at`` is the database's to set (a trigger refuses any other value).
    event_fields = [field for field in event_model._meta.concrete_fields
                    if not field.primary_key and field.db_default is models.NOT_PROVIDED]
    sets = ", ".join(f"{quote(field.column)} = %s" for field in case_fields)
    values = ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in event_fields)
    case_meta = Case._meta
    also_sql, also_fields = "", []
    if also is not None:
        model, attnames = also
        by_attname = {field.attname: field for field in model._meta.concrete_fields}
        also_fields = [by_attname[name] for name in attnames]
        table = quote(model._meta.db_table)
        # Joined to ``changed``: no row changes unless the case's did.
        also_sql = (f", also AS (UPDATE {table} SET "
                    + ", ".join(f"{quote(field.column)} = %s" for field in also_fields)
                    + f" FROM changed WHERE {table}.{quote(model._meta.pk.column)} = %s)")
    sql = (f"WITH changed AS (UPDATE {quote(case_meta.db_table)} SET {sets}"
           f" WHERE {quote(case_meta.pk.column)} = %s"
           f" AND {quote(case_meta.get_field('state').column)} = %s"
           f" AND {quote(case_meta.get_field('version').column)} = %s RETURNING 1)"
           f"{also_sql}"
           f" INSERT INTO {quote(event_model._meta.db_table)}"
           f" ({', '.join(quote(field.column) for field in event_fields)})"
           f" SELECT {values} FROM changed"
           f" RETURNING {quote(event_model._meta.pk.column)}")
    return sql, case_fields, event_fields, also_fields


# --- The next place in an ordered, gap-free sequence -----------------------------------------
# The caller holds the lock that lets one writer at a time take a place
# (``hold_transaction_lock``, in an earlier statement: a statement's snapshot is taken
# before any lock it waits for). Each helper reads the last place and takes the next
# in one statement, on every database (a subquery reads the table it writes).


def insert_at_next_position(instance: models.Model, *, field: str) -> None:
    """Insert the unsaved ``instance`` with its ``field`` one past the greatest of its
    table (1 for the first); sets its id and that place on it.

    ORM reference: ``instance.<field> = (Model.objects.aggregate(last=Max(field))["last"]
    or 0) + 1``, then ``instance.save(force_insert=True)``.
    """
    write_together(inserting_at_next_position(instance, field=field))


def inserting_at_next_position(instance: models.Model, *, field: str) -> "Write":
    """``insert_at_next_position``'s statement, to run with others (``write_together``)."""
    sql, fields = _insert_at_next_statement(type(instance), field)

    def taken(row: Sequence) -> None:
        pk, position = row
        setattr(instance, field, position)
        mark_saved(instance, pk=pk)

    return Write(sql, db_values(instance, fields), returning=2, then=taken)


@functools.cache
def _insert_at_next_statement(model, field: str) -> tuple[str, list]:
    quote = connection.ops.quote_name
    table, place = quote(model._meta.db_table), quote(model._meta.get_field(field).column)
    fields = [each for each in model._meta.concrete_fields
              if not each.primary_key and each.name != field]
    # PostgreSQL types a SELECT's parameters by their casts (a VALUES list would take
    # the columns' types); SQLite's casts would change a datetime's text into a number.
    values = ", ".join(f"CAST(%s AS {each.db_type(connection)})"
                       if connection.vendor == "postgresql" else "%s" for each in fields)
    return (f"INSERT INTO {table} ({place}, {', '.join(quote(each.column) for each in fields)})"
            f" SELECT COALESCE(MAX({place}), 0) + 1, {values} FROM {table}"
            f" RETURNING {quote(model._meta.pk.column)}, {place}"), fields


def set_next_position(model: type[models.Model], *, pk, field: str, among: str,
                      value) -> int:
    """Give row ``pk`` the place ``field`` one past the greatest of the rows whose
    ``among`` is ``value`` (1 for the first); answers it.

    ORM reference: ``last = model.objects.filter(**{among: value}).aggregate(
    last=Max(field))["last"]``, then ``model.objects.filter(pk=pk).update(**{field:
    (last or 0) + 1})``.
    """
    with connection.cursor() as cursor:
        cursor.execute(_next_position_statement(model, field, among), [value, pk])
        return cursor.fetchone()[0]


def setting_next_position(instance: models.Model, *, field: str, among: str) -> "Write":
    """``set_next_position``'s statement for ``instance``'s row, among the rows that share
    its ``among``, to run with others (``write_together``); sets the place on it."""
    value = getattr(instance, instance._meta.get_field(among).attname)
    return Write(_next_position_statement(type(instance), field, among), [value, instance.pk],
                 returning=1, then=lambda row: setattr(instance, field, row[0]))


@functools.cache
def _next_position_statement(model: type[models.Model], field: str, among: str) -> str:
    quote = connection.ops.quote_name
    table, place = quote(model._meta.db_table), quote(model._meta.get_field(field).column)
    return (f"UPDATE {table} SET {place} = (SELECT COALESCE(MAX({place}), 0) + 1 FROM {table}"
            f" WHERE {quote(model._meta.get_field(among).column)} = %s)"
            f" WHERE {quote(model._meta.pk.column)} = %s RETURNING {place}")


# --- Several writes in one round trip ----------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """One data-modifying statement, to run alone or with others in one round trip
    (``write_together``): its text and parameters, how many columns of one row it
    returns (``RETURNING``; none: 0) and what is done with that row once it ran."""

    sql: str
    params: Sequence
    returning: int = 0
    then: Callable[[Sequence], None] | None = None


def write_together(*writes: Write) -> None:
    """Run ``writes`` in one statement on PostgreSQL (a data-modifying ``WITH``, each part
    run once), then hand each its returned row (``then``). Each writes or returns one row
    at most. One statement, one snapshot, taken before it starts: every part sees what
    was committed before (under a lock taken in an earlier statement, the last place),
    none sees another's rows; so no two may write the same row, nor read another's.
    Elsewhere (SQLite), and for one write, the reference itself.

    ORM reference: each write in turn, ``cursor.execute(write.sql, write.params)``, then
    ``write.then(cursor.fetchone())`` where it returns a row.
    """
    if connection.vendor != "postgresql" or len(writes) == 1:
        with connection.cursor() as cursor:
            for write in writes:
                cursor.execute(write.sql, write.params)
                if write.returning:
                    write.then(cursor.fetchone())
        return
    returned = [n for n, write in enumerate(writes) if write.returning]
    # A part is run whether or not the last SELECT reads it; those that return a row are
    # joined to one row, so each comes back in its place.
    sql = ("WITH " + ", ".join(f"w{n} AS ({write.sql})" for n, write in enumerate(writes))
           + " SELECT " + (", ".join(f"w{n}.*" for n in returned) or "1")
           + " FROM (VALUES (1)) AS one (x)"
           + "".join(f" LEFT JOIN w{n} ON TRUE" for n in returned))
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for write in writes for value in write.params])
        row = cursor.fetchone()
    at = 0
    for n in returned:
        write = writes[n]
        write.then(row[at:at + write.returning])
        at += write.returning
