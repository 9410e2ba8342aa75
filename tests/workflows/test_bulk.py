"""A manager's action on many cases: each case through its own audited transition,
answered for itself; a bad request changes nothing."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tests.factories import QueueFactory, UserFactory, case_in_state
from workflows.models import AuditEvent, Case, CaseState
from workflows.services import bulk
from workflows.verbs import AuditVerb

S = CaseState


@pytest.mark.django_db
def test_a_bulk_reassign_gives_each_case_and_answers_the_closed_one_as_a_conflict(
        queue, member, manager):
    waiting = case_in_state(S.OPEN, queue=queue)
    held = case_in_state(S.ASSIGNED, queue=queue)
    closed = case_in_state(S.RESOLVED, queue=queue)

    results = bulk.apply(user=manager, action="reassign", to_user=member,
                         case_ids=[waiting.pk, held.pk, closed.pk])

    assert [(r.case_id, r.outcome) for r in results] == [
        (waiting.pk, "done"), (held.pk, "done"), (closed.pk, "conflict")]
    assert "resolved" in results[2].detail
    assert set(Case.objects.filter(assignee=member).values_list("pk", flat=True)) == {
        waiting.pk, held.pk}
    assert AuditEvent.objects.filter(verb=AuditVerb.CASE_REASSIGNED, actor=manager).count() == 2
    assert Case.objects.get(pk=closed.pk).state == S.RESOLVED


@pytest.mark.django_db
def test_a_case_of_a_queue_the_person_does_not_work_is_refused_for_itself(
        queue, member, manager):
    mine = case_in_state(S.OPEN, queue=queue)
    elsewhere = case_in_state(S.OPEN, queue=QueueFactory(slug="elsewhere", name="Elsewhere"))

    results = bulk.apply(user=manager, action="reassign", to_user=member,
                         case_ids=[elsewhere.pk, mine.pk, 999_999])

    assert [r.outcome for r in results] == ["refused", "done", "refused"]
    assert "does not work the queue 'Elsewhere'" in results[0].detail
    # Committed together, each in its own savepoint: the refusals undid nothing else.
    assert Case.objects.get(pk=mine.pk).assignee == member
    assert Case.objects.get(pk=elsewhere.pk).assignee is None
    assert results[2].detail == "There is no such case."


@pytest.mark.django_db
def test_release_priority_and_cancel_each_run_their_own_transition(queue, manager):
    held = case_in_state(S.ASSIGNED, queue=queue)
    other = case_in_state(S.OPEN, queue=queue)

    [released] = bulk.apply(user=manager, action="release", case_ids=[held.pk])
    bulk.apply(user=manager, action="priority", priority=90, case_ids=[held.pk, other.pk])
    [cancelled] = bulk.apply(user=manager, action="cancel", reason="Duplicates",
                             case_ids=[other.pk])

    assert released.case.state == S.OPEN and released.case.assignee is None
    assert set(Case.objects.filter(priority=90).values_list("pk", flat=True)) == {
        held.pk, other.pk}
    assert cancelled.case.state == S.CANCELLED
    assert AuditEvent.objects.get(verb=AuditVerb.CASE_CANCELLED).data["reason"] == "Duplicates"


@pytest.mark.django_db
@pytest.mark.parametrize(("arguments", "field"), [
    ({"action": "cancel", "reason": "  "}, "reason"),
    ({"action": "priority", "priority": None}, "priority"),
    ({"action": "reassign", "to_user": None}, "to_user"),
    ({"action": "archive"}, "action"),
])
def test_a_request_missing_what_its_action_needs_changes_no_case(queue, manager, arguments,
                                                                 field):
    case = case_in_state(S.OPEN, queue=queue)

    with pytest.raises(ValidationError) as refused:
        bulk.apply(user=manager, case_ids=[case.pk], **arguments)

    assert field in refused.value.message_dict
    assert Case.objects.get(pk=case.pk).version == case.version


@pytest.mark.django_db
def test_a_selection_over_the_cap_is_refused_with_its_size(manager):
    with pytest.raises(ValidationError) as refused:
        bulk.apply(user=manager, action="release", case_ids=range(1, bulk.MAX_SELECTION + 2))

    assert refused.value.message_dict["cases"] == [
        "Choose at most 500 cases at once; this selection has 501. Narrow the filters, "
        "or act on it in parts."]


@pytest.mark.django_db
def test_only_a_manager_acts_on_several_cases(queue, member):
    case = case_in_state(S.OPEN, queue=queue)

    with pytest.raises(PermissionDenied):
        bulk.apply(user=member, action="reassign", to_user=UserFactory(), case_ids=[case.pk])
