from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.concurrency import run_concurrently
from tests.factories import UserFactory, make_case
from tests.workflows.chain import make_chain
from workflows.actors import SYSTEM
from workflows.models import (
    Activity,
    AuditEvent,
    Case,
    CaseState,
    Channel,
    ConsultRequest,
    Escalation,
    EscalationOutcome,
    OutboxMessage,
    RaciRole,
    Resolution,
    ReviewerStatus,
)
from workflows.services import consults, escalation, outbox, raci, transitions
from workflows.services.errors import CaseConflict

S = CaseState
BREACH = "resolution_breach"


def _case(chain, member, **fields):
    return make_case(chain.queue, state=S.ASSIGNED, assignee=member, **fields)


def _reload(case) -> Case:
    return Case.objects.select_related("queue", "assignee").get(pk=case.pk)


# -- I2: once per (case, level) -------------------------------------------------------------

@pytest.mark.django_db
def test_escalating_twice_at_the_same_level_writes_one_escalation(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)

    first = escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    again = escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)

    assert first is not None and first.level == 1
    assert again is None
    assert Escalation.objects.filter(case=case).count() == 1
    assert AuditEvent.objects.filter(case=case, verb="case.escalated").count() == 1
    assert _reload(case).escalation_level == 1


@pytest.mark.django_db
def test_a_closed_case_is_not_escalated(queue, member):
    chain = make_chain(queue)
    case = make_case(chain.queue, state=S.RESOLVED, assignee=member)

    assert escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH,
                               expected_level=0) is None
    assert not Escalation.objects.filter(case=case).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("racers", [2, 5])
def test_concurrent_escalations_write_exactly_one(queue, member, racers):
    chain = make_chain(queue)
    case = _case(chain, member)
    outcomes = run_concurrently(
        *[lambda: escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH,
                                      expected_level=0)] * racers)

    assert len([o for o in outcomes if o is not None]) == 1
    assert outcomes.count(None) == racers - 1
    assert Escalation.objects.filter(case=case).count() == 1
    assert AuditEvent.objects.filter(case=case, verb="case.escalated").count() == 1
    # One notice per (escalation, channel, person), whoever raced.
    keys = list(OutboxMessage.objects.filter(case=case).values_list("dedup_key", flat=True))
    assert len(keys) == len(set(keys)) > 0
    assert _reload(case).escalation_level == 1


# -- the chain ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_chain_hands_the_case_from_responsible_to_accountable_to_the_next_level(
        queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.HOLD_FOR_OWNER)
    now = timezone.now()
    case = _case(chain, member, now=now)

    # Level 1: the Accountable owner gets the case, with two hours.
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0, now=now)
    case = _reload(case)
    assert (case.state, case.assignee, case.queue) == (S.ASSIGNED, chain.owner, chain.queue)
    assert case.due_at == now + timedelta(hours=2)
    assert case.sla_next_check_at == case.warn_at == now + timedelta(hours=1, minutes=30)
    assert case.time_spent_seconds > 0  # the member's stint was counted

    # Level 2: re-queued into the escalations queue for the director to claim.
    later = now + timedelta(hours=2, minutes=1)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=1, now=later)
    case = _reload(case)
    assert (case.state, case.assignee, case.queue) == (S.ESCALATED, None, chain.escalations)
    assert case.escalation_level == 2
    assert case.due_at == later + timedelta(hours=4)
    director_notices = OutboxMessage.objects.filter(case=case, channel=Channel.IN_APP,
                                                    recipient=str(chain.director.pk))
    assert director_notices.count() == 1
    # The director does not work the escalations queue yet: the audit event says so.
    event = AuditEvent.objects.filter(case=case, verb="case.escalated").last()
    assert "add them to it" in event.data["note"]

    # Past the last level: its outcome (hold for the owner), and the clock stops.
    last = later + timedelta(hours=4, minutes=1)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=2, now=last)
    case = _reload(case)
    assert (case.state, case.assignee) == (S.ASSIGNED, chain.owner)
    assert case.lease_expires_at is None and case.sla_next_check_at is None
    assert list(Escalation.objects.filter(case=case).values_list("level", flat=True)) == [
        1, 2, 3]
    event = AuditEvent.objects.filter(case=case, verb="case.escalated").last()
    assert event.data["action"] == "held" and event.data["chain_ended"] is True


