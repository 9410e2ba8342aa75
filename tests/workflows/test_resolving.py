"""One resolution writer (``workflows/services/resolving.py``): a person resolving and
the escalation chain's last level resolving on the owner's behalf store the same
resolution and audit the same verb with the same data."""

import pytest

from tests.factories import make_case
from tests.workflows.chain import make_chain
from workflows.actors import SYSTEM
from workflows.models import AuditEvent, CaseState, EscalationOutcome, Resolution
from workflows.services import escalation, transitions

BREACH = "resolution_breach"


def resolved_event(case) -> AuditEvent:
    return AuditEvent.objects.get(case=case, verb="case.resolved")


@pytest.mark.django_db
def test_a_person_and_the_chain_write_the_same_resolution_and_audit_shape(queue, member):
    chain = make_chain(queue, outcome=EscalationOutcome.REJECT, consult_required=False)
    by_person = make_case(queue, state=CaseState.ASSIGNED, assignee=member)
    by_chain = make_case(queue, state=CaseState.ASSIGNED, assignee=member)

    transitions.resolve(case_id=by_person.pk, user=member, verdict="rejected", output=None,
                        reason_code="policy", notes="Against policy.")
    for level in (0, 1, 2):
        escalation.escalate(actor=SYSTEM, case_id=by_chain.pk, cause=BREACH,
                            expected_level=level)

    person_event, chain_event = resolved_event(by_person), resolved_event(by_chain)
    shared = {"from", "to", "version", "verdict", "output", "reason_code", "notes",
              "resolved_by", "time_spent_seconds"}
    assert set(person_event.data) == shared
    assert set(chain_event.data) == shared | {"on_behalf_of", "escalation"}
    assert (person_event.data["resolved_by"], person_event.actor) == (member.pk, member)
    assert (chain_event.data["resolved_by"], chain_event.actor_label) == (chain.owner.pk,
                                                                          "system")
    assert chain_event.actor is None
    for case, who in ((by_person, member), (by_chain, chain.owner)):
        resolution = Resolution.objects.get(case=case)
        event = resolved_event(case)
        assert (resolution.verdict, resolution.reason_code, resolution.notes,
                resolution.resolved_by) == (event.data["verdict"], event.data["reason_code"],
                                            event.data["notes"], who)
        assert resolution.time_spent_seconds == event.data["time_spent_seconds"]
