"""Labelled data out: each final resolution once, with its provenance, as JSON Lines, CSV
or Parquet, from the API, the page and the command; filtered; managers only; audited."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from exceptions_app.models import LabelledExample
from exceptions_app.services import labels
from tests.exceptions_app.factories import AiSystemFactory, make_decision_case
from workflows.models import AuditEvent, Verdict
from workflows.services import claiming, transitions

LIST = "/api/v1/labels/"
EXPORT = "/api/v1/labels/export/"


@pytest.fixture
def resolve_new(invoice_use_case, member):
    """resolve_new(name, verdict=...) posts a decision and resolves its case."""
    system = AiSystemFactory(slug="invoice-bot", use_cases=[invoice_use_case])

    def resolve_new(name, verdict=Verdict.ACCEPTED, **kwargs):
        decision = make_decision_case(invoice_use_case, ai_system=system, external_id=name)
        claiming.claim(case_id=decision.case_id, user=member)
        kwargs.setdefault("output", None)
        kwargs.setdefault("reason_code", "" if verdict == Verdict.ACCEPTED else "wrong-amount")
        transitions.resolve(case_id=decision.case_id, user=member, verdict=verdict, **kwargs)
        return decision
    return resolve_new


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def external_ids(body) -> list[str]:
    return [row["external_id"] for row in body["results"]]


@pytest.mark.django_db
def test_the_api_gives_each_example_once_in_order_and_those_that_arrive_later(
        resolve_new, manager):
    for n in range(3):
        resolve_new(f"inv-{n}")
    client = api(manager)

    first = client.get(LIST, {"page_size": 2}).json()
    rest = client.get(first["next"]).json()
    empty = client.get(rest["next"]).json()
    resolve_new("inv-3")
    later = client.get(empty["next"]).json()

    assert [external_ids(page) for page in (first, rest, empty, later)] == [
        ["inv-0", "inv-1"], ["inv-2"], [], ["inv-3"]]
    assert AuditEvent.objects.filter(verb="labels.exported").count() == 1  # one read begun


@pytest.mark.django_db
def test_a_row_carries_its_provenance(resolve_new, manager):
    decision = resolve_new("inv-9", verdict=Verdict.CORRECTED,
                           output={"action": "hold", "amount": 4100.0}, notes="PO says 4,100.")

    [row] = api(manager).get(LIST).json()["results"]

    assert set(row) == set(labels.COLUMNS)
    assert {name: row[name] for name in (
        "decision_id", "external_id", "use_case", "model_version", "policy_version", "stage",
        "route", "rules_fired", "qa_sample", "blind", "ai_output", "final_output", "verdict",
        "reason_code", "notes", "reviewer", "reviewer_role", "approver", "approver_role")} == {
        "decision_id": decision.pk, "external_id": "inv-9", "use_case": "invoices",
        "model_version": "extractor-3.2.1", "policy_version": decision.policy_version.number,
        "stage": decision.stage, "route": "review", "rules_fired": ["low-confidence"],
        "qa_sample": False, "blind": False, "ai_output": {"action": "approve", "amount": 4180.0},
        "final_output": {"action": "hold", "amount": 4100.0}, "verdict": "corrected",
        "reason_code": "wrong-amount", "notes": "PO says 4,100.", "reviewer": "member",
        "reviewer_role": "reviewer", "approver": "", "approver_role": ""}
    assert row["seconds_to_decision"] >= 0


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["jsonl", "csv", "parquet"])
def test_every_format_holds_the_same_rows(resolve_new, manager, file_format):
    resolve_new("inv-1")
    resolve_new("inv-2", verdict=Verdict.REJECTED)

    response = api(manager).get(f"{EXPORT}{file_format}/")
    content = b"".join(response.streaming_content)

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="labels-all-')
    if file_format == "jsonl":
        rows = [json.loads(line) for line in content.decode().splitlines()]
    elif file_format == "csv":
        rows = list(csv.DictReader(io.StringIO(content.decode())))
    else:
        rows = pq.read_table(io.BytesIO(content)).to_pylist()
    assert [(row["external_id"], row["verdict"]) for row in rows] == [
        ("inv-1", "accepted"), ("inv-2", "rejected")]
    assert list(rows[0]) == list(labels.COLUMNS)


@pytest.mark.parametrize("batch", [4, 10, 1000])
def test_parquet_is_written_a_row_group_at_a_time(batch):
    """Rows become Arrow's columns a batch at a time, and a row group is written as soon
    as it is full, whatever the batch."""
    now = timezone.now()
    row = {name: "" for name in labels.COLUMNS} | {
        "decision_id": 1, "policy_version": 1, "qa_sample": False, "blind": False,
        "ai_confidence": 0.5, "received_at": labels.INSTANTS["us"](now),
        "decided_at": labels.INSTANTS["us"](now), "seconds_to_decision": 0.0,
        "time_spent_seconds": 0}
    rows = (tuple(dict(row, position=n, notes=f"n{n}").values()) for n in range(25))
    pieces = list(labels.as_parquet(rows, row_group=10, batch=batch))

    file = pq.ParquetFile(io.BytesIO(b"".join(pieces)))
    assert [file.metadata.row_group(n).num_rows for n in range(file.metadata.num_row_groups)
            ] == [10, 10, 5]
    assert len(pieces) == 3 and all(pieces[:2])  # two full groups flushed as they filled
    read = file.read().to_pylist()
    assert [(row["position"], row["notes"]) for row in read] == [(n, f"n{n}") for n in range(25)]
    assert {row["decided_at"] for row in read} == {now}


@pytest.mark.django_db
def test_filters_select_and_a_filter_matching_nothing_gives_an_empty_file(resolve_new, manager):
    resolve_new("inv-1")
    resolve_new("inv-2", verdict=Verdict.REJECTED)
    client = api(manager)

    rejected = client.get(LIST, {"verdict": "rejected", "use_case": "invoices"}).json()
    future = client.get(f"{EXPORT}jsonl/", {"since": "2999-01-01"})

    assert external_ids(rejected) == ["inv-2"]
    assert future.status_code == 200 and b"".join(future.streaming_content) == b""


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "named"), [
    ({"model_version": "gpt-0"}, "model_version"), ({"use_case": "nope"}, "use_case"),
    ({"verdict": "maybe"}, "verdict"), ({"since": "last week"}, "since"),
    ({"since": "2026-12-02", "until": "2026-12-01"}, "until"), ({"cursor": "abc"}, "cursor"),
])
def test_a_bad_filter_answers_400_naming_it(resolve_new, manager, params, named):
    resolve_new("inv-1")

    response = api(manager).get(LIST, params)

    assert response.status_code == 400
    assert list(response.json()) == [named]


@pytest.mark.django_db
def test_exporting_is_for_managers(resolve_new, member, client):
    resolve_new("inv-1")
    client.force_login(member)

    assert api(member).get(LIST).status_code == 403
    assert api(member).get(f"{EXPORT}csv/").status_code == 403
    assert client.get("/labels/").status_code == 403


@pytest.mark.django_db
def test_the_page_downloads_the_chosen_export_and_words_bad_filters(resolve_new, manager, client):
    resolve_new("inv-1")
    client.force_login(manager)

    page = client.get("/labels/")
    download = client.get("/labels/", {"format": "csv", "use_case": "invoices"})
    refused = client.get("/labels/", {"format": "csv", "model_version": "gpt-0"})

    assert page.status_code == 200 and b"Download Parquet" in page.content
    assert download["Content-Disposition"].startswith('attachment; filename="labels-invoices-')
    assert b"inv-1" in b"".join(download.streaming_content)
    assert refused.status_code == 400
    assert b"No labelled example has model version" in refused.content
    event = AuditEvent.objects.get(verb="labels.exported")
    assert (event.actor_label, event.data["format"], event.data["use_case"]) == (
        "manager", "csv", "invoices")


@pytest.mark.django_db
def test_the_command_writes_the_file_and_names_a_bad_option(resolve_new, tmp_path):
    resolve_new("inv-1")
    target = tmp_path / "labels.parquet"

    call_command("export_labels", "--format", "parquet", "-o", str(target), "--no-progress")

    assert pq.read_table(target).column("external_id").to_pylist() == ["inv-1"]
    assert AuditEvent.objects.get(verb="labels.exported").actor_label == "cli:export_labels"
    with pytest.raises(CommandError, match="--verdict: Choose one of"):
        call_command("export_labels", "--verdict", "maybe")


@pytest.mark.django_db
def test_the_files_hold_the_rows_the_api_gives(
        resolve_new, manager, second_member, invoice_use_case):
    resolve_new("inv-1", verdict=Verdict.CORRECTED, output={"action": "hold", "amount": 1.5},
                notes='Quotes " and \\ and\nnew lines, ünïcödé')
    resolve_new("inv-2", verdict=Verdict.REJECTED)
    four_eyes = make_decision_case(invoice_use_case, external_id="inv-3", four_eyes=True,
                                   ai_system=AiSystemFactory(slug="invoice-bot"))
    claiming.claim(case_id=four_eyes.case_id, user=second_member)
    transitions.resolve(case_id=four_eyes.case_id, user=second_member, verdict=Verdict.ACCEPTED,
                        output=None, reason_code="")
    transitions.approve(case_id=four_eyes.case_id, user=manager)
    everything = labels.LabelFilter()

    by_file = [json.loads(line) for line in b"".join(labels.as_jsonl(
        labels.flat_rows(everything, chunk=2), chunk=2)).decode().splitlines()]
    by_api = json.loads(json.dumps(labels.page(everything), default=datetime.isoformat))

    def same_instants(row):
        return {name: (parse_datetime(value) if name.endswith("_at") else value)
                for name, value in row.items()}
    assert [same_instants(row) for row in by_file] == [same_instants(row) for row in by_api]
    assert [row["approver_role"] for row in by_file] == ["", "", "manager"]
    assert list(by_file[0]) == list(labels.COLUMNS)


@pytest.mark.django_db
@pytest.mark.parametrize("name", labels.FILTERS)
def test_a_nul_character_in_a_filter_is_refused_by_name(manager, name):
    response = api(manager).get(LIST, {name: "a\x00b"})

    assert response.status_code == 400
    assert response.json() == {name: ["Cannot hold a NUL character."]}


# Rows as ``flat_rows`` gives them, and the bytes the JSON Lines writer gave for them
# before it was rewritten on orjson (json's encoder and f-strings): the format may not move.
AWKWARD_ROWS = [
    (1, 10, 'ext "1"\\\n\t\x01ü\u2028', "inv", "m-1", 3, "assist", "review",
     '["large-invoice"]', False, True, '{"a": 1, "b": [1.5, "x"]}', '{"amount": 1.0}', 0.923,
     "null", "rejected", "wrong-amount", 'Quotes " and \\ and\nnew ünï', "rev", "reviewer",
     "", "", "2026-12-01T08:12:00+00:00", "2026-12-01T08:29:00.000005+00:00", 1020.0, 300),
    (2, 11, "e2", "inv", "m-1", 3, "automate", "auto", "[]", True, False, "{}",
     '{"amount": 2}', 1e-05, '{"amount": 3}', "corrected", "", "", "rev", "manager", "boss",
     "manager", "2026-12-01T08:12:00.123456+00:00", "2026-12-02T09:00:00+00:00", 89507.877, 0),
    (3, 12, "e3", "inv", "m-2", 1, "audit", "reject", '["a", "b"]', False, False,
     '{"x": null}', "{}", 1.0, "{}", "accepted", "", "", "rev", "reviewer", "", "",
     "2026-12-01T08:12:00+00:00", "2026-12-01T08:12:00+00:00", 0.0, 7),
]
JSONL_BEFORE_ORJSON = (
    b'{"position":1,"decision_id":10,"external_id":"ext \\"1\\"\\\\\\n\\t\\u0001\xc3\xbc'
    b'\xe2\x80\xa8","use_case":"inv","model_version":"m-1","policy_version":3,"stage":"assi'
    b'st","route":"review","rules_fired":["large-invoice"],"qa_sample":false,"blind":true,"'
    b'input":{"a": 1, "b": [1.5, "x"]},"ai_output":{"amount": 1.0},"ai_confidence":0.923,"f'
    b'inal_output":null,"verdict":"rejected","reason_code":"wrong-amount","notes":"Quotes '
    b'\\" and \\\\ and\\nnew \xc3\xbcn\xc3\xaf","reviewer":"rev","reviewer_role":"reviewer"'
    b',"approver":"","approver_role":"","received_at":"2026-12-01T08:12:00+00:00","decided_'
    b'at":"2026-12-01T08:29:00.000005+00:00","seconds_to_decision":1020.0,"time_spent_secon'
    b'ds":300}\n{"position":2,"decision_id":11,"external_id":"e2","use_case":"inv","model_v'
    b'ersion":"m-1","policy_version":3,"stage":"automate","route":"auto","rules_fired":[],"'
    b'qa_sample":true,"blind":false,"input":{},"ai_output":{"amount": 2},"ai_confidence":1e'
    b'-05,"final_output":{"amount": 3},"verdict":"corrected","reason_code":"","notes":"","r'
    b'eviewer":"rev","reviewer_role":"manager","approver":"boss","approver_role":"manager",'
    b'"received_at":"2026-12-01T08:12:00.123456+00:00","decided_at":"2026-12-02T09:00:00+00'
    b':00","seconds_to_decision":89507.877,"time_spent_seconds":0}\n{"position":3,"decision'
    b'_id":12,"external_id":"e3","use_case":"inv","model_version":"m-2","policy_version":1,'
    b'"stage":"audit","route":"reject","rules_fired":["a", "b"],"qa_sample":false,"blind":f'
    b'alse,"input":{"x": null},"ai_output":{},"ai_confidence":1.0,"final_output":{},"verdic'
    b't":"accepted","reason_code":"","notes":"","reviewer":"rev","reviewer_role":"reviewer"'
    b',"approver":"","approver_role":"","received_at":"2026-12-01T08:12:00+00:00","decided_'
    b'at":"2026-12-01T08:12:00+00:00","seconds_to_decision":0.0,"time_spent_seconds":7}\n')


def test_json_lines_keep_their_exact_bytes():
    assert b"".join(labels.as_jsonl(AWKWARD_ROWS, chunk=2)) == JSONL_BEFORE_ORJSON


@pytest.mark.postgres
@pytest.mark.django_db
def test_rows_read_by_sql_are_the_rows_the_orm_reads(resolve_new, manager, second_member,
                                                     invoice_use_case):
    """The PostgreSQL fast path against the reference, with every filter, a second
    reviewer's approval, an instant with microseconds and one without."""
    resolve_new("inv-1", verdict=Verdict.CORRECTED, output={"action": "hold", "amount": 1.5},
                notes='Quotes " and \\ and\nnew lines, ünïcödé')
    resolve_new("inv-2", verdict=Verdict.REJECTED)
    four_eyes = make_decision_case(invoice_use_case, external_id="inv-3", four_eyes=True,
                                   ai_system=AiSystemFactory(slug="invoice-bot"))
    claiming.claim(case_id=four_eyes.case_id, user=second_member)
    transitions.resolve(case_id=four_eyes.case_id, user=second_member, verdict=Verdict.ACCEPTED,
                        output=None, reason_code="")
    transitions.approve(case_id=four_eyes.case_id, user=manager)
    LabelledExample.objects.filter(external_id="inv-2").update(
        decided_at=datetime(2026, 12, 1, 8, 29, tzinfo=UTC),
        received_at=datetime(2026, 12, 1, 8, 12, 0, 123456, tzinfo=UTC))
    decided = LabelledExample.objects.get(external_id="inv-1").decided_at

    for label_filter in (labels.LabelFilter(),
                         labels.LabelFilter(use_case=invoice_use_case, verdict=Verdict.ACCEPTED),
                         labels.LabelFilter(model_version="nothing-has-it"),
                         labels.LabelFilter(since=decided, until=decided + timedelta(days=1))):
        for instants in labels.INSTANTS:
            by_sql = list(labels._flat_rows_by_sql(label_filter, chunk=2, instants=instants))
            assert by_sql == list(labels._flat_rows_by_orm(label_filter, chunk=2,
                                                           instants=instants))
    assert len(list(labels.flat_rows(labels.LabelFilter()))) == 3
    assert "2026-12-01T08:12:00.123456+00:00" in {
        row[22] for row in labels._flat_rows_by_sql(labels.LabelFilter(), chunk=10)}
    assert 1796112720123456 in {  # the same instant in microseconds since 1970
        row[22] for row in labels._flat_rows_by_sql(labels.LabelFilter(), chunk=10,
                                                    instants="us")}


