"""POST /api/v1/decisions/ and GET /api/v1/decisions/{id}/: the intake contract, code by code."""

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from exceptions_app.api.serializers import DecisionOutSerializer
from exceptions_app.models import AiSystemAPIKey, Decision, UseCase
from exceptions_app.services import intake
from tests.exceptions_app.factories import AiSystemFactory, PolicyVersionFactory, UseCaseFactory
from tests.exceptions_app.intake_support import client_for, invoice, stored
from tests.factories import UserFactory
from workflows.actors import SYSTEM
from workflows.models import AuditEvent, Case, Queue
from workflows.services import cases
from workflows.services.sla import publish_sla_policy

URL = "/api/v1/decisions/"


# --- 201: stored, judged and routed ----------------------------------------------------


@pytest.mark.django_db
def test_confident_matching_invoice_passes_automatically(ai_client):
    response = ai_client.post(URL, invoice("inv-1"), format="json")

    assert response.status_code == 201
    body = response.json()
    decision = Decision.objects.get()
    assert body["id"] == decision.pk
    assert body["route"] == "auto" == decision.route
    assert body["stage"] == "assist"
    assert body["case"] is None and decision.case is None
    assert body["reasons"] == [{"rule": "matches-po", "action": "auto",
                                "text": "Matches its PO within 2%: approved"}]
    assert body["policy_version"] == decision.policy_version.number
    assert decision.ai_system == ai_client.ai_system
    assert AuditEvent.objects.filter(verb="decision.received").count() == 1


@pytest.mark.django_db
def test_low_confidence_invoice_opens_a_case(ai_client):
    response = ai_client.post(URL, invoice("inv-1", confidence=0.5), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["route"] == "review"
    case = Case.objects.get(pk=body["case"]["id"])
    assert body["case"] == {"id": case.pk, "state": "open", "queue": case.queue.slug,
                            "priority": 70,
                            "due_at": case.due_at.isoformat().replace("+00:00", "Z")}
    assert body["reasons"][0]["text"].startswith("Confidence under 0.9")
    assert case.decision.external_id == "inv-1"
    assert case.queue == Decision.objects.get().use_case.review_queue
    assert sorted(AuditEvent.objects.filter(case=case).values_list("verb", flat=True)) == [
        "case.opened", "decision.received"]


@pytest.mark.django_db
def test_invoice_over_the_limit_is_rejected_without_a_case(ai_client):
    response = ai_client.post(URL, invoice(amount=60000.0, po_amount=60000.0), format="json")

    assert response.status_code == 201
    assert response.json()["route"] == "reject"
    assert response.json()["reasons"][0]["rule"] == "huge-amount"
    assert response.json()["case"] is None
    assert Case.objects.count() == 0
    assert Decision.objects.get().route == "reject"


@pytest.mark.django_db
def test_a_rule_that_cannot_be_evaluated_sends_the_decision_to_review(ai_client):
    body = invoice()
    del body["input"]["po_amount"]  # matches-po reads input.po_amount

    response = ai_client.post(URL, body, format="json")

    assert response.status_code == 201
    assert response.json()["route"] == "review"
    assert response.json()["reasons"] == [
        {"rule": "matches-po", "action": "review",
         "text": "Rule 'matches-po' could not be checked: the field 'po_amount' is missing"},
        {"rule": None, "action": "auto", "text": "No rule matched: the policy's default applies"},
    ]
    assert Case.objects.count() == 1


# --- 200: a replay answers the first answer and stores nothing -------------------------


@pytest.mark.django_db
def test_replay_with_the_same_body_answers_the_first_answer(ai_client):
    first = ai_client.post(URL, invoice("inv-1", confidence=0.5), format="json")
    before = stored()

    again = ai_client.post(URL, invoice("inv-1", confidence=0.5), format="json")

    assert again.status_code == 200
    assert again.json() == first.json()
    assert stored() == before


@pytest.mark.django_db
def test_replay_that_writes_whole_numbers_differently_is_still_a_replay(ai_client):
    ai_client.post(URL, invoice("inv-1", amount=4100.0), format="json")
    raw = json.dumps(invoice("inv-1")).replace("4100.0", "4100")
    before = stored()

    again = ai_client.post(URL, raw, content_type="application/json")

    assert again.status_code == 200
    assert stored() == before


@pytest.mark.django_db
def test_replay_is_answered_even_after_the_data_contract_tightened(ai_client):
    first = ai_client.post(URL, invoice("inv-1"), format="json")
    use_case = Decision.objects.get().use_case
    use_case.input_schema = {"type": "object", "required": ["invoice_number"]}
    use_case.save()

    again = ai_client.post(URL, invoice("inv-1"), format="json")

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


# --- 422: the external_id is taken by another body ------------------------------------


@pytest.mark.django_db
def test_same_external_id_with_another_body_is_refused_and_changes_nothing(ai_client):
    ai_client.post(URL, invoice("inv-1", amount=4100.0), format="json")
    before = stored()

    response = ai_client.post(URL, invoice("inv-1", amount=4999.0), format="json")

    assert response.status_code == 422
    assert "already posted with a different body" in response.json()["external_id"][0]
    assert stored() == before
    assert Decision.objects.get().output["amount"] == 4100.0


# --- 400: field errors, nothing stored, a corrected retry succeeds ---------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), [
    ({"confidence": 1.5}, "confidence"),
    ({"confidence": "high"}, "confidence"),
    ({"input": "ACME GmbH, 4100 EUR"}, "input"),
    ({"output": ["approve"]}, "output"),
    ({"external_id": ""}, "external_id"),
    ({"external_id": "x" * 201}, "external_id"),
    ({"model_version": None}, "model_version"),
    ({"meta": 3}, "meta"),
    ({"use_case": "not a slug!"}, "use_case"),
])
def test_invalid_field_is_named_and_nothing_is_stored(ai_client, change, field):
    response = ai_client.post(URL, {**invoice("inv-1"), **change}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["use_case", "external_id", "model_version", "confidence",
                                   "input", "output"])
