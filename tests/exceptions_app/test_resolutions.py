from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions_app.models import DailyQuality, Decision, LabelledExample
from tests.exceptions_app.factories import (
    INVOICE_OUTPUT_SCHEMA,
    AiSystemFactory,
    UseCaseFactory,
    issue_key,
    make_decision_case,
)
from tests.factories import QueueFactory, UserFactory
from workflows.models import AuditEvent, Case, CaseState, Resolution
from workflows.services import claiming, transitions

S = CaseState



@pytest.fixture
def use_case(db):
    queue = QueueFactory(slug="invoices", name="Invoices")
    return UseCaseFactory(slug="invoices", name="Invoices", review_queue=queue,
                          output_schema=INVOICE_OUTPUT_SCHEMA)


@pytest.fixture
def reviewer(use_case):
    user = UserFactory(username="reviewer")
    use_case.review_queue.members.add(user)
    return user


@pytest.fixture
def approver(use_case):
    user = UserFactory(username="approver")
    use_case.review_queue.members.add(user)
    return user


def work_on(decision, reviewer, *, start):
    claiming.claim(case_id=decision.case_id, user=reviewer, now=start)


# -- what a case shows --------------------------------------------------------------------

@pytest.mark.postgres  # SQLite's claim tries candidates without row locks, read plainly
@pytest.mark.django_db
def test_claim_next_answers_with_the_decision_read_in_the_candidates_statement(
        use_case, reviewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    decision = make_decision_case(use_case, external_id="inv-7")
    client = APIClient()
    client.force_authenticate(reviewer)

    with CaptureQueriesContext(connection) as queries:
        answer = client.post("/api/v1/cases/claim-next/", {}, format="json")

    assert answer.status_code == 200
    assert answer.json()["subject"]["external_id"] == "inv-7"
    assert answer.json()["subject"]["input"] == decision.input
    assert answer.json()["suggestion"]["output"] == decision.output
    assert answer.json()["suggestion"]["policy_version"] == decision.policy_version.number
    assert not [query for query in queries.captured_queries
                if query["sql"].startswith('SELECT "exceptions_app_decision"')]


# -- resolutions become labelled examples ---------------------------------------------------

@pytest.mark.django_db
def test_a_corrected_resolution_becomes_a_labelled_example(use_case, reviewer):
    start = timezone.now()
    decision = make_decision_case(use_case)
    work_on(decision, reviewer, start=start)

    transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="corrected",
                        output={"action": "approve", "amount": 4100.0},
                        reason_code="wrong-amount", notes="PO says 4100",
                        now=start + timedelta(seconds=95))

    example = LabelledExample.objects.get(decision=decision)
    assert example.input == decision.input
    assert example.ai_output == {"action": "approve", "amount": 4180.0}
    assert example.human_output == {"action": "approve", "amount": 4100.0}
    assert (example.verdict, example.reason_code, example.notes) == (
        "corrected", "wrong-amount", "PO says 4100")
    assert example.model_version == "extractor-3.2.1"
    assert example.policy_version == decision.policy_version
    assert example.ai_confidence == 0.62 and example.blind is False
    assert example.reviewer == reviewer and example.approver is None
    assert example.time_spent_seconds == 95
    assert example.decided_at == start + timedelta(seconds=95)


@pytest.mark.django_db
def test_an_accepted_resolution_labels_the_ai_output_as_right(use_case, reviewer):
    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="accepted",
                        output={"ignored": True}, reason_code="")

    example = LabelledExample.objects.get(decision=decision)
    assert example.verdict == "accepted" and example.human_output == decision.output
    assert Resolution.objects.get(case=decision.case_id).output is None


@pytest.mark.django_db
def test_a_rejected_resolution_has_no_human_output(use_case, reviewer):
    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="rejected",
                        output=None, reason_code="policy")

    example = LabelledExample.objects.get(decision=decision)
    assert (example.verdict, example.human_output, example.reason_code) == (
        "rejected", None, "policy")


@pytest.mark.django_db
def test_a_four_eyes_example_is_labelled_only_once_approved(use_case, reviewer, approver):
    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer,
                                  four_eyes=True)
    transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="rejected",
                        output=None, reason_code="policy")
    assert not LabelledExample.objects.exists()

    transitions.approve(case_id=decision.case_id, user=approver)

    example = LabelledExample.objects.get(decision=decision)
    assert example.reviewer == reviewer and example.approver == approver


