from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework.test import APIClient

from tests.concurrency import run_concurrently
from tests.factories import case_in_state, make_case
from tests.workflows.matrix_support import TARGET, TRANSITIONS
from workflows.models import AuditEvent, Case, CaseState, Resolution
from workflows.services import claiming, transitions
from workflows.services.errors import CaseConflict

S = CaseState

# -- the matrix: every state x transition x role, through the API ---------------------------

# Who may run what, from where. The member holds the case when it is assigned or
# waiting, and resolved it first when it waits for approval (so may not approve it);
# the peer is in the same queue but holds nothing. (An AI system has no say over cases
# but one, withdrawing its decision: tests/integration/test_ai_system_on_cases.py.)
BOTH, MANAGER = {"member", "manager"}, {"manager"}
QUEUE, SECOND_PAIR = {"member", "peer", "manager"}, {"peer", "manager"}
ALLOWED = {
    (S.OPEN, "claim"): QUEUE, (S.OPEN, "escalate"): MANAGER,
    (S.OPEN, "reassign"): MANAGER, (S.OPEN, "cancel"): MANAGER,
    (S.ASSIGNED, "release"): BOTH, (S.ASSIGNED, "resolve"): BOTH,
    (S.ASSIGNED, "request-info"): BOTH, (S.ASSIGNED, "escalate"): BOTH,
    (S.ASSIGNED, "reassign"): MANAGER, (S.ASSIGNED, "cancel"): MANAGER,
    (S.WAITING, "resume"): BOTH, (S.WAITING, "escalate"): BOTH,
    (S.WAITING, "reassign"): MANAGER, (S.WAITING, "cancel"): MANAGER,
    (S.PENDING_APPROVAL, "approve"): SECOND_PAIR,
    (S.PENDING_APPROVAL, "send-back"): SECOND_PAIR, (S.PENDING_APPROVAL, "cancel"): MANAGER,
    (S.ESCALATED, "claim"): QUEUE, (S.ESCALATED, "escalate"): MANAGER,
    (S.ESCALATED, "reassign"): MANAGER, (S.ESCALATED, "cancel"): MANAGER,
}
# Where the transition exists from the state but this person may not run it: 403.
EXISTS = {key for key in ALLOWED}


def expected_status(state, name, role) -> int:
    if role == "outsider":
        return 404  # I8: not a case they may see
    if role in ALLOWED.get((state, name), set()):
        return 200
    return 403 if (state, name) in EXISTS else 409


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["member", "peer", "manager", "outsider"])
@pytest.mark.parametrize("name", list(TRANSITIONS))
@pytest.mark.parametrize("state", list(S))
def test_transition_matrix(state, name, role, queue, member, second_member, manager,
                           outsider):
    client = APIClient()
    url = f"/api/v1/cases/{{case_id}}/{name}/"
    case = make_case(queue, state=state, assignee=member, first_reviewer=member)
    people = {"member": member, "peer": second_member, "manager": manager,
              "outsider": outsider}
    client.force_authenticate(people[role])
    events_before = AuditEvent.objects.filter(case=case).count()

    response = client.post(url.format(case_id=case.pk), TRANSITIONS[name], format="json")

    expected = expected_status(state, name, role)
    assert response.status_code == expected, response.content
    case.refresh_from_db()
    if expected == 200:
        assert response.json()["state"] == TARGET[name] == case.state
        assert case.version == 2
        assert response.json()["version"] == 2
        assert AuditEvent.objects.filter(case=case).count() == events_before + 1
    else:
        assert case.state == state and case.version == 1  # nothing changed
        assert AuditEvent.objects.filter(case=case).count() == events_before
    if expected == 409:
        assert response.json()["state"] == state


# -- behaviour of the services --------------------------------------------------------------

