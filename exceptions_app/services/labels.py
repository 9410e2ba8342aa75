"""Labelled data out: every final resolution with its provenance, for training and
evaluation, as JSON Lines, CSV or Parquet, streamed in constant memory.

One row per decision (only final outcomes: a case sent back and resolved again is one
example). Rows are read in keyset chunks by ``LabelledExample.position``, which follows
commit order, so the API's cursor gives each example exactly once while new ones arrive,
and a download of any size holds one chunk (CSV, JSON Lines) or one row group (Parquet)
in memory. Files are written from flat rows whose JSON columns stay the text the
database holds: decoding and re-encoding them would cost more than everything else.
Exporting is a manager's action, audited ``labels.exported``.
"""

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import is_naive, make_aware

from exceptions_app.models import LabelledExample, UseCase
from exceptions_app.verbs import DomainVerb
from workflows.models import Verdict
from workflows.selectors import is_manager
from workflows.services import audit
from workflows.services.queues import require_manager

FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
           "parquet": "application/vnd.apache.parquet"}
# The columns of every format, in order, with what each holds.
COLUMNS = {
    "position": "the example's place in the export (commit order)",
    "decision_id": "Backstop's id of the decision",
    "external_id": "the id the AI system posted the decision with",
    "use_case": "the use case's slug",
    "model_version": "the model version the AI system declared",
    "policy_version": "the policy version the decision was judged against",
    "stage": "the use case's stage when the decision arrived",
    "route": "review (exception), auto (passed) or reject",
    "rules_fired": "names of the policy rules that decided the route",
    "qa_sample": "an auto-passed decision drawn for quality review",
    "blind": "reviewed without seeing the AI's output",
    "input": "the decision's input",
    "ai_output": "the AI's output",
    "ai_confidence": "the AI's confidence",
    "final_output": "the output people settled on (null when rejected)",
    "verdict": "accepted, corrected or rejected",
    "reason_code": "the reviewer's reason code",
    "notes": "the reviewer's notes",
    "reviewer": "who resolved it",
    "reviewer_role": "manager or reviewer",
    "approver": "who approved it (four-eyes), else empty",
    "approver_role": "manager or reviewer, else empty",
    "received_at": "when the decision arrived",
    "decided_at": "when it was resolved",
    "seconds_to_decision": "from arrival to resolution",
    "time_spent_seconds": "the reviewer's time on the case",
}
JSON_COLUMNS = ("rules_fired", "input", "ai_output", "final_output")
CHUNK = 2000
# Rows of a Parquet row group, held in Arrow's columns until written, and of the batches
# the rows are turned into (Python's rows take about 2 KB each, Arrow's about 0.8): each
# row group costs about 25 KB of the footer, held until the file closes
# (docs/PERFORMANCE.md).
PARQUET_ROW_GROUP = 5_000
PARQUET_BATCH = 1_000

_READ = ("position", "decision_id", "external_id", "use_case__slug", "model_version",
         "policy_version__number", "stage", "route", "rules_fired", "qa_sample", "blind",
         "input", "ai_output", "ai_confidence", "human_output", "verdict", "reason_code",
         "notes", "reviewer_id", "approver_id", "received_at", "decided_at",
         "time_spent_seconds")


FILTERS = ("use_case", "model_version", "verdict", "since", "until")


@dataclass(frozen=True)
class LabelFilter:
    use_case: UseCase | None = None
    model_version: str = ""
    verdict: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def as_data(self) -> dict:
        """The filter as an audit event keeps it."""
        return {"use_case": self.use_case.slug if self.use_case else None,
                "model_version": self.model_version or None, "verdict": self.verdict or None,
                "since": self.since, "until": self.until}