@pytest.mark.django_db
def test_an_approval_takes_the_next_places_in_the_labels_and_the_feed(
        use_case, reviewer, approver):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    earlier = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)
    transitions.resolve(case_id=earlier.case_id, user=reviewer, verdict="accepted",
                        output=None, reason_code="")
    decision = make_decision_case(use_case, external_id="inv-2", ai_system=earlier.ai_system,
                                  state=S.ASSIGNED, assignee=reviewer, four_eyes=True)
    transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="rejected",
                        output=None, reason_code="policy")

    with CaptureQueriesContext(connection) as queries:
        transitions.approve(case_id=decision.case_id, user=approver)

    reads = [query["sql"] for query in queries.captured_queries
             if query["sql"].startswith("SELECT") and "pg_advisory" not in query["sql"]]
    # The decision once, with the case, its use case, policy version and AI system (its
    # callback URL); each place read and taken in the statement that writes it.
    decision_reads = [sql for sql in reads if '"exceptions_app_decision"' in sql]
    assert len(decision_reads) == 1 and 'FROM "workflows_case"' in decision_reads[0]
    assert not [sql for sql in reads if 'FROM "exceptions_app_aisystem"' in sql]
    assert not [sql for sql in reads if "MAX(" in sql]
    # The example, the feed's place and the rollup written in one statement, where the
    # database can.
    if connection.vendor == "postgresql":
        [together] = [query["sql"] for query in queries.captured_queries
                      if '"exceptions_app_labelledexample"' in query["sql"]]
        assert together.startswith("WITH ")
        assert 'UPDATE "exceptions_app_decision"' in together
        assert 'UPDATE "exceptions_app_dailyquality"' in together
    assert (LabelledExample.objects.get(decision=decision).position
            == LabelledExample.objects.get(decision=earlier).position + 1)
    feed = dict(Decision.objects.filter(pk__in=[earlier.pk, decision.pk])
                .values_list("pk", "feed_position"))
    assert feed[decision.pk] == feed[earlier.pk] + 1



@pytest.mark.django_db
def test_a_decision_stored_before_the_rollups_is_labelled_and_placed_but_counted_nowhere(
        use_case, reviewer):
    # Stored without intake (as before the rollups existed): no row of its day to add to.
    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="accepted",
                        output=None, reason_code="")

    assert LabelledExample.objects.get(decision=decision).position == 1
    assert Decision.objects.get(pk=decision.pk).feed_position == 1
    assert not DailyQuality.objects.exists()

@pytest.fixture
def blind_case(use_case, reviewer):
    """A case of a blind QA queue, claimed by the reviewer; the AI said approve 4180.0."""
    qa = QueueFactory(slug="qa", blind=True)
    qa.members.add(reviewer)
    return make_decision_case(use_case, queue=qa, state=S.ASSIGNED, assignee=reviewer)


@pytest.mark.django_db
def test_a_blind_answer_that_agrees_with_the_ai_is_accepted_without_a_reason(
        blind_case, reviewer):
    # The reviewer typed a whole number where the AI gave 4180.0: the same amount.
    transitions.resolve(case_id=blind_case.case_id, user=reviewer, verdict="corrected",
                        output={"action": "approve", "amount": 4180}, reason_code="")

    resolution = Resolution.objects.get(case=blind_case.case_id)
    assert resolution.verdict == "accepted"
    assert resolution.output == {"action": "approve", "amount": 4180}  # their own answer
    example = LabelledExample.objects.get(decision=blind_case)
    assert (example.verdict, example.blind) == ("accepted", True)
    assert example.human_output == {"action": "approve", "amount": 4180.0}
    event = AuditEvent.objects.get(case=blind_case.case_id, verb="case.resolved")
    assert event.data["verdict"] == "accepted"
    assert event.data["blind_answer"] == {"differing_fields": []}


@pytest.mark.django_db
def test_a_blind_answer_that_differs_is_a_correction_naming_the_fields(blind_case, reviewer):
    transitions.resolve(case_id=blind_case.case_id, user=reviewer, verdict="corrected",
                        output={"action": "approve", "amount": 4100.0}, reason_code="")

    example = LabelledExample.objects.get(decision=blind_case)
    assert (example.verdict, example.blind) == ("corrected", True)
    assert example.ai_output == {"action": "approve", "amount": 4180.0}
    assert example.human_output == {"action": "approve", "amount": 4100.0}
    event = AuditEvent.objects.get(case=blind_case.case_id, verb="case.resolved")
    assert event.data["blind_answer"] == {"differing_fields": ["amount"]}


@pytest.mark.django_db
def test_a_blind_answer_is_still_checked_against_the_output_schema(blind_case, reviewer):
    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=blind_case.case_id, user=reviewer, verdict="corrected",
                            output={"action": "pay", "amount": 4180}, reason_code="")

    assert refused.value.message_dict == {
        "output.action": ["Action: choose one of Approve, Hold, Reject."]}
    assert Case.objects.get(pk=blind_case.case_id).state == S.ASSIGNED