@pytest.mark.django_db
def test_an_escalation_hand_off_is_not_a_first_response(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.HOLD_FOR_OWNER)
    now = timezone.now()
    case = make_case(chain.queue, now=now)  # open: nobody has taken it
    late = now + timedelta(hours=1)

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause="response_breach", expected_level=0,
                        now=late)

    case = _reload(case)
    assert (case.state, case.assignee) == (S.ASSIGNED, chain.owner)  # handed to the owner
    assert case.first_claimed_at is None  # ... who has not responded yet
    # The owner's own first action is the first response.
    transitions.request_info(case_id=case.pk, user=chain.owner, reason="Which PO?",
                             now=late + timedelta(minutes=7))
    assert _reload(case).first_claimed_at == late + timedelta(minutes=7)


@pytest.mark.django_db
def test_escalating_by_hand_is_the_escalating_persons_response(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.HOLD_FOR_OWNER)
    now = timezone.now()
    case = make_case(chain.queue, state=S.ASSIGNED, assignee=member, now=now)
    Case.objects.filter(pk=case.pk).update(first_claimed_at=None)  # pushed, untouched

    transitions.escalate(case_id=case.pk, user=member, reason="Not mine", now=now)

    assert _reload(case).first_claimed_at == now


@pytest.mark.django_db
def test_a_responsible_level_hands_the_case_to_another_responsible(queue, member,
                                                                   second_member):
    chain = make_chain(queue)
    chain.process.escalation_levels.filter(level=1).update(target="R")
    case = _case(chain, member)

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)

    assert _reload(case).assignee == second_member


@pytest.mark.django_db
def test_a_case_sent_to_a_shared_desk_stays_on_its_chain(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.HOLD_FOR_OWNER)
    chain.escalations.process = None  # a desk several processes escalate into
    chain.escalations.save()
    case = _case(chain, member)

    for level in (0, 1, 2):
        escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=level)

    second = Escalation.objects.get(case=case, level=2)
    assert OutboxMessage.objects.filter(dedup_key__startswith=f"escalation:{second.pk}:",
                                        recipient=str(chain.watcher.pk)).exists()
    case = _reload(case)
    assert (case.state, case.assignee) == (S.ASSIGNED, chain.owner)  # the chain's outcome


@pytest.mark.django_db
def test_an_away_owner_is_replaced_by_their_delegate(queue, member):
    chain = make_chain(queue)
    stand_in = UserFactory(username="stand-in")
    ReviewerStatus.objects.create(user=chain.owner, available=False, delegate=stand_in)
    case = _case(chain, member)

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)

    assert _reload(case).assignee == stand_in


@pytest.mark.django_db
def test_a_missed_deadline_is_kept_on_the_escalation(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)

    row = escalation.escalate(actor=SYSTEM, case_id=case.pk, cause="response_breach",
                              expected_level=0)

    assert row.due_at == case.response_due_at and row.cause == "response_breach"


# -- the Informed and the Consulted ---------------------------------------------------------

@pytest.mark.django_db
def test_the_informed_hear_exactly_once_per_channel(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)

    row = escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    # A re-run sweep.
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)

    # The watcher is Informed twice over (by name and through a group): told once.
    to_watcher = OutboxMessage.objects.filter(
        dedup_key__startswith=f"escalation:{row.pk}:").filter(
        recipient__in=[str(chain.watcher.pk), chain.watcher.email])
    assert sorted(to_watcher.values_list("channel", flat=True)) == [Channel.EMAIL,
                                                                    Channel.IN_APP]
    event = AuditEvent.objects.get(case=case, verb="case.escalated")
    assert event.data["informed"] == [chain.watcher.pk]
    # Every notice of the escalation is unique per (channel, person).
    rows = OutboxMessage.objects.filter(case=case).values_list("channel", "recipient")
    assert len(rows) == len(set(rows))


@pytest.mark.django_db
def test_a_level_that_does_not_notify_tells_only_the_target(queue, member):
    chain = make_chain(queue)
    chain.process.escalation_levels.filter(level=1).update(notify_informed=False,
                                                           consult=False)
    case = _case(chain, member)

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)

    recipients = set(OutboxMessage.objects.filter(case=case, channel=Channel.IN_APP)
                     .values_list("recipient", flat=True))
    assert recipients == {str(chain.owner.pk)}