def parse_filter(params: Mapping[str, str]) -> LabelFilter:
    """The filter from query parameters or command options (all optional); each bad one
    refused by name (ValidationError). A filter that matches nothing is not an error."""
    errors: dict[str, list[str]] = {
        name: ["Cannot hold a NUL character."] for name in FILTERS
        if "\x00" in params.get(name, "")}
    if errors:
        raise ValidationError(errors)
    use_case = None
    if slug := params.get("use_case", ""):
        use_case = UseCase.objects.filter(slug=slug).first()
        if use_case is None:
            errors["use_case"] = [f"There is no use case '{slug}'."]
    model_version = params.get("model_version", "")
    if model_version and not LabelledExample.objects.filter(
            model_version=model_version, **({"use_case": use_case} if use_case else {})).exists():
        errors["model_version"] = [f"No labelled example has model version '{model_version}'"
                                   + (f" in {use_case.slug}." if use_case else ".")]
    verdict = params.get("verdict", "")
    if verdict and verdict not in Verdict.values:
        errors["verdict"] = [f"Choose one of {', '.join(Verdict.values)}."]
    since, until = (_instant(params, name, errors) for name in ("since", "until"))
    if since and until and since > until:
        errors["until"] = ["The period ends before it starts."]
    if errors:
        raise ValidationError(errors)
    return LabelFilter(use_case=use_case, model_version=model_version, verdict=verdict,
                       since=since, until=until)


def _instant(params: Mapping[str, str], name: str, errors: dict) -> datetime | None:
    raw = params.get(name, "")
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
        if value is None and (day := parse_date(raw)) is not None:
            value = datetime(day.year, day.month, day.day)
    except ValueError:
        value = None
    if value is None:
        errors[name] = ["A date (2026-12-01) or an instant (2026-12-01T09:00:00Z)."]
        return None
    return make_aware(value) if is_naive(value) else value


def examples(label_filter: LabelFilter):
    """The labelled examples the filter selects (resolution time in [since, until))."""
    wanted = LabelledExample.objects.all()
    if label_filter.use_case:
        wanted = wanted.filter(use_case=label_filter.use_case)
    if label_filter.model_version:
        wanted = wanted.filter(model_version=label_filter.model_version)
    if label_filter.verdict:
        wanted = wanted.filter(verdict=label_filter.verdict)
    if label_filter.since:
        wanted = wanted.filter(decided_at__gte=label_filter.since)
    if label_filter.until:
        wanted = wanted.filter(decided_at__lt=label_filter.until)
    return wanted


def page(label_filter: LabelFilter, *, after: int = 0, size: int = CHUNK) -> list[dict]:
    """Up to ``size`` rows past position ``after``, in position order."""
    rows = list(examples(label_filter).filter(position__gt=after)
                .order_by("position").values_list(*_READ)[:size])
    roles = _Roles()
    return [_row(values, roles) for values in rows]


def flat_rows(label_filter: LabelFilter, *, chunk: int = CHUNK,
              instants: str = "iso") -> Iterator[tuple]:
    """Every row the filter selects, in position order, as a tuple in ``COLUMNS`` order:
    the JSON columns (``JSON_COLUMNS``) as JSON text, straight from the database, so
    that no file format decodes and re-encodes them, and the instants as ISO 8601 text
    (``instants="iso"``) or as microseconds since 1970-01-01 UTC (``instants="us"``,
    what Parquet stores: no text to parse). Keyset chunks of ``chunk`` rows, each one
    range of the position index: constant memory whatever the size.

    On PostgreSQL the database writes the text of the instants and the seconds between
    them (``_flat_rows_by_sql``): turning a timestamp into a datetime costs psycopg about
    4 µs, two a row were most of the export's time. Elsewhere (SQLite), the ORM reads
    them (``_flat_rows_by_orm``, the reference the other is tested against).
    """
    if instants not in INSTANTS:
        raise ValueError(f"instants: one of {', '.join(INSTANTS)}")
    if connection.vendor == "postgresql":
        return _flat_rows_by_sql(label_filter, chunk=chunk, instants=instants)
    return _flat_rows_by_orm(label_filter, chunk=chunk, instants=instants)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# How a row gives an instant: ISO 8601 text as Python's ``isoformat()`` writes it, or