@pytest.mark.django_db
def test_a_blind_reviewer_cannot_accept_what_they_have_not_seen(blind_case, reviewer):
    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=blind_case.case_id, user=reviewer, verdict="accepted",
                            output=None, reason_code="")

    assert "blind review" in refused.value.message_dict["verdict"][0]
    assert not Resolution.objects.filter(case=blind_case.case_id).exists()


@pytest.mark.django_db
def test_a_blind_rejection_still_says_why(blind_case, reviewer):
    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=blind_case.case_id, user=reviewer, verdict="rejected",
                            output=None, reason_code="")
    assert "reason_code" in refused.value.message_dict

    transitions.resolve(case_id=blind_case.case_id, user=reviewer, verdict="rejected",
                        output=None, reason_code="policy")
    assert LabelledExample.objects.get(decision=blind_case).verdict == "rejected"


@pytest.mark.parametrize(("answer", "differing"), [
    ({"action": "approve", "amount": 4180}, []),
    ({"action": " approve ", "amount": 4180.0000000001}, []),
    ({"action": "approve", "amount": 4180.0, "note": None}, []),
    ({"action": "approve", "amount": 4180.0, "note": ""}, []),
    ({"action": "approve", "amount": "4180"}, ["amount"]),
    ({"action": "hold", "amount": 4181}, ["action", "amount"]),
    ({"action": "approve"}, ["amount"]),
    ({"action": "approve", "amount": 4180.0, "note": "late"}, ["note"]),
])
def test_answers_are_compared_as_values_field_by_field(answer, differing):
    assert transitions.differing_fields(suggested={"action": "approve", "amount": 4180.0},
                                        answer=answer) == differing


def test_nested_answers_are_compared_item_by_item():
    suggested = {"lines": [{"sku": "A", "qty": 2}], "paid": False}
    assert transitions.differing_fields(
        suggested=suggested, answer={"lines": [{"sku": "A", "qty": 2.0}], "paid": False}) == []
    assert transitions.differing_fields(
        suggested=suggested, answer={"lines": [{"sku": "A", "qty": 3}], "paid": 0}) == [
        "lines", "paid"]


@pytest.mark.django_db
def test_the_example_and_the_resolution_commit_together(use_case, reviewer):
    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    with (mock.patch("workflows.db.write_together",  # the example, its feed place, the rollup
                     side_effect=IntegrityError("disk full")),
          pytest.raises(IntegrityError)):
        transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="accepted",
                            output=None, reason_code="")

    case = Case.objects.get(pk=decision.case_id)
    assert case.state == S.ASSIGNED and case.version == 1
    assert not Resolution.objects.filter(case=case).exists()
    assert not AuditEvent.objects.filter(case=case).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("output", [
    {"action": "approve", "amount": 4180.0},
    {"action": "approve", "amount": 4180},  # the same number, written as a whole one
])
def test_a_correction_identical_to_the_ai_output_is_refused(use_case, reviewer, output):
    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="corrected",
                            output=output, reason_code="wrong-amount")

    assert refused.value.message_dict["output"] == [
        "Nothing differs from the AI's output: accept it, or change a field."]
    case = Case.objects.get(pk=decision.case_id)
    assert case.state == S.ASSIGNED and case.version == decision.case.version
    assert not Resolution.objects.filter(case=case).exists()
    assert not LabelledExample.objects.exists()


# -- the domain's checks on a resolution ----------------------------------------------------

@pytest.mark.django_db
def test_a_reason_code_is_needed_to_correct_or_reject(use_case, reviewer):
    from django.core.exceptions import ValidationError

    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="rejected",
                            output=None, reason_code="")

    assert refused.value.message_dict["reason_code"] == [
        "Say why with a reason code: choose one of The amount is wrong (wrong-amount), "
        "Against policy (policy)."]


@pytest.mark.django_db
def test_a_corrected_output_must_satisfy_the_output_schema(use_case, reviewer):
    from django.core.exceptions import ValidationError

    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="corrected",
                            output={"action": "pay-twice"}, reason_code="wrong-amount")

    assert refused.value.message_dict == {
        "output.action": ["Action: choose one of Approve, Hold, Reject."],
        "output.amount": ["Amount is required."]}
    assert not LabelledExample.objects.exists()


# -- the AI system withdraws its own decision -----------------------------------------------

def withdraw(client, decision, **body):
    return client.post(f"/api/v1/decisions/{decision.pk}/withdraw/", body, format="json")


