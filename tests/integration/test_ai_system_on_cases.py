"""An AI system's row of the transition matrix: its API key has no say over cases but
one, withdrawing its own decision, which cancels the decision's open case."""

import pytest
from rest_framework.test import APIClient

from tests.exceptions_app.factories import UseCaseFactory, issue_key, make_decision_case
from tests.workflows.matrix_support import TARGET, TRANSITIONS
from workflows.models import AuditEvent, CaseState

S = CaseState
WITHDRAWABLE = {S.OPEN, S.ASSIGNED, S.WAITING, S.PENDING_APPROVAL, S.ESCALATED}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(TRANSITIONS))
@pytest.mark.parametrize("state", list(S))
def test_an_ai_system_only_withdraws_its_own_decisions_case(state, name, queue, member):
    decision = make_decision_case(UseCaseFactory(review_queue=queue), state=state,
                                  assignee=member, first_reviewer=member)
    case = decision.case
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(decision.ai_system)}")
    url = (f"/api/v1/decisions/{decision.pk}/withdraw/" if name == "cancel"
           else f"/api/v1/cases/{case.pk}/{name}/")
    events_before = AuditEvent.objects.filter(case=case).count()

    response = client.post(url, TRANSITIONS[name], format="json")

    # Its API key opens no case endpoint; the withdrawal is refused once people closed it.
    expected = (401 if name != "cancel" else 200 if state in WITHDRAWABLE else 409)
    assert response.status_code == expected, response.content
    case.refresh_from_db()
    if expected == 200:
        assert response.json()["case"]["state"] == TARGET[name] == case.state
        assert case.version == 2
        # The case's withdrawal and the decision's.
        events = AuditEvent.objects.filter(case=case)
        assert events.count() == events_before + 2
        assert {"case.withdrawn", "decision.withdrawn"} <= set(
            events.values_list("verb", flat=True))
    else:
        assert case.state == state and case.version == 1  # nothing changed
        assert AuditEvent.objects.filter(case=case).count() == events_before
    if expected == 409:
        assert response.json()["state"] == state