def test_missing_required_field_is_named(ai_client, field):
    body = invoice("inv-1")
    del body[field]

    response = ai_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {field: ["This field is required."]}
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_corrected_retry_with_the_same_external_id_succeeds(ai_client):
    refused = ai_client.post(URL, invoice("inv-1", confidence=7), format="json")

    retry = ai_client.post(URL, invoice("inv-1", confidence=0.7), format="json")

    assert refused.status_code == 400
    assert retry.status_code == 201
    assert Decision.objects.get().confidence == 0.7


@pytest.mark.django_db
@pytest.mark.parametrize(("raw", "where"), [
    ('{"vendor": "ACME\\u0000GmbH", "po_amount": 1.0}', "vendor: text may not contain"),
    ('{"vendor": "ACME", "po_amount": 1e400}', "po_amount: the number is out of range"),
    ('{"vendor": "ACME", "po_amount": 1' + "0" * 400 + "}", "po_amount: the number is out"),
    ('{"lines": ' + "[" * 40 + "]" * 40 + "}", "nested more than 32 levels"),
])
def test_json_that_cannot_be_stored_or_judged_is_a_field_error(ai_client, raw, where):
    body = json.dumps(invoice("inv-1", input="INPUT")).replace('"INPUT"', raw)

    response = ai_client.post(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert where in response.json()["input"][0]
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("raw", [
    '{"use_case": "invoice-approval", ',
    '{"confidence": NaN}',
    "[" * 100_000 + "]" * 100_000,
])
def test_malformed_json_is_a_400_never_a_500(ai_client, raw):
    response = ai_client.post(URL, raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_refused(ai_client):
    response = ai_client.post(URL, {"use_case": "invoice-approval"})  # multipart form

    assert response.status_code == 415
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_unknown_use_case_is_a_400_naming_it(ai_client):
    response = ai_client.post(URL, invoice(use_case="mortgage-approval"), format="json")

    assert response.status_code == 400
    assert response.json() == {"use_case": ["Unknown use case 'mortgage-approval'."]}
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_use_case_without_an_active_policy_is_a_400(ai_client):
    draft_only = UseCaseFactory(slug="claims-triage")
    PolicyVersionFactory(use_case=draft_only, status="draft")
    ai_client.ai_system.use_cases.add(draft_only)

    response = ai_client.post(URL, invoice(use_case="claims-triage"), format="json")

    assert response.status_code == 400
    assert "no active policy" in response.json()["use_case"][0]
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_breaking_the_data_contract_is_a_400_naming_the_field(ai_client, invoice_policy):
    use_case = invoice_policy.use_case
    use_case.input_schema = {
        "type": "object", "required": ["vendor", "po_amount"],
        "properties": {"po_amount": {"type": "number", "minimum": 0}}}
    use_case.output_schema = {"type": "object", "required": ["amount"]}
    use_case.save()
    body = invoice("inv-1", po_amount=-5.0)
    del body["output"]["amount"]

    response = ai_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {"input": ["po_amount: -5.0 is less than the minimum of 0"],
                               "output": ["'amount' is a required property"]}
    assert stored() == (0, 0, 0)
    assert ai_client.post(URL, invoice("inv-1"), format="json").status_code == 201


# --- 403: a use case the key may not post to --------------------------------------------


@pytest.mark.django_db
def test_use_case_the_key_may_not_post_to_is_a_403(ai_client):
    PolicyVersionFactory(use_case=UseCaseFactory(slug="payroll-check"))

    response = ai_client.post(URL, invoice(use_case="payroll-check"), format="json")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "This AI system may not post to the use case 'payroll-check'."}
    assert stored() == (0, 0, 0)


# --- 401: missing, unknown or revoked key ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Api-Key nope.nothing", "Api-Key ", "Bearer abc",
                                    "Api-Key \u00e9t\u00e9.key"])