@pytest.mark.django_db
def test_the_consulted_are_asked_and_a_required_answer_comes_before_resolving(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    consult = ConsultRequest.objects.get(case=case)
    assert (consult.consultee, consult.required) == (chain.legal, True)
    assert OutboxMessage.objects.filter(case=case, recipient=str(chain.legal.pk)).count() == 1

    with pytest.raises(consults.ConsultsUnanswered, match="legal must answer"):
        transitions.resolve(case_id=case.pk, user=chain.owner, verdict="accepted",
                            output=None, reason_code="")
    assert _reload(case).state == S.ASSIGNED
    assert not Resolution.objects.filter(case=case).exists()

    consults.answer_consult(consult_id=consult.pk, user=chain.legal,
                              answer="Fine by legal.")
    transitions.resolve(case_id=case.pk, user=chain.owner, verdict="accepted", output=None,
                        reason_code="")

    assert _reload(case).state == S.RESOLVED
    assert AuditEvent.objects.filter(case=case, verb="case.consult_answered").count() == 1
    # The holder hears that the answer came.
    assert OutboxMessage.objects.filter(dedup_key__startswith=f"consult:{consult.pk}:",
                                        recipient=str(chain.owner.pk)).exists()


@pytest.mark.django_db
def test_the_consult_question_names_the_case_and_why_in_one_sentence(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0,
                        reason="The vendor disputes the amount.")

    question = ConsultRequest.objects.get(case=case).question
    assert question == (f"{case.title} was escalated to level 1: "
                        "The vendor disputes the amount. What is your view?")


@pytest.mark.django_db
def test_an_optional_consult_does_not_block_resolving(queue, member):
    chain = make_chain(queue, consult_required=False)
    case = _case(chain, member)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)

    transitions.resolve(case_id=case.pk, user=chain.owner, verdict="accepted", output=None,
                        reason_code="")

    assert _reload(case).state == S.RESOLVED


@pytest.mark.django_db
def test_only_the_consulted_answer_and_only_once(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    consult = ConsultRequest.objects.get(case=case)

    with pytest.raises(ConsultRequest.DoesNotExist):
        consults.answer_consult(consult_id=consult.pk, user=chain.owner, answer="Me?")
    with pytest.raises(ValidationError):
        consults.answer_consult(consult_id=consult.pk, user=chain.legal, answer="  ")
    consults.answer_consult(consult_id=consult.pk, user=chain.legal, answer="Yes.")
    with pytest.raises(CaseConflict, match="already answered"):
        consults.answer_consult(consult_id=consult.pk, user=chain.legal, answer="No.")

    consult.refresh_from_db()
    assert consult.answer == "Yes." and consult.answered_at is not None


@pytest.mark.django_db
def test_the_consult_answer_endpoint(queue, member, outsider):
    chain = make_chain(queue)
    case = _case(chain, member)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    consult = ConsultRequest.objects.get(case=case)
    url = f"/api/v1/cases/{case.pk}/consults/{consult.pk}/answer/"
    client = APIClient()

    for someone_else in (member, outsider, chain.owner):
        client.force_authenticate(someone_else)
        assert client.post(url, {"answer": "x"}, format="json").status_code == 404
    client.force_authenticate(chain.legal)
    assert client.post(url, {"answer": ""}, format="json").status_code == 400
    answered = client.post(url, {"answer": "Legal agrees."}, format="json")
    assert answered.status_code == 200, answered.content
    assert answered.json()["answer"] == "Legal agrees."
    assert client.post(url, {"answer": "Again"}, format="json").status_code == 409
    wrong_case = f"/api/v1/cases/{case.pk + 1}/consults/{consult.pk}/answer/"
    assert client.post(wrong_case, {"answer": "x"}, format="json").status_code == 404


# -- the end of the chain -------------------------------------------------------------------

def _to_the_end(chain, case):
    for level in (0, 1, 2):
        escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=level)
    return _reload(case)


@pytest.mark.django_db
def test_the_last_level_can_reject_on_behalf_of_the_owner(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.REJECT, consult_required=False)
    case = _to_the_end(chain, _case(chain, member))

    assert case.state == S.RESOLVED and case.closed_at is not None
    assert case.sla_next_check_at is None
    resolution = case.resolution
    assert (resolution.verdict, resolution.reason_code, resolution.resolved_by) == (
        "rejected", escalation.CHAIN_EXHAUSTED, chain.owner)
    assert "No person decided" in resolution.notes
    resolved = AuditEvent.objects.get(case=case, verb="case.resolved")
    assert resolved.actor is None and resolved.data["on_behalf_of"] == chain.owner.pk


@pytest.mark.django_db
def test_the_fallback_outcome_lets_the_ai_output_stand(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.FALLBACK, consult_required=False)
    case = _to_the_end(chain, _case(chain, member))

    assert case.state == S.RESOLVED and case.resolution.verdict == "accepted"