# microseconds since 1970-01-01 UTC.
INSTANTS = {"iso": datetime.isoformat,
            "us": lambda instant: (instant - _EPOCH) // _MICROSECOND}


def _flat_rows_by_orm(label_filter: LabelFilter, *, chunk: int,
                      instants: str = "iso") -> Iterator[tuple]:
    instant = INSTANTS[instants]
    read = [*_READ]
    for name in JSON_COLUMNS:
        column = "human_output" if name == "final_output" else name
        read[read.index(column)] = Cast(column, output_field=TextField())
    after, roles = 0, _Roles()
    while True:
        values = list(examples(label_filter).filter(position__gt=after).order_by("position")
                      .values_list(*read)[:chunk])
        for (position, decision_id, external_id, use_case, model_version, policy_version,
             stage, route, rules_fired, qa_sample, blind, input_, ai_output, ai_confidence,
             final_output, verdict, reason_code, notes, reviewer_id, approver_id,
             received_at, decided_at, time_spent_seconds) in values:
            yield (position, decision_id, external_id, use_case, model_version,
                   policy_version, stage, route, rules_fired, qa_sample, blind, input_,
                   ai_output, ai_confidence, final_output or "null", verdict, reason_code,
                   notes, *roles(reviewer_id), *roles(approver_id), instant(received_at),
                   instant(decided_at),
                   round((decided_at - received_at).total_seconds(), 3), time_spent_seconds)
        if len(values) < chunk:
            return
        after = values[-1][0]


# An instant as ``INSTANTS`` gives it, in SQL. ISO 8601 as Python's ``isoformat()`` of a
# UTC datetime writes it: microseconds only when there are some, and the offset +00:00.
_SQL_INSTANT = {
    "iso": ("to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') "
            "|| CASE WHEN mod(date_part('microseconds', {0})::bigint, 1000000) = 0 "
            "THEN '' ELSE to_char({0} AT TIME ZONE 'UTC', '.US') END || '+00:00'"),
    "us": "(extract(epoch FROM {0}) * 1000000)::bigint",
}
_SQL_READ = """
    SELECT l.position, l.decision_id, l.external_id, u.slug, l.model_version, p.number,
           l.stage, l.route, l.rules_fired::text, l.qa_sample, l.blind, l.input::text,
           l.ai_output::text, l.ai_confidence, coalesce(l.human_output::text, 'null'),
           l.verdict, l.reason_code, l.notes, l.reviewer_id, l.approver_id,
           {received_at}, {decided_at},
           ((extract(epoch FROM l.decided_at) - extract(epoch FROM l.received_at))
            * 1000000)::bigint,
           l.time_spent_seconds
    FROM exceptions_app_labelledexample l
    JOIN exceptions_app_usecase u ON u.id = l.use_case_id
    JOIN exceptions_app_policyversion p ON p.id = l.policy_version_id
    WHERE l.position > %s {conditions}
    ORDER BY l.position
    LIMIT %s"""


def _flat_rows_by_sql(label_filter: LabelFilter, *, chunk: int,
                      instants: str = "iso") -> Iterator[tuple]:
    """``_flat_rows_by_orm``'s rows, read by SQL (PostgreSQL): the same conditions as
    ``examples``, the same position index."""
    conditions, params = [], []
    for condition, value in (("l.use_case_id = %s", label_filter.use_case
                              and label_filter.use_case.pk),
                             ("l.model_version = %s", label_filter.model_version),
                             ("l.verdict = %s", label_filter.verdict),
                             ("l.decided_at >= %s", label_filter.since),
                             ("l.decided_at < %s", label_filter.until)):
        if value:
            conditions.append(f"AND {condition}")
            params.append(value)
    sql = _SQL_READ.format(conditions=" ".join(conditions),
                           received_at=_SQL_INSTANT[instants].format("l.received_at"),
                           decided_at=_SQL_INSTANT[instants].format("l.decided_at"))
    after, roles = 0, _Roles()
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [after, *params, chunk])
            values = cursor.fetchall()
            for (*columns, reviewer_id, approver_id, received_at, decided_at, microseconds,
                 time_spent_seconds) in values:
                yield (*columns, *roles(reviewer_id), *roles(approver_id), received_at,
                       decided_at, round(microseconds / 1_000_000, 3), time_spent_seconds)
            if len(values) < chunk:
                return
            after = values[-1][0]


@dataclass
class _Roles:
    """Each person's username and role, read once per export."""
    known: dict[int, tuple[str, str]] = field(default_factory=dict)

    def __call__(self, user_id: int | None) -> tuple[str, str]:
        if user_id is None:
            return "", ""
        if user_id not in self.known:
            user = get_user_model().objects.get(pk=user_id)
            self.known[user_id] = (user.get_username(),
                                   "manager" if is_manager(user) else "reviewer")
        return self.known[user_id]