def test_missing_or_unknown_key_is_a_401(api_client, invoice_policy, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.post(URL, invoice(), format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_revoked_key_is_a_401(ai_client):
    AiSystemAPIKey.objects.filter(ai_system=ai_client.ai_system).update(revoked=True)

    response = ai_client.post(URL, invoice(), format="json")

    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_deactivated_ai_system_is_a_401(ai_client):
    ai_client.ai_system.is_active = False
    ai_client.ai_system.save()

    assert ai_client.post(URL, invoice(), format="json").status_code == 401
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_a_person_logged_in_cannot_post_decisions(api_client, invoice_policy):
    manager = UserFactory(username="manager")
    manager.user_permissions.add(Permission.objects.get(codename="manage_cases"))
    api_client.force_login(manager)

    response = api_client.post(URL, invoice(), format="json")

    assert response.status_code == 401
    assert stored() == (0, 0, 0)


# --- 413: the body is over the limit ----------------------------------------------------------


@pytest.mark.django_db
def test_oversize_body_is_a_413_and_nothing_is_stored(ai_client, settings):
    settings.API_MAX_BODY_BYTES = 2000
    body = invoice(explanation="x" * 2500)

    response = ai_client.post(URL, body, format="json")

    assert response.status_code == 413
    assert "the limit is 2000 bytes" in response.json()["detail"]
    assert stored() == (0, 0, 0)


def _chunked(client, body: bytes):
    """A request as gunicorn hands a chunked upload to Django: no Content-Length, and
    an input stream that ends where the body ends."""
    return client.generic("POST", URL, body, content_type="application/json",
                          CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked",
                          **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True})


@pytest.mark.django_db
def test_oversize_chunked_body_without_a_length_is_a_413(ai_client, settings):
    settings.API_MAX_BODY_BYTES = 2000

    response = _chunked(ai_client, json.dumps(invoice(explanation="x" * 2500)).encode())

    assert response.status_code == 413
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
def test_chunked_body_within_the_limit_is_taken(ai_client):
    response = _chunked(ai_client, json.dumps(invoice("inv-1")).encode())

    assert response.status_code == 201
    assert Decision.objects.get().external_id == "inv-1"


# --- 429: throttled per AI system ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_system_over_its_rate_is_throttled_and_another_is_not(ai_client, other_client,
                                                                 settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"ai_system": "3/min"}}

    answers = [ai_client.post(URL, invoice(), format="json").status_code for _ in range(4)]
    other = other_client.post(URL, invoice(), format="json")

    assert answers == [201, 201, 201, 429]
    assert other.status_code == 201
    assert Decision.objects.filter(ai_system=ai_client.ai_system).count() == 3
    assert Decision.objects.filter(ai_system=other_client.ai_system).count() == 1


# --- Scoping: keys belong to one AI system ----------------------------------------------------


@pytest.mark.django_db
def test_same_external_id_from_two_systems_is_two_decisions(ai_client, other_client):
    mine = ai_client.post(URL, invoice("inv-1", amount=4100.0), format="json")
    theirs = other_client.post(URL, invoice("inv-1", amount=4180.0), format="json")

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert Decision.objects.filter(external_id="inv-1").count() == 2