@pytest.mark.django_db
def test_an_unanswered_required_consult_turns_a_reject_into_a_hold(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.REJECT, consult_required=True)
    case = _to_the_end(chain, _case(chain, member))

    assert (case.state, case.assignee) == (S.ASSIGNED, chain.owner)
    event = AuditEvent.objects.filter(case=case, verb="case.escalated").last()
    assert event.data["action"] == "held" and "consult" in event.data["note"]


@pytest.mark.django_db
def test_a_four_eyes_case_is_held_rather_than_rejected(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.REJECT, consult_required=False)
    case = _to_the_end(chain, _case(chain, member, requires_four_eyes=True))

    assert (case.state, case.assignee) == (S.ASSIGNED, chain.owner)


@pytest.mark.django_db
def test_a_last_level_that_waits_leaves_the_case_and_tells_the_owner(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.NONE)
    case = _to_the_end(chain, _case(chain, member))

    assert (case.state, case.queue, case.sla_next_check_at) == (
        S.ESCALATED, chain.escalations, None)
    last = Escalation.objects.get(case=case, level=3)
    assert OutboxMessage.objects.filter(dedup_key__startswith=f"escalation:{last.pk}:",
                                        recipient=str(chain.owner.pk)).exists()


# -- no chain, pending approval, by hand ----------------------------------------------------

@pytest.mark.django_db
def test_without_a_chain_the_managers_hear_and_the_audit_says_so(queue, member, manager):
    now = timezone.now()
    case = make_case(queue, state=S.ASSIGNED, assignee=member, now=now)

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0, now=now)

    case = _reload(case)
    assert (case.state, case.assignee, case.queue) == (S.ESCALATED, None, queue)
    # Raised again if still nobody acts: the clock restarts with the queue's target.
    assert case.due_at == now + queue.resolution_target and case.sla_next_check_at
    event = AuditEvent.objects.get(case=case, verb="case.escalated")
    assert "no process" in event.data["note"]
    assert OutboxMessage.objects.filter(case=case, recipient=str(manager.pk)).count() == 1


@pytest.mark.django_db
def test_a_case_pending_approval_keeps_its_resolution(queue, member):
    chain = make_chain(queue)
    case = make_case(chain.queue, state=S.PENDING_APPROVAL, first_reviewer=member,
                     four_eyes=True)

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)

    case = _reload(case)
    assert case.state == S.PENDING_APPROVAL and case.escalation_level == 1
    assert OutboxMessage.objects.filter(case=case, recipient=str(chain.owner.pk)).exists()


@pytest.mark.django_db
def test_escalating_by_hand_follows_the_chain(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)

    transitions.escalate(case_id=case.pk, user=member, reason="Vendor disputes the PO")

    case = _reload(case)
    assert (case.state, case.assignee, case.escalation_level) == (
        S.ASSIGNED, chain.owner, 1)
    assert case.version == 2  # one change, one version
    row = Escalation.objects.get(case=case)
    assert (row.cause, row.actor, row.reason) == ("manual", member,
                                                  "Vendor disputes the PO")
    event = AuditEvent.objects.get(case=case, verb="case.escalated")
    assert event.actor == member and event.data["reason"] == "Vendor disputes the PO"
    # The person who escalated is not told about their own action.
    assert not OutboxMessage.objects.filter(case=case, recipient=str(member.pk)).exists()


@pytest.mark.django_db
def test_escalating_by_hand_answers_the_case_as_the_escalation_left_it(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)

    answered = transitions.escalate(case_id=case.pk, user=member, reason="Unsure")

    stored = transitions.with_answer_facts(Case.objects).get(pk=case.pk)
    assert {field.attname: getattr(answered, field.attname)
            for field in Case._meta.concrete_fields} == {
        field.attname: getattr(stored, field.attname) for field in Case._meta.concrete_fields}
    assert answered.has_consults is stored.has_consults is True  # level 1 asks legal
    assert Case.resolution.is_cached(answered) and not hasattr(answered, "resolution")
    assert answered.assignee == chain.owner


@pytest.mark.django_db
def test_a_matrix_changed_between_two_escalations_counts_for_the_second(queue, member):
    chain = make_chain(queue)
    raci.set_assignments(process=chain.process, activity=Activity.ESCALATION,
                         role=RaciRole.ACCOUNTABLE, users=[], actor=SYSTEM)
    first, second = _case(chain, member), _case(chain, member)
    transitions.escalate(case_id=first.pk, user=member, reason="Unsure")
    assert _reload(first).assignee is None  # nobody accountable: it waits, escalated

    # The cell was empty: nothing is deleted, the new row is bulk-created (no signal).
    raci.set_assignments(process=chain.process, activity=Activity.ESCALATION,
                         role=RaciRole.ACCOUNTABLE, users=[chain.owner], actor=SYSTEM)
    transitions.escalate(case_id=second.pk, user=member, reason="Unsure")

    assert _reload(second).assignee == chain.owner