@pytest.mark.django_db
def test_parquet_holds_the_values_json_lines_hold(resolve_new, manager, second_member,
                                                  invoice_use_case):
    """Parquet is written from rows whose instants are microseconds, JSON Lines from ISO
    text: read back, each row gives the same values (JSON columns as their JSON, instants
    to the microsecond)."""
    resolve_new("inv-1", verdict=Verdict.CORRECTED, output={"action": "hold", "amount": 1.5},
                notes='Quotes " and \\ and\nnew lines, ünïcödé')
    resolve_new("inv-2", verdict=Verdict.REJECTED)
    four_eyes = make_decision_case(invoice_use_case, external_id="inv-3", four_eyes=True,
                                   ai_system=AiSystemFactory(slug="invoice-bot"))
    claiming.claim(case_id=four_eyes.case_id, user=second_member)
    transitions.resolve(case_id=four_eyes.case_id, user=second_member, verdict=Verdict.ACCEPTED,
                        output=None, reason_code="")
    transitions.approve(case_id=four_eyes.case_id, user=manager)
    LabelledExample.objects.filter(external_id="inv-2").update(
        decided_at=datetime(2026, 12, 1, 8, 29, tzinfo=UTC),
        received_at=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    everything = labels.LabelFilter()

    by_jsonl = [json.loads(line) for line in
                b"".join(labels.file_pieces(everything, "jsonl")).splitlines()]
    table = pq.read_table(io.BytesIO(b"".join(labels.file_pieces(everything, "parquet"))))
    by_parquet = [{name: (json.loads(value) if name in labels.JSON_COLUMNS
                          else value.isoformat() if name.endswith("_at") else value)
                   for name, value in row.items()} for row in table.to_pylist()]

    assert by_parquet == by_jsonl
    assert [row["received_at"] for row in by_parquet][1] == "1969-12-31T23:59:59.999999+00:00"
    assert str(table.schema.field("received_at").type) == "timestamp[us, tz=UTC]"


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_the_command_s_progress_bar_counts_rows(resolve_new, tmp_path, capsys, file_format):
    """Rows, not the lines of the file: a CSV field may hold line ends, Parquet is bytes."""
    resolve_new("inv-1", verdict=Verdict.CORRECTED, output={"action": "hold", "amount": 1.5},
                notes="one\ntwo\nthree\nfour")
    resolve_new("inv-2", verdict=Verdict.REJECTED)

    call_command("export_labels", "--format", file_format, "-o", str(tmp_path / "labels"))

    bar = capsys.readouterr().err.split("\r")[-1]
    assert "2/2 [" in bar, bar