@pytest.mark.django_db
def test_a_system_reads_its_own_decision_and_never_another_systems(ai_client, other_client):
    decision_id = ai_client.post(URL, invoice("inv-1", confidence=0.5), format="json").json()["id"]

    own = ai_client.get(f"{URL}{decision_id}/")
    foreign = other_client.get(f"{URL}{decision_id}/")
    anonymous = client_for(AiSystemFactory(slug="outsider")).get(f"{URL}{decision_id}/")

    assert own.status_code == 200
    assert own.json()["id"] == decision_id
    assert own.json()["case"]["state"] == "open"
    assert foreign.status_code == 404
    assert anonymous.status_code == 404


# --- Audit: one event per decision and per case ----------------------------------------------


@pytest.mark.django_db
def test_each_decision_and_case_is_audited_once(ai_client):
    for confidence in (0.95, 0.5, 0.5):
        ai_client.post(URL, invoice(confidence=confidence), format="json")
    ai_client.post(URL, invoice("inv-dup"), format="json")
    ai_client.post(URL, invoice("inv-dup"), format="json")  # a replay audits nothing

    for decision in Decision.objects.all():
        received = AuditEvent.objects.filter(verb="decision.received",
                                             object_id=str(decision.pk))
        assert received.count() == 1
        assert received.get().data["external_id"] == decision.external_id
        assert received.get().actor_label == "ai:invoice-bot"
    for case in Case.objects.all():
        assert AuditEvent.objects.filter(verb="case.opened", case=case).count() == 1
    assert AuditEvent.objects.count() == Decision.objects.count() + Case.objects.count() == 6


# --- The answer's shape -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("confidence", [0.95, 0.5])
def test_fast_representation_matches_the_declared_fields(ai_client, confidence):
    ai_client.post(URL, invoice("inv-1", confidence=confidence, meta={"k": [1, 2]}),
                   format="json")
    decision = Decision.objects.select_related("use_case", "policy_version",
                                               "case__queue").get()
    serializer = DecisionOutSerializer(decision)

    declared = super(DecisionOutSerializer, serializer).to_representation(decision)

    assert serializer.data == declared


@pytest.mark.django_db
def test_a_replay_of_a_single_decision_costs_one_failed_insert_and_no_new_rows(ai_client):
    ai_client.post(URL, invoice("inv-1", confidence=0.5), format="json")
    before = stored()

    again = ai_client.post(URL, invoice("inv-1", confidence=0.5), format="json")
    different = ai_client.post(URL, invoice("inv-1", confidence=0.6), format="json")

    assert (again.status_code, different.status_code) == (200, 422)
    assert stored() == before  # the rolled-back case and events of the first try are gone


@pytest.mark.django_db
def test_a_new_single_decision_is_inserted_without_looking_first(ai_client,
                                                                 django_assert_num_queries):
    ai_client.post(URL, invoice("inv-warm"), format="json")  # compiles the policy

    # The key, then (savepoint) the decision, its event and the quality rollup (release);
    # the use case and its policy come from the catalogue cache. On PostgreSQL: the key,
    # the ids, one statement writing it all (here in a test's transaction, so inside a
    # savepoint; a request, outside any, sends no BEGIN or COMMIT: 3 round trips).
    with django_assert_num_queries(5 if connection.vendor == "postgresql" else 6):
        response = ai_client.post(URL, invoice("inv-1"), format="json")

    assert response.status_code == 201


@pytest.mark.django_db
def test_a_decision_that_opens_a_case_costs_few_statements(ai_client,
                                                            django_assert_num_queries):
    ai_client.post(URL, invoice("inv-warm", confidence=0.5), format="json")

    # The key, then (savepoint) the case, the decision, the events of both in one
    # insert, the quality rollup (release); the queue's SLA terms come from their cache.
    # On PostgreSQL, as many as for a decision that opens none (above).
    with django_assert_num_queries(5 if connection.vendor == "postgresql" else 7):
        response = ai_client.post(URL, invoice("inv-1", confidence=0.5), format="json")

    assert response.json()["route"] == "review"
    case = Case.objects.get(pk=response.json()["case"]["id"])
    assert sorted(AuditEvent.objects.filter(case=case).values_list("verb", flat=True)) == [
        "case.opened", "decision.received"]


