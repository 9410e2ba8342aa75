"""POST /api/v1/decisions/batch/: one answer per item, in order, in a fixed number of queries."""

import io
import json
import math
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from exceptions_app.models import Decision
from tests.exceptions_app.factories import PolicyVersionFactory, UseCaseFactory
from tests.exceptions_app.intake_support import invoice, stored
from tests.factories import UserFactory
from workflows.models import AssignmentMode, AuditEvent, Case
from workflows.services import audit

URL = "/api/v1/decisions/batch/"


def post_batch(client, items):
    return client.post(URL, {"decisions": items}, format="json")


@pytest.mark.django_db
def test_results_come_in_order_whatever_each_items_fate(ai_client):
    PolicyVersionFactory(use_case=UseCaseFactory(slug="payroll-check"))
    ai_client.post("/api/v1/decisions/", invoice("inv-old", amount=4100.0), format="json")
    items = [
        invoice("inv-a"),                                 # 201 auto
        invoice("inv-old", amount=4100.0),                # 200 replay of a stored decision
        invoice("inv-b", confidence=2.0),                 # 400 field error
        invoice("inv-c", use_case="payroll-check"),       # 403 not this system's
        invoice("inv-old", amount=4999.0),                # 422 another body
        invoice("inv-d", confidence=0.5),                 # 201 review
        invoice("inv-e", use_case="unknown-thing"),       # 400 unknown use case
        "not an object",                                  # 400
        invoice("inv-f", amount=90000.0, po_amount=90000.0),  # 201 reject
    ]

    response = post_batch(ai_client, items)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] for result in results] == [201, 200, 400, 403, 422, 201, 400, 400,
                                                        201]
    assert [result.get("decision", {}).get("external_id") for result in results] == [
        "inv-a", "inv-old", None, None, None, "inv-d", None, None, "inv-f"]
    assert [result["decision"]["route"] for result in results if result["status"] == 201] == [
        "auto", "review", "reject"]
    assert list(results[2]["errors"]) == ["confidence"]
    assert results[3]["errors"]["detail"].endswith("'payroll-check'.")
    assert "different body" in results[4]["errors"]["external_id"][0]
    assert list(results[6]["errors"]) == ["use_case"]
    assert "non_field_errors" in results[7]["errors"]
    assert set(Decision.objects.values_list("external_id", flat=True)) == {
        "inv-old", "inv-a", "inv-d", "inv-f"}


@pytest.mark.django_db
def test_duplicates_within_a_batch_are_stored_once(ai_client):
    items = [invoice("inv-1", confidence=0.5), invoice("inv-2"), invoice("inv-1", confidence=0.5),
             invoice("inv-1", confidence=0.6)]

    results = post_batch(ai_client, items).json()["results"]

    assert [result["status"] for result in results] == [201, 201, 200, 422]
    assert results[0]["decision"] == results[2]["decision"]
    assert Decision.objects.filter(external_id="inv-1").count() == 1
    assert Case.objects.count() == 1


@pytest.mark.django_db
def test_an_invalid_first_copy_does_not_block_a_valid_second_one(ai_client):
    items = [invoice("inv-1", confidence=-1.0), invoice("inv-1")]

    results = post_batch(ai_client, items).json()["results"]

    assert [result["status"] for result in results] == [400, 201]
    assert Decision.objects.get().external_id == "inv-1"


@pytest.mark.django_db
def test_replaying_a_whole_batch_stores_nothing_new(ai_client):
    items = [invoice(confidence=0.5 if n % 3 else 0.95) for n in range(30)]
    first = post_batch(ai_client, items).json()["results"]
    before = stored()

    again = post_batch(ai_client, items).json()["results"]

    assert {result["status"] for result in again} == {200}
    assert [r["decision"] for r in again] == [r["decision"] for r in first]
    assert stored() == before


