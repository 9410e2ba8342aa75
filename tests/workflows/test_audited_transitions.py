"""I7: every arrow of the case state machine writes exactly one audit event, with its verb.

The arrows are read from the model (django-fsm), not listed here: a transition added
without a way to run it below fails ``test_every_transition_of_the_model_is_covered``,
and one whose service forgets its audit event (or writes two) fails its own case.
"""

from datetime import timedelta

import pytest

from tests.factories import QueueFactory, UserFactory, case_in_state, make_manager
from workflows.models import AuditEvent, Case
from workflows.services import claiming, transitions


def _arrows() -> list[tuple[str, str]]:
    return sorted({(t.name, t.source) for t in
                   Case._meta.get_field("state").get_all_transitions(Case)})


def _expire(case, people):
    claiming.expire_leases(now=case.lease_expires_at + timedelta(seconds=1))


# transition -> (its audit verb, how a person or the system runs it)
MOVES = {
    "claim": ("case.claimed",
              lambda case, people: claiming.claim(case_id=case.pk, user=people["colleague"])),
    "reassign": ("case.reassigned",
                 lambda case, people: transitions.reassign(
                     case_id=case.pk, user=people["manager"], to_user=people["colleague"])),
    "escalate": ("case.escalated",
                 lambda case, people: transitions.escalate(
                     case_id=case.pk, user=people["manager"], reason="Needs the owner")),
    "cancel": ("case.cancelled",
               lambda case, people: transitions.cancel(
                   case_id=case.pk, user=people["manager"], reason="Opened by mistake")),
    "withdraw": ("case.withdrawn",
                 lambda case, people: transitions.withdraw(
                     case_id=case.pk, actor_label="ai:invoice-bot", reason="Re-extracted")),
    "expire_lease": ("case.lease_expired", _expire),
    "release": ("case.released",
                lambda case, people: transitions.release(case_id=case.pk,
                                                         user=people["reviewer"])),
    "hand_over": ("case.delegated",
                  lambda case, people: transitions.hand_over(
                      case_id=case.pk, user=people["reviewer"], holder=people["reviewer"],
                      to_user=people["colleague"], reason="On leave")),
    "request_info": ("case.info_requested",
                     lambda case, people: transitions.request_info(
                         case_id=case.pk, user=people["reviewer"], reason="Which PO?")),
    "submit_for_approval": ("case.submitted_for_approval",
                            lambda case, people: transitions.resolve(
                                case_id=case.pk, user=people["reviewer"], verdict="accepted",
                                output=None, reason_code="")),
    "resolve": ("case.resolved",
                lambda case, people: transitions.resolve(
                    case_id=case.pk, user=people["reviewer"], verdict="accepted",
                    output=None, reason_code="")),
    "resume": ("case.resumed",
               lambda case, people: transitions.resume(case_id=case.pk,
                                                       user=people["reviewer"])),
    "send_back": ("case.sent_back",
                  lambda case, people: transitions.send_back(
                      case_id=case.pk, user=people["colleague"], comment="Check the PO")),
    "approve": ("case.approved",
                lambda case, people: transitions.approve(case_id=case.pk,
                                                         user=people["colleague"])),
}


def test_every_transition_of_the_model_is_covered():
    assert {name for name, _ in _arrows()} == set(MOVES)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "source"), _arrows())
def test_each_transition_writes_exactly_one_audit_event(name, source):
    queue = QueueFactory()
    people = {"reviewer": UserFactory(), "colleague": UserFactory(),
              "manager": make_manager()}
    queue.members.add(people["reviewer"], people["colleague"])
    case = case_in_state(source, queue=queue, assignee=people["reviewer"],
                         manager=people["manager"],
                         four_eyes=name == "submit_for_approval" or None)
    before = AuditEvent.objects.filter(case=case).count()
    verb, move = MOVES[name]

    move(case, people)

    added = list(AuditEvent.objects.filter(case=case).order_by("id")[before:]
                 .values_list("verb", flat=True))
    assert added == [verb]
