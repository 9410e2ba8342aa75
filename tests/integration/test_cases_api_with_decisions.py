"""The cases API with the domain plugged in: a decision's input and the AI's output on a
case, the use case's reason codes and output schema checked on resolve, an AI system's
key refused, and the domain's withdraw endpoint in the schema."""


import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from exceptions_app.api import withdrawal
from tests.exceptions_app.factories import AiSystemFactory, issue_key, make_decision_case
from tests.factories import QueueFactory, client_for
from tests.workflows.chain import make_chain
from workflows.actors import SYSTEM
from workflows.models import AuditEvent, Case, CaseState, ConsultRequest
from workflows.services import consults, escalation, tokens

S = CaseState
CASES = "/api/v1/cases/"


@pytest.mark.django_db
def test_an_ai_system_key_does_not_open_the_case_api(queue):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(AiSystemFactory())}")

    assert client.get(CASES).status_code == 401


@pytest.mark.django_db
def test_case_detail_shows_input_suggestion_and_what_the_user_may_do(
        invoice_use_case, member):
    decision = make_decision_case(invoice_use_case)

    body = client_for(member).get(f"{CASES}{decision.case_id}/").json()

    assert body["subject"]["input"]["vendor"] == "ACME GmbH"
    assert body["suggestion"]["output"] == {"action": "approve", "amount": 4180.0}
    assert body["suggestion"]["confidence"] == 0.62
    assert body["reason_codes"][0]["code"] == "wrong-amount"
    assert body["output_schema"]["required"] == ["action", "amount"]
    assert body["available_transitions"] == ["claim"]
    assert body["blind"] is False and body["version"] == 1


@pytest.mark.django_db
def test_blind_review_hides_the_ai_output_until_the_case_is_resolved(
        invoice_use_case, member, manager):
    qa = QueueFactory(slug="qa", name="QA", blind=True)
    qa.members.add(member)
    decision = make_decision_case(invoice_use_case, queue=qa)
    client = client_for(member)
    url = f"{CASES}{decision.case_id}/"

    body = client.get(url).json()
    assert body["blind"] is True and body["suggestion"] is None
    assert body["subject"]["input"]["po_amount"] == 4100.0
    claimed = client.post(f"{url}claim/").json()
    assert claimed["suggestion"] is None
    assert client_for(manager).get(url).json()["suggestion"]["confidence"] == 0.62

    resolved = client.post(f"{url}resolve/", {"verdict": "corrected", "reason_code":
                           "wrong-amount", "output": {"action": "approve", "amount": 4100}},
                           format="json").json()

    assert resolved["state"] == "resolved"
    assert resolved["suggestion"]["output"] == {"action": "approve", "amount": 4180.0}


@pytest.mark.django_db
def test_resolve_refuses_a_reason_code_the_use_case_does_not_have(invoice_use_case, member):
    decision = make_decision_case(invoice_use_case, state=S.ASSIGNED, assignee=member)

    response = client_for(member).post(
        f"{CASES}{decision.case_id}/resolve/",
        {"verdict": "rejected", "reason_code": "bad-vibes"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"reason_code": [
        "'bad-vibes' is not a reason code of Invoices: choose one of The amount is "
        "wrong (wrong-amount), Against policy (policy)."]}
    assert Case.objects.get(pk=decision.case_id).state == S.ASSIGNED


@pytest.mark.django_db
def test_resolve_checks_a_corrected_output_against_the_output_schema(invoice_use_case, member):
    decision = make_decision_case(invoice_use_case, state=S.ASSIGNED, assignee=member)

    response = client_for(member).post(
        f"{CASES}{decision.case_id}/resolve/",
        {"verdict": "corrected", "reason_code": "wrong-amount",
         "output": {"action": "approve", "amount": -5}}, format="json")

    assert response.status_code == 400
    assert response.json() == {"output.amount": ["Amount must be 0 or more."]}
    assert not AuditEvent.objects.filter(case=decision.case_id).exists()


@pytest.mark.django_db
def test_resolve_answers_every_bad_field_at_once_keyed_by_its_path(invoice_use_case, member):
    decision = make_decision_case(invoice_use_case, state=S.ASSIGNED, assignee=member)

    response = client_for(member).post(
        f"{CASES}{decision.case_id}/resolve/",
        {"verdict": "corrected", "output": {"action": None, "amount": -12.0}},
        format="json")

    assert response.status_code == 400
    assert response.json() == {
        "output.action": ["Action: choose one of Approve, Hold, Reject."],
        "output.amount": ["Amount must be 0 or more."],
        "reason_code": ["Say why with a reason code: choose one of The amount is wrong "
                        "(wrong-amount), Against policy (policy)."]}
    assert Case.objects.get(pk=decision.case_id).state == S.ASSIGNED


@pytest.mark.django_db
def test_resolve_refuses_a_correction_identical_to_the_ai_output(invoice_use_case, member):
    decision = make_decision_case(invoice_use_case, state=S.ASSIGNED, assignee=member)

    response = client_for(member).post(
        f"{CASES}{decision.case_id}/resolve/",
        {"verdict": "corrected", "reason_code": "wrong-amount",
         "output": {"action": "approve", "amount": 4180}}, format="json")

    assert response.status_code == 400
    assert response.json() == {"output": [
        "Nothing differs from the AI's output: accept it, or change a field."]}
    assert Case.objects.get(pk=decision.case_id).state == S.ASSIGNED
    assert not AuditEvent.objects.filter(case=decision.case_id).exists()


def test_the_domains_withdraw_endpoint_is_documented_beside_the_case_api():
    GENERATOR_STATS.reset()
    patterns = [path("api/v1/", include("workflows.api.urls")),
                path("api/v1/decisions/<int:pk>/withdraw/",
                     withdrawal.DecisionWithdrawView.as_view())]

    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)

    assert "/api/v1/decisions/{id}/withdraw/" in schema["paths"]
    assert "/api/v1/cases/{id}/resolve/" in schema["paths"]
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache),
                                 dict(GENERATOR_STATS._error_cache))