@pytest.mark.django_db
def test_a_deactivated_accountable_is_not_given_the_next_escalation(queue, member):
    chain = make_chain(queue)
    deputy = UserFactory(username="deputy")
    raci.set_assignments(process=chain.process, activity=Activity.ESCALATION,
                         role=RaciRole.ACCOUNTABLE, users=[chain.owner, deputy],
                         actor=SYSTEM)
    first, second = _case(chain, member), _case(chain, member)
    transitions.escalate(case_id=first.pk, user=member, reason="Unsure")
    assert _reload(first).assignee == deputy  # as loaded as the owner, and first by name

    deputy.is_active = False
    deputy.save()
    transitions.escalate(case_id=second.pk, user=member, reason="Unsure")

    assert _reload(second).assignee == chain.owner


@pytest.mark.django_db
def test_escalating_by_hand_from_a_stale_page_is_a_conflict(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)

    with pytest.raises(CaseConflict):
        transitions.escalate(case_id=case.pk, user=member, reason="Unsure",
                             expected_version=case.version + 1)

    assert not Escalation.objects.filter(case=case).exists()


@pytest.mark.django_db
def test_the_consulted_answer_on_their_consults_page(client, queue, member):
    chain = make_chain(queue)
    case = _case(chain, member)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    consult = ConsultRequest.objects.get(case=case)
    client.force_login(chain.legal)

    page = client.get(reverse("my-consults"))
    assert page.status_code == 200 and consult.question.encode() in page.content
    client.post(reverse("consult-answer-page", args=[consult.pk]), {"answer": "Agreed."})

    consult.refresh_from_db()
    assert consult.answer == "Agreed."
    client.force_login(member)
    refused = client.post(reverse("consult-answer-page", args=[consult.pk]), {"answer": "x"})
    assert refused.status_code == 404


@pytest.mark.django_db
def test_notices_name_the_case_and_people_as_pages_do_and_emails_link_to_the_case(
        queue, member, settings, nudges):
    settings.SITE_BASE_URL = "https://backstop.example.com"
    settings.DEFAULT_FROM_EMAIL = "Backstop <backstop@example.com>"
    chain = make_chain(queue)
    chain.owner.first_name, chain.owner.last_name = "Olga", "Owner"
    chain.owner.save()
    case = _case(chain, member, title="Invoice approval: inv-2026-000123")

    row = escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)

    to_watcher = OutboxMessage.objects.filter(dedup_key__startswith=f"escalation:{row.pk}:")
    in_app = to_watcher.get(channel=Channel.IN_APP, recipient=str(chain.watcher.pk))
    assert in_app.payload["text"].startswith(
        "Invoice approval: inv-2026-000123 escalated to level 1 (resolution overdue): "
        "assigned to Olga Owner.")
    e_mail = to_watcher.get(channel=Channel.EMAIL, recipient=chain.watcher.email)
    assert outbox.deliver(message_id=e_mail.pk) is True
    [sent] = mail.outbox
    assert sent.from_email == "Backstop <backstop@example.com>"
    assert sent.subject == in_app.subject
    assert sent.body.startswith(f"Hello {chain.watcher.display_name},\n\n"
                                "Invoice approval: inv-2026-000123 escalated to level 1")
    assert (f"Open Invoice approval: inv-2026-000123: "
            f"https://backstop.example.com/cases/{case.pk}/") in sent.body


@pytest.mark.django_db
def test_a_consult_answer_tells_the_holder_by_display_name_and_case_label(queue, member):
    chain = make_chain(queue)
    case = _case(chain, member, title="Invoice approval: inv-2026-000123")
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    chain.legal.first_name, chain.legal.last_name = "Lea", "Legal"
    chain.legal.save()
    # The case went up to the owner; the consult's answer goes to whoever holds it.
    holder = _reload(case).assignee
    consult = ConsultRequest.objects.get(case=case, consultee=chain.legal)

    consults.answer_consult(consult_id=consult.pk, user=chain.legal, answer="Pay it.")

    told = OutboxMessage.objects.get(dedup_key=f"consult:{consult.pk}:answered:in_app:"
                                               f"{holder.pk}")
    assert told.payload["text"] == ("Lea Legal answered the consult on Invoice approval: "
                                    "inv-2026-000123.")
