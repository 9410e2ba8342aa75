"""tests.factories.case_in_state: every state reached through the real transitions."""

import pytest

from tests.factories import QueueFactory, UserFactory, case_in_state
from workflows.models import AuditEvent, CaseState, Resolution

PATHS = {
    CaseState.OPEN: ["case.opened"],
    CaseState.ASSIGNED: ["case.opened", "case.claimed"],
    CaseState.WAITING: ["case.opened", "case.claimed", "case.info_requested"],
    CaseState.ESCALATED: ["case.opened", "case.claimed", "case.escalated"],
    CaseState.PENDING_APPROVAL: ["case.opened", "case.claimed", "case.submitted_for_approval"],
    CaseState.RESOLVED: ["case.opened", "case.claimed", "case.resolved"],
    CaseState.CANCELLED: ["case.opened", "case.cancelled"],
}


@pytest.mark.django_db
@pytest.mark.parametrize("state", CaseState.values)
def test_a_case_in_any_state_is_built_through_its_audited_transitions(state):
    case = case_in_state(state)

    case.refresh_from_db()
    assert case.state == state
    verbs = list(AuditEvent.objects.filter(case=case).order_by("id")
                 .values_list("verb", flat=True))
    assert verbs == PATHS[state]
    assert Resolution.objects.filter(case=case).exists() == (
        state in (CaseState.PENDING_APPROVAL, CaseState.RESOLVED))


@pytest.mark.django_db
def test_the_given_reviewer_holds_the_case_in_the_given_queue():
    queue, reviewer = QueueFactory(slug="payments"), UserFactory(username="rita")

    case = case_in_state(CaseState.WAITING, queue=queue, assignee=reviewer)

    assert (case.queue, case.assignee) == (queue, reviewer)
    assert queue.members.filter(pk=reviewer.pk).exists()