def _row(values: tuple, roles: _Roles) -> dict:
    (position, decision_id, external_id, use_case, model_version, policy_version, stage, route,
     rules_fired, qa_sample, blind, input_, ai_output, ai_confidence, final_output, verdict,
     reason_code, notes, reviewer_id, approver_id, received_at, decided_at,
     time_spent_seconds) = values
    reviewer, reviewer_role = roles(reviewer_id)
    approver, approver_role = roles(approver_id)
    return {
        "position": position, "decision_id": decision_id, "external_id": external_id,
        "use_case": use_case, "model_version": model_version, "policy_version": policy_version,
        "stage": stage, "route": route,
        "rules_fired": rules_fired,
        "qa_sample": qa_sample, "blind": blind, "input": input_, "ai_output": ai_output,
        "ai_confidence": ai_confidence, "final_output": final_output, "verdict": verdict,
        "reason_code": reason_code, "notes": notes, "reviewer": reviewer,
        "reviewer_role": reviewer_role, "approver": approver, "approver_role": approver_role,
        "received_at": received_at, "decided_at": decided_at,
        "seconds_to_decision": round((decided_at - received_at).total_seconds(), 3),
        "time_spent_seconds": time_spent_seconds,
    }


# --- Formats: each turns flat rows into the bytes of a file, a piece at a time -------------

def as_jsonl(rows: Iterable[tuple], *, chunk: int = CHUNK) -> Iterator[bytes]:
    """One JSON object a line, its keys in ``COLUMNS`` order, compact; the JSON columns go
    in as the database gave them (``orjson.Fragment``), numbers as Python writes them."""
    dumps, raw = orjson.dumps, orjson.Fragment
    lines: list[bytes] = []
    for (position, decision_id, external_id, use_case, model_version, policy_version, stage,
         route, rules_fired, qa_sample, blind, input_, ai_output, ai_confidence, final_output,
         verdict, reason_code, notes, reviewer, reviewer_role, approver, approver_role,
         received_at, decided_at, seconds_to_decision, time_spent_seconds) in rows:
        lines.append(dumps({
            "position": position, "decision_id": decision_id, "external_id": external_id,
            "use_case": use_case, "model_version": model_version,
            "policy_version": policy_version, "stage": stage, "route": route,
            "rules_fired": raw(rules_fired), "qa_sample": qa_sample, "blind": blind,
            "input": raw(input_), "ai_output": raw(ai_output),
            "ai_confidence": _number(ai_confidence), "final_output": raw(final_output),
            "verdict": verdict, "reason_code": reason_code, "notes": notes,
            "reviewer": reviewer, "reviewer_role": reviewer_role, "approver": approver,
            "approver_role": approver_role, "received_at": received_at,
            "decided_at": decided_at, "seconds_to_decision": _number(seconds_to_decision),
            "time_spent_seconds": time_spent_seconds}))
        if len(lines) == chunk:
            yield b"\n".join(lines) + b"\n"
            lines.clear()
    if lines:
        yield b"\n".join(lines) + b"\n"


def _number(value: float):
    """orjson writes a float as ``repr`` does from 1e-4 to 1e16 (and 0); outside, in
    positional notation where ``repr`` uses an exponent (1e-05): those keep ``repr``."""
    if value == 0 or 1e-4 <= abs(value) < 1e16:
        return value
    return orjson.Fragment(repr(value))


