from datetime import timedelta
from unittest import mock

import pytest
from django.db import IntegrityError
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions_app.models import Decision, LabelledExample
from tests.factories import AiSystemFactory, QueueFactory, UseCaseFactory, UserFactory, issue_key
from tests.workflows.conftest import INVOICE_OUTPUT_SCHEMA, make_decision_case
from workflows.models import AuditEvent, Case, CaseState, Resolution
from workflows.services import claiming, transitions

S = CaseState


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
def test_a_blind_review_is_labelled_blind(use_case, reviewer):
    qa = QueueFactory(slug="qa", blind=True)
    qa.members.add(reviewer)
    decision = make_decision_case(use_case, queue=qa, state=S.ASSIGNED, assignee=reviewer)

    transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="accepted",
                        output=None, reason_code="")

    assert LabelledExample.objects.get(decision=decision).blind is True


@pytest.mark.django_db
def test_the_example_and_the_resolution_commit_together(use_case, reviewer):
    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    with (mock.patch.object(LabelledExample.objects, "create",
                            side_effect=IntegrityError("disk full")),
          pytest.raises(IntegrityError)):
        transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="accepted",
                            output=None, reason_code="")

    case = Case.objects.get(pk=decision.case_id)
    assert case.state == S.ASSIGNED and case.version == 1
    assert not Resolution.objects.filter(case=case).exists()
    assert not AuditEvent.objects.filter(case=case).exists()


# -- the domain's checks on a resolution ----------------------------------------------------

@pytest.mark.django_db
def test_a_reason_code_is_needed_to_correct_or_reject(use_case, reviewer):
    from django.core.exceptions import ValidationError

    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="rejected",
                            output=None, reason_code="")

    assert "wrong-amount, policy" in refused.value.message_dict["reason_code"][0]


@pytest.mark.django_db
def test_a_corrected_output_must_satisfy_the_output_schema(use_case, reviewer):
    from django.core.exceptions import ValidationError

    decision = make_decision_case(use_case, state=S.ASSIGNED, assignee=reviewer)

    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="corrected",
                            output={"action": "pay-twice"}, reason_code="wrong-amount")

    problems = refused.value.message_dict["output"]
    assert "'amount' is a required property" in problems
    assert any(problem.startswith("action:") for problem in problems)
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