def _insert_chunks(rows: int, model) -> int:
    """SQLite splits a bulk insert into chunks of 999 parameters; PostgreSQL never does."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    size = connection.ops.bulk_batch_size(fields, [None] * rows) or rows
    return math.ceil(rows / size)


def _queries_for(rows: int) -> int:
    # key, policy, rules, savepoint, stored decisions, the queues' current SLA terms
    # (cached from then on), then the writes, the quality rollups' upsert, release; half
    # of the invoices open cases.
    if connection.vendor == "postgresql":
        return 6 + 6  # the new ids, one COPY per table (cases, decisions, events), rollups
    cases = rows // 2
    return 8 + sum((_insert_chunks(cases, Case), _insert_chunks(rows, Decision),
                    _insert_chunks(cases + rows, AuditEvent)))


@pytest.mark.django_db
@pytest.mark.parametrize("size", [10, 200])
def test_a_batch_takes_a_fixed_number_of_queries(ai_client, size,
                                                 django_assert_max_num_queries):
    items = [invoice(confidence=0.5 if n % 2 else 0.95) for n in range(size)]

    with django_assert_max_num_queries(_queries_for(size)):
        response = post_batch(ai_client, items)

    assert {result["status"] for result in response.json()["results"]} == {201}
    assert Decision.objects.count() == size


@pytest.mark.django_db
def test_a_full_batch_of_1000_is_taken(ai_client):
    items = [invoice(confidence=0.5 if n % 4 == 0 else 0.95) for n in range(1000)]

    response = post_batch(ai_client, items)

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1000
    assert Decision.objects.count() == 1000
    assert Case.objects.count() == 250


@pytest.mark.django_db
def test_over_1000_decisions_is_a_400_and_nothing_is_stored(ai_client):
    response = post_batch(ai_client, [invoice() for _ in range(1001)])

    assert response.status_code == 400
    assert response.json() == {"decisions": ["Ensure this field has no more than 1000 elements."]}
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"decisions": []}, {}, {"decisions": {"a": 1}}, []])
def test_a_batch_without_a_list_of_decisions_is_a_400(ai_client, body):
    response = ai_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert stored() == (0, 0, 0)


# --- 413: the body is over the limit, however small each decision -------------------------

def post_raw(client, body: bytes, **extra):
    return client.generic("POST", URL, body, content_type="application/json", **extra)


@pytest.mark.django_db
def test_an_oversize_batch_is_a_413_and_nothing_is_stored(ai_client, settings):
    body = json.dumps({"decisions": [invoice() for _ in range(20)]}).encode()
    settings.API_MAX_BODY_BYTES = len(body) - 1

    response = post_raw(ai_client, body)

    assert response.status_code == 413
    detail = response.json()["detail"]
    assert f"The body is {len(body)} bytes; the limit is {len(body) - 1} bytes" in detail
    assert "a batch takes up to 1000 decisions" in detail
    assert stored() == (0, 0, 0)
    # One byte more of allowance and the same batch is taken.
    settings.API_MAX_BODY_BYTES = len(body)
    assert post_raw(ai_client, body).status_code == 200
    assert Decision.objects.count() == 20


@pytest.mark.django_db
def test_an_oversize_chunked_batch_without_a_length_is_a_413(ai_client, settings):
    body = json.dumps({"decisions": [invoice() for _ in range(20)]}).encode()
    settings.API_MAX_BODY_BYTES = len(body) - 1

    # As gunicorn hands a chunked upload to Django: no Content-Length, a terminated input.
    response = post_raw(ai_client, body, CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked",
                        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True})

    assert response.status_code == 413
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_batch_needs_a_key(api_client, invoice_policy):
    assert post_batch(api_client, [invoice()]).status_code == 401
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_every_decision_and_case_of_a_batch_is_audited_once(ai_client):
    items = [invoice(confidence=(0.5, 0.95, 0.8)[n % 3]) for n in range(60)]
    items += items[:10]  # replays within the batch

    post_batch(ai_client, items)

    decisions = Decision.objects.all()
    assert decisions.count() == 60
    received = AuditEvent.objects.filter(verb="decision.received")
    assert sorted(received.values_list("object_id", flat=True)) == sorted(
        str(pk) for pk in decisions.values_list("pk", flat=True))
    opened = AuditEvent.objects.filter(verb="case.opened")
    assert sorted(opened.values_list("case_id", flat=True)) == sorted(
        Case.objects.values_list("pk", flat=True))
    assert Case.objects.count() == 40
    for decision in decisions.exclude(case=None):
        event = received.get(object_id=str(decision.pk))
        assert event.case_id == decision.case_id
        assert event.data["route"] == "review"


@pytest.mark.django_db
def test_what_a_batch_answers_is_what_was_stored_and_audited(ai_client):
    # Text that COPY must escape, and JSON of every kind.
    items = [invoice(f"inv-{n}\t\"tab\"\\{n}\né", confidence=(0.5, 0.95, 0.8)[n % 3],
                     explanation="Read from the header;\tsee \\\\server\\scan\r\n☃",
                     meta={"note": "naïve \u0001 \\N", "nested": {"b": [1, 2.5, None, True]}})
             for n in range(30)]

    results = post_batch(ai_client, items).json()["results"]

    assert {result["status"] for result in results} == {201}
    for item, result in zip(items, results, strict=True):
        answered = result["decision"]
        assert ai_client.get(f"/api/v1/decisions/{answered['id']}/").json() == answered
        assert {field: answered[field] for field in ("external_id", "input", "output",
                                                     "explanation", "meta")} == {
            field: item[field] for field in ("external_id", "input", "output",
                                             "explanation", "meta")}
    assert audit.seal() == 30 + 20  # a receipt per decision, an opening per case
    report = audit.verify()
    assert report.ok, report.problems


@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 30])  # by INSERT, and (on PostgreSQL) by COPY
def test_a_batchs_audit_events_are_signed_and_stamped_by_the_database(ai_client, size):
    started = timezone.now()

    post_batch(ai_client, [invoice(confidence=0.5) for _ in range(size)])

    events = list(AuditEvent.objects.all())
    assert len(events) == 2 * size  # a receipt and an opening each
    for event in events:
        assert event.row_mac == audit.row_mac(event.row_hash)
        assert not event.backfilled
        assert abs(event.recorded_at - started) < timedelta(minutes=1)
    audit.seal()
    assert audit.verify().ok


@pytest.mark.django_db
def test_a_push_queue_hands_out_a_batchs_cases_once_they_are_opened(ai_client, invoice_policy):
    queue = invoice_policy.use_case.review_queue
    queue.assignment_mode = AssignmentMode.ROUND_ROBIN
    queue.save()
    queue.members.add(*(UserFactory(username=name) for name in ("ann", "bob")))

    results = post_batch(ai_client, [invoice(confidence=0.5) for _ in range(4)]).json()["results"]

    cases = [result["decision"]["case"] for result in results]
    assert [case["state"] for case in cases] == ["assigned"] * 4
    for case in cases:
        assert list(AuditEvent.objects.filter(case_id=case["id"]).order_by("id")
                    .values_list("verb", flat=True)) == [
            "case.opened", "decision.received", "case.assigned"]


@pytest.mark.django_db
def test_a_batch_item_whose_confidence_is_not_a_number_fails_alone(ai_client):
    items = [invoice("inv-1"), invoice("inv-2", confidence=True),
             invoice("inv-3", confidence="0.95"), invoice("inv-4", confidence=0.5)]

    results = post_batch(ai_client, items).json()["results"]

    assert [result["status"] for result in results] == [201, 400, 400, 201]
    assert list(results[1]["errors"]) == ["confidence"]
    assert list(results[2]["errors"]) == ["confidence"]
    assert "number" in results[1]["errors"]["confidence"][0]
    assert set(Decision.objects.values_list("external_id", flat=True)) == {"inv-1", "inv-4"}