def as_csv(rows: Iterable[tuple], *, chunk: int = CHUNK) -> Iterator[bytes]:
    """One header line, then a line per row; JSON columns as JSON text, instants in ISO
    8601."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % chunk == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def as_parquet(rows: Iterable[tuple], *, row_group: int = PARQUET_ROW_GROUP,
               batch: int = PARQUET_BATCH) -> Iterator[bytes]:
    """A Parquet file in row groups of ``row_group`` rows, each group's bytes yielded as
    soon as it is written; JSON columns as JSON text. The rows give their instants in
    microseconds (``flat_rows(..., instants="us")``): Arrow takes them as they are, where
    ISO text would need a cast, and a cast loads Arrow's compute functions (about 15 MB)."""
    import pyarrow as pa  # only exports in Parquet pay for loading it
    import pyarrow.parquet as pq

    pa.set_memory_pool(_arrow_pool(pa))

    types = {"position": pa.int64(), "decision_id": pa.int64(), "policy_version": pa.int32(),
             "qa_sample": pa.bool_(), "blind": pa.bool_(), "ai_confidence": pa.float64(),
             "received_at": pa.timestamp("us", tz="UTC"),
             "decided_at": pa.timestamp("us", tz="UTC"), "seconds_to_decision": pa.float64(),
             "time_spent_seconds": pa.int64()}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])
    sink = _Pieces()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    rows_held: list[tuple] = []
    batches: list = []
    batched = 0

    def convert():
        # Python's rows (about 2 KB each) into Arrow's columns (little more than the
        # values' bytes), a batch at a time: the row group waits in the compact form.
        nonlocal batched
        batches.append(pa.RecordBatch.from_arrays(
            [pa.array(column, type=schema.field(index).type)
             for index, column in enumerate(zip(*rows_held, strict=True))], schema=schema))
        batched += len(rows_held)
        rows_held.clear()

    def flush():
        nonlocal batched
        table = pa.Table.from_batches(batches, schema=schema)
        batches.clear()
        batched = 0
        writer.write_table(table, row_group_size=row_group)

    for row in rows:
        rows_held.append(row)
        if len(rows_held) == min(batch, row_group - batched):
            convert()
            if batched == row_group:
                flush()
                yield sink.take()
    if rows_held:
        convert()
    if batches:
        flush()
    writer.close()
    yield sink.take()


def _arrow_pool(pa):
    """Arrow's buffers in jemalloc, returning freed pages at once (decay 0). Arrow's
    default, mimalloc, keeps what a row group freed (about 25 MB more at the peak); the
    system allocator (glibc) interleaves a row group's buffers with longer-lived blocks,
    and the holes they leave grew the heap by 20-40 MB over 1,000,000 rows. Nothing
    else in Backstop uses Arrow. A build without jemalloc falls back to the system's."""
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:
        pool = pa.system_memory_pool()
    return pool


class _Pieces(io.RawIOBase):
    """A write-only file that hands over what was written so far (``take``)."""

    def __init__(self):
        super().__init__()
        self.pieces: list[bytes] = []
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.pieces.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def take(self) -> bytes:
        data = b"".join(self.pieces)
        self.pieces.clear()
        return data


WRITERS = {"jsonl": as_jsonl, "csv": as_csv, "parquet": as_parquet}


def file_pieces(label_filter: LabelFilter, file_format: str, *,
                counted: Callable[[int], object] | None = None) -> Iterator[bytes]:
    """The export file in ``file_format``; ``counted(n)``, when given, hears of the rows
    read, ``CHUNK`` at a time (a progress bar: the pieces' lines are not rows in CSV,
    whose fields may hold line ends, nor in Parquet)."""
    rows = flat_rows(label_filter, instants="us" if file_format == "parquet" else "iso")
    return WRITERS[file_format](rows if counted is None else _counting(rows, counted))


def _counting(rows: Iterable[tuple], counted: Callable[[int], object]) -> Iterator[tuple]:
    count = 0
    for count, row in enumerate(rows, start=1):
        yield row
        if count % CHUNK == 0:
            counted(CHUNK)
    if count % CHUNK:
        counted(count % CHUNK)


def export(*, label_filter: LabelFilter, file_format: str, actor) -> Iterator[bytes]:
    """The export file's bytes, a piece at a time; refused to non-managers, audited
    ``labels.exported`` with the filter and format before the first byte."""
    require_manager(actor, "export labelled data")
    if file_format not in WRITERS:
        raise ValidationError({"format": [f"Choose one of {', '.join(WRITERS)}."]})
    record_export(actor=actor, label_filter=label_filter, how=file_format)
    return file_pieces(label_filter, file_format)


def record_export(*, actor, label_filter: LabelFilter, how: str) -> None:
    audit.record(actor=actor, verb=DomainVerb.LABELS_EXPORTED, object_type="labels",
                 object_id="export", data={**label_filter.as_data(), "format": how})