# --- The queues' SLA terms are cached: a published policy is seen at once ---------------------


def _review_case(client) -> Case:
    response = client.post(URL, invoice(confidence=0.5), format="json")
    return Case.objects.select_related("sla_policy").get(pk=response.json()["case"]["id"])


@pytest.mark.django_db
def test_a_published_sla_policy_times_the_next_case(ai_client, invoice_policy):
    queue = invoice_policy.use_case.review_queue
    before = _review_case(ai_client)

    publish_sla_policy(queue=queue, calendar=None, warning_fraction=0.5, actor=SYSTEM,
                       now=timezone.now(),
                       targets=[{"min_priority": 0, "response_target": timedelta(minutes=30),
                                 "resolution_target": timedelta(hours=2)}])
    after = _review_case(ai_client)

    assert before.sla_policy is None
    assert (after.sla_policy.version, after.due_at - after.created_at,
            after.warn_at - after.created_at) == (1, timedelta(hours=2), timedelta(hours=1))


@pytest.mark.django_db
def test_an_sla_change_nobody_announces_is_seen_within_the_ttl(ai_client, invoice_policy,
                                                              monkeypatch):
    now = [1000.0]
    # The queue itself comes with the use case, from intake's cache.
    monkeypatch.setattr(intake._catalogue, "clock", lambda: now[0])
    monkeypatch.setattr(cases._current_terms, "clock", lambda: now[0])
    queue = invoice_policy.use_case.review_queue
    _review_case(ai_client)
    Queue.objects.filter(pk=queue.pk).update(resolution_target=timedelta(hours=3))  # no signal

    before_ttl = _review_case(ai_client)
    now[0] += max(cases._current_terms.TTL, intake._catalogue.TTL)
    after_ttl = _review_case(ai_client)

    assert before_ttl.due_at - before_ttl.created_at == queue.resolution_target
    assert after_ttl.due_at - after_ttl.created_at == timedelta(hours=3)


# --- The use case cache: changes are seen at once -------------------------------------------


@pytest.mark.django_db
def test_a_stage_change_is_seen_by_the_next_decision(ai_client, invoice_policy):
    assert ai_client.post(URL, invoice(), format="json").json()["route"] == "auto"
    use_case = invoice_policy.use_case
    use_case.stage = "audit"
    use_case.save()

    assert ai_client.post(URL, invoice(), format="json").json()["route"] == "review"


@pytest.mark.django_db
def test_a_withdrawn_permission_is_seen_by_the_next_decision(ai_client, invoice_policy):
    assert ai_client.post(URL, invoice(), format="json").status_code == 201

    ai_client.ai_system.use_cases.remove(invoice_policy.use_case)

    assert ai_client.post(URL, invoice(), format="json").status_code == 403


@pytest.mark.django_db
def test_a_change_another_process_announces_is_seen_at_once(ai_client, invoice_policy):
    ai_client.post(URL, invoice(), format="json")
    UseCase.objects.filter(pk=invoice_policy.use_case_id).update(stage="audit")  # no signal
    cache.set(intake._catalogue.generation_key, "bumped by another process", None)

    assert ai_client.post(URL, invoice(), format="json").json()["route"] == "review"


@pytest.mark.django_db
def test_a_change_nobody_announces_is_seen_within_the_ttl(ai_client, invoice_policy,
                                                          monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(intake._catalogue, "clock", lambda: now[0])
    ai_client.post(URL, invoice(), format="json")
    UseCase.objects.filter(pk=invoice_policy.use_case_id).update(stage="audit")  # no signal

    before_ttl = ai_client.post(URL, invoice(), format="json").json()["route"]
    now[0] += intake._catalogue.TTL
    after_ttl = ai_client.post(URL, invoice(), format="json").json()["route"]

    assert (before_ttl, after_ttl) == ("auto", "review")


@pytest.mark.django_db
@pytest.mark.parametrize("confidence", [True, False, "0.95", "1", None, [0.9], {"value": 0.9}])
def test_confidence_that_is_not_a_json_number_is_refused_and_nothing_stored(ai_client,
                                                                            confidence):
    response = ai_client.post(URL, invoice("inv-1", confidence=confidence), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["confidence"]
    assert "number" in response.json()["confidence"][0]
    assert stored() == (0, 0, 0)