@pytest.fixture
def bot(use_case):
    system = AiSystemFactory(slug="invoice-bot", use_cases=[use_case])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(system)}")
    client.ai_system = system
    return client


@pytest.mark.django_db
def test_withdrawing_a_decision_cancels_its_open_case(use_case, reviewer, bot):
    decision = make_decision_case(use_case, ai_system=bot.ai_system, state=S.ASSIGNED,
                                  assignee=reviewer)

    response = withdraw(bot, decision, reason="Duplicate invoice")

    assert response.status_code == 200
    body = response.json()
    assert body["withdrawn_at"] is not None and body["case"]["state"] == "cancelled"
    case = Case.objects.get(pk=decision.case_id)
    assert case.state == S.CANCELLED and case.assignee is None and case.closed_at
    verbs = set(AuditEvent.objects.filter(case=case).values_list("verb", "actor_label"))
    assert verbs >= {("case.withdrawn", "ai:invoice-bot"),
                     ("decision.withdrawn", "ai:invoice-bot")}
    # The decision itself is unchanged but for the marker.
    stored = Decision.objects.get(pk=decision.pk)
    assert stored.output == decision.output and stored.confidence == decision.confidence


@pytest.mark.django_db
def test_withdrawing_twice_answers_the_first_withdrawal(use_case, bot):
    decision = make_decision_case(use_case, ai_system=bot.ai_system)
    first = withdraw(bot, decision).json()

    again = withdraw(bot, decision)

    assert again.status_code == 200 and again.json()["withdrawn_at"] == first["withdrawn_at"]
    assert AuditEvent.objects.filter(verb="decision.withdrawn").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[]", '["Duplicate invoice"]', '"Duplicate invoice"', "null"])
def test_a_withdrawal_whose_body_is_not_an_object_is_refused(use_case, bot, body):
    decision = make_decision_case(use_case, ai_system=bot.ai_system)

    response = bot.post(f"/api/v1/decisions/{decision.pk}/withdraw/", body,
                        content_type="application/json")

    assert response.status_code == 400
    assert "The body must be a JSON object" in response.json()["non_field_errors"][0]
    assert Decision.objects.get(pk=decision.pk).withdrawn_at is None


@pytest.mark.django_db
def test_a_resolved_decision_cannot_be_withdrawn(use_case, reviewer, bot):
    decision = make_decision_case(use_case, ai_system=bot.ai_system, state=S.ASSIGNED,
                                  assignee=reviewer)
    transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="accepted",
                        output=None, reason_code="")

    response = withdraw(bot, decision)

    assert response.status_code == 409
    assert response.json()["state"] == "resolved"
    assert Decision.objects.get(pk=decision.pk).withdrawn_at is None


@pytest.mark.django_db
def test_another_systems_decision_is_not_found(use_case, bot):
    other = AiSystemFactory(slug="other-bot", use_cases=[use_case])
    decision = make_decision_case(use_case, ai_system=other)

    assert withdraw(bot, decision).status_code == 404
    assert Decision.objects.get(pk=decision.pk).withdrawn_at is None


@pytest.mark.django_db
def test_people_cannot_withdraw_decisions(use_case, reviewer):
    decision = make_decision_case(use_case)
    client = APIClient()
    client.force_authenticate(reviewer)

    assert withdraw(client, decision).status_code == 403


@pytest.mark.parametrize(("verdict", "expected"), [
    ("accepted", {"ai": 1}), ("corrected", {"human": 2}), ("rejected", None)])
def test_the_final_output_follows_the_verdict(verdict, expected):
    from types import SimpleNamespace

    from exceptions_app.services.resolutions import final_output

    resolution = SimpleNamespace(verdict=verdict, output={"human": 2})
    assert final_output(resolution, SimpleNamespace(output={"ai": 1})) == expected


@pytest.mark.django_db
def test_a_case_shows_its_decision_as_the_orm_reads_it(use_case, django_assert_num_queries):
    from exceptions_app.services.resolutions import UNUSED_FOR_A_CASE, case_content, content_of

    decision = make_decision_case(use_case)
    case = Case.objects.get(pk=decision.case_id)
    reference = content_of(Decision.objects.select_related("use_case", "policy_version")
                           .defer(*UNUSED_FOR_A_CASE).get(case=case.pk))

    with django_assert_num_queries(1):  # its use case and policy version with it
        content = case_content(case=case)
        case_content(case=case)  # read once per case object

    assert content == reference
    other = make_decision_case(use_case, external_id="inv-2", ai_system=decision.ai_system)
    assert case_content(case=Case.objects.get(pk=other.case_id)).subject["external_id"] == "inv-2"