@pytest.mark.django_db
def test_resolving_stores_the_resolution_and_closes_the_case(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    transitions.resolve(case_id=case.pk, user=member, verdict="rejected", output=None,
                        reason_code="policy", notes="Vendor is blocked")

    case.refresh_from_db()
    assert case.state == S.RESOLVED and case.closed_at is not None
    assert case.lease_expires_at is None and case.first_reviewer == member
    resolution = case.resolution
    assert (resolution.verdict, resolution.reason_code, resolution.notes) == (
        "rejected", "policy", "Vendor is blocked")
    assert resolution.resolved_by == member and resolution.approved_by is None
    assert AuditEvent.objects.get(case=case, verb="case.resolved").data["verdict"] == "rejected"


@pytest.mark.django_db
def test_a_corrected_verdict_needs_the_corrected_output(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=case.pk, user=member, verdict="corrected", output=None,
                            reason_code="wrong-amount")

    assert "output" in refused.value.message_dict
    case.refresh_from_db()
    assert case.state == S.ASSIGNED and not Resolution.objects.filter(case=case).exists()


@pytest.mark.django_db
def test_an_unknown_verdict_is_a_field_error(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    with pytest.raises(ValidationError) as refused:
        transitions.resolve(case_id=case.pk, user=member, verdict="maybe", output=None,
                            reason_code="")

    assert "verdict" in refused.value.message_dict


@pytest.mark.django_db
def test_four_eyes_case_waits_for_a_second_person(queue, member, second_member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member, four_eyes=True)

    transitions.resolve(case_id=case.pk, user=member, verdict="corrected",
                        output={"action": "hold", "amount": 10.0}, reason_code="wrong-amount")
    case.refresh_from_db()
    assert case.state == S.PENDING_APPROVAL and case.assignee is None
    assert case.first_reviewer == member

    with pytest.raises(PermissionDenied):
        transitions.approve(case_id=case.pk, user=member)  # not their own

    transitions.approve(case_id=case.pk, user=second_member)
    case.refresh_from_db()
    assert case.state == S.RESOLVED
    assert case.resolution.approved_by == second_member
    assert case.resolution.resolved_by == member
    assert case.resolution.output == {"action": "hold", "amount": 10.0}


@pytest.mark.django_db
def test_sent_back_case_reopens_for_its_first_reviewer(queue, member, second_member):
    now = timezone.now()
    case = make_case(queue, state=S.ASSIGNED, assignee=member, four_eyes=True)
    transitions.resolve(case_id=case.pk, user=member, verdict="accepted", output=None,
                        reason_code="", now=now)

    transitions.send_back(case_id=case.pk, user=second_member,
                          comment="The amount is off by 80", now=now)

    case.refresh_from_db()
    assert case.state == S.ASSIGNED and case.assignee == member
    assert case.lease_expires_at == now + queue.lease_time
    event = AuditEvent.objects.get(case=case, verb="case.sent_back")
    assert event.data["comment"] == "The amount is off by 80" and event.actor == second_member
    # The first reviewer decides again; the new proposal replaces the old one.
    transitions.resolve(case_id=case.pk, user=member, verdict="corrected",
                        output={"action": "approve", "amount": 4100.0},
                        reason_code="wrong-amount")
    transitions.approve(case_id=case.pk, user=second_member)
    case.refresh_from_db()
    assert case.state == S.RESOLVED and case.resolution.verdict == "corrected"


@pytest.mark.django_db
def test_send_back_needs_a_comment(queue, member, second_member):
    case = case_in_state(S.PENDING_APPROVAL, queue=queue, assignee=member)

    with pytest.raises(ValidationError) as refused:
        transitions.send_back(case_id=case.pk, user=second_member, comment="  ")

    assert "comment" in refused.value.message_dict


@pytest.mark.django_db
def test_a_stale_version_is_refused_and_changes_nothing(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    with pytest.raises(CaseConflict) as refused:
        transitions.release(case_id=case.pk, user=member, expected_version=7)

    assert refused.value.case.version == 1
    case.refresh_from_db()
    assert case.state == S.ASSIGNED and case.version == 1


@pytest.mark.django_db
def test_a_stale_instance_cannot_overwrite_a_newer_write(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)
    stale = Case.objects.get(pk=case.pk)
    transitions.request_info(case_id=case.pk, user=member, reason="Need the PO")

    stale.priority = 99  # a field beside the state: the version guards it
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.save()

    case.refresh_from_db()
    assert case.priority == 50 and case.state == S.WAITING


@pytest.mark.django_db
def test_time_spent_counts_working_stints_only(queue, member):
    start = timezone.now()
    case = make_case(queue)
    claiming.claim(case_id=case.pk, user=member, now=start)
    transitions.request_info(case_id=case.pk, user=member, reason="Need the PO",
                             now=start + timedelta(minutes=3))
    # Two hours waiting for information are not work.
    transitions.resume(case_id=case.pk, user=member, now=start + timedelta(hours=2))
    transitions.resolve(case_id=case.pk, user=member, verdict="accepted", output=None,
                        reason_code="", now=start + timedelta(hours=2, minutes=2))

    case.refresh_from_db()
    assert case.time_spent_seconds == 5 * 60
    assert case.resolution.time_spent_seconds == 5 * 60
    assert case.first_claimed_at == start and case.work_started_at is None


@pytest.mark.django_db
def test_request_info_parks_the_case_with_the_reason(queue, member):
    now = timezone.now()
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    transitions.request_info(case_id=case.pk, user=member, reason="Need the PO scan", now=now)

    case.refresh_from_db()
    assert case.state == S.WAITING and case.waiting_since == now
    assert case.lease_expires_at is None and case.assignee == member
    assert AuditEvent.objects.get(case=case, verb="case.info_requested").data["reason"] == (
        "Need the PO scan")


@pytest.mark.django_db
def test_escalation_raises_the_level_and_frees_the_case(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    transitions.escalate(case_id=case.pk, user=member, reason="Possible fraud")

    case.refresh_from_db()
    assert case.state == S.ESCALATED and case.escalation_level == 1
    assert case.assignee is None


@pytest.mark.django_db
def test_escalation_needs_a_reason(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    with pytest.raises(ValidationError) as refused:
        transitions.escalate(case_id=case.pk, user=member, reason="")

    assert "reason" in refused.value.message_dict


@pytest.mark.django_db
def test_manager_reassigns_to_a_queue_member(queue, member, second_member, manager):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    transitions.reassign(case_id=case.pk, user=manager, to_user=second_member)

    case.refresh_from_db()
    assert case.assignee == second_member and case.state == S.ASSIGNED
    event = AuditEvent.objects.get(case=case, verb="case.reassigned")
    assert (event.data["from_assignee"], event.data["to_assignee"]) == (
        member.pk, second_member.pk)


@pytest.mark.django_db
def test_reassigning_to_someone_outside_the_queue_is_refused(queue, member, manager, outsider):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    with pytest.raises(ValidationError) as refused:
        transitions.reassign(case_id=case.pk, user=manager, to_user=outsider)

    assert "to_user" in refused.value.message_dict


@pytest.mark.django_db
def test_a_member_cannot_cancel(queue, member):
    case = make_case(queue)

    with pytest.raises(PermissionDenied):
        transitions.cancel(case_id=case.pk, user=member, reason="Duplicate")


@pytest.mark.django_db
def test_an_outsider_does_not_find_the_case(queue, member, outsider):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    with pytest.raises(Case.DoesNotExist):
        transitions.release(case_id=case.pk, user=outsider)


@pytest.mark.django_db
def test_a_closed_case_refuses_every_transition(queue, member, manager):
    case = case_in_state(S.CANCELLED, queue=queue, manager=manager)

    with pytest.raises(TransitionNotAllowed, match="cancelled"):
        transitions.escalate(case_id=case.pk, user=manager, reason="Too late")


@pytest.mark.django_db
def test_available_transitions_follow_state_and_role(queue, member, manager):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    assert set(transitions.available_transitions(case=case, user=member)) == {
        "release", "resolve", "request_info", "escalate"}
    assert {"reassign", "cancel"} <= set(
        transitions.available_transitions(case=case, user=manager))


# -- races on PostgreSQL --------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_transitions_on_one_case_give_one_winner_and_409s(queue, member, manager):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    # Each client acts on the version its page showed: without it, release then cancel
    # would both be right, one after the other.
    def call(path, user, body):
        def action():
            client = APIClient()
            client.force_authenticate(user)
            return client.post(f"/api/v1/cases/{case.pk}/{path}/",
                               {**body, "version": case.version}, format="json")
        return action

    responses = run_concurrently(
        call("resolve", member, {"verdict": "accepted"}),
        call("release", member, {}),
        call("request-info", member, {"reason": "Need the PO"}),
        call("escalate", member, {"reason": "Unsure"}),
        call("cancel", manager, {"reason": "Duplicate"}),
        call("resolve", manager, {"verdict": "rejected", "reason_code": "policy"}),
        return_exceptions=True)

    codes = sorted(response.status_code for response in responses)
    assert codes == [200, 409, 409, 409, 409, 409], codes
    winner = next(r for r in responses if r.status_code == 200)
    case.refresh_from_db()
    assert case.state == winner.json()["state"] and case.version == 2
    # Exactly one transition happened, and it was audited once.
    assert AuditEvent.objects.filter(case=case).count() == 1
    for loser in (r for r in responses if r.status_code == 409):
        assert loser.json()["version"] == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_approve_once(queue, member, second_member, manager):
    case = case_in_state(S.PENDING_APPROVAL, queue=queue, assignee=member)

    outcomes = run_concurrently(lambda: transitions.approve(case_id=case.pk, user=second_member),
                                lambda: transitions.approve(case_id=case.pk, user=manager),
                                return_exceptions=True)

    winners = [o for o in outcomes if isinstance(o, Case)]
    losers = [o for o in outcomes if isinstance(o, CaseConflict | TransitionNotAllowed)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert AuditEvent.objects.filter(case=case, verb="case.approved").count() == 1