@pytest.mark.django_db
def test_case_detail_lists_its_consults_and_their_answers(invoice_use_case, queue, member):
    chain = make_chain(queue)
    decision = make_decision_case(invoice_use_case, state=S.ASSIGNED, assignee=member)
    escalation.escalate(actor=SYSTEM, case_id=decision.case_id, cause="resolution_breach",
                        expected_level=0)
    url = f"{CASES}{decision.case_id}/"

    asked = client_for(chain.owner).get(url).json()["consults"]

    assert [(c["consultee"], c["required"], c["level"], c["answer"], c["answered_at"])
            for c in asked] == [("legal", True, 1, "", None)]
    assert asked[0]["question"] and asked[0]["created_at"]

    consults.answer_consult(consult_id=asked[0]["id"], user=chain.legal,
                              answer="Fine by us.")
    answered = client_for(chain.owner).get(url).json()["consults"]

    assert [(c["consultee"], c["answer"]) for c in answered] == [("legal", "Fine by us.")]
    assert answered[0]["answered_at"] is not None


@pytest.mark.django_db
def test_case_detail_costs_the_same_queries_for_1_or_4_consults(invoice_use_case, queue,
                                                                 member):
    chain = make_chain(queue)
    decision = make_decision_case(invoice_use_case, state=S.ASSIGNED, assignee=member)
    escalation.escalate(actor=SYSTEM, case_id=decision.case_id, cause="resolution_breach",
                        expected_level=0)
    client = client_for(chain.owner)
    url = f"{CASES}{decision.case_id}/"
    client.get(url)  # warm what a first request caches (content types, permissions)

    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for person in (chain.watcher, chain.director, member):
        ConsultRequest.objects.create(case_id=decision.case_id, consultee=person,
                                      question="Your view?", created_at=timezone.now())
    with CaptureQueriesContext(connection) as four:
        body = client.get(url).json()

    assert len(body["consults"]) == 4
    assert len(four) == len(one)


@pytest.mark.django_db
def test_a_transitions_answer_is_the_case_as_its_get_reads_it(invoice_use_case, queue, member,
                                                             second_member):
    # Built from what the transition read and wrote (the content, the people it names,
    # the consults an escalation asked), not read again: byte for byte what the person
    # gets when they open the case right after.
    make_chain(queue)
    four_eyes = make_decision_case(invoice_use_case, state=S.ASSIGNED, assignee=member,
                                   four_eyes=True)
    escalated = make_decision_case(invoice_use_case, external_id="inv-2",
                                   ai_system=four_eyes.ai_system, state=S.ASSIGNED,
                                   assignee=member)
    first, second = client_for(member), client_for(second_member)
    correction = {"verdict": "corrected", "output": {"action": "hold", "amount": 4100.0},
                  "reason_code": "wrong-amount"}
    steps = [(first, four_eyes, "resolve", correction),
             (second, four_eyes, "send-back", {"comment": "Check the PO"}),
             (first, four_eyes, "resolve", correction),
             (second, four_eyes, "approve", {}),
             (first, escalated, "escalate", {"reason": "Looks off"})]

    for client, decision, action, body in steps:
        answer = client.post(f"{CASES}{decision.case_id}/{action}/", body, format="json")

        assert answer.status_code == 200, (action, answer.content)
        assert answer.content == client.get(f"{CASES}{decision.case_id}/").content, action
    approved = first.get(f"{CASES}{four_eyes.case_id}/").json()
    assert (approved["state"], approved["first_reviewer"]) == ("resolved", "member")
    assert approved["resolution"]["approved_by"] == "second"
    assert first.get(f"{CASES}{escalated.case_id}/").json()["consults"]  # legal was asked


@pytest.mark.postgres  # data-modifying WITH: one statement for what SQLite writes in several
@pytest.mark.django_db
def test_an_approval_with_its_example_place_and_rollup_costs_seven_statements(
        invoice_use_case, member, second_member, django_assert_num_queries):
    decision = make_decision_case(invoice_use_case, state=S.ASSIGNED, assignee=member,
                                  four_eyes=True)
    client_for(member).post(f"{CASES}{decision.case_id}/resolve/", {"verdict": "accepted"},
                            format="json")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + tokens.issue_user_token(
        user=second_member, actor=SYSTEM).key)

    # The token with its person; the case with its content and first reviewer; its update
    # with the audit row and the approval; the places' locks; the labelled example, the
    # feed's place and the rollup; the transaction's two. Nothing after for the answer.
    with django_assert_num_queries(7):
        answer = client.post(f"{CASES}{decision.case_id}/approve/", {}, format="json")

    assert answer.status_code == 200, answer.content
    assert (answer.json()["first_reviewer"], answer.json()["resolution"]["approved_by"]) == (
        "member", "second")
