"""The places a resolution takes under real concurrency, on PostgreSQL: its labelled
example's and its decision's in the AI system's feed, each once, without a gap, however
many people resolve and approve at the same moment."""

import pytest

from exceptions_app.models import Decision, LabelledExample
from tests.concurrency import run_concurrently
from tests.exceptions_app.factories import INVOICE_OUTPUT_SCHEMA, UseCaseFactory, make_decision_case
from tests.factories import QueueFactory, UserFactory
from workflows.models import CaseState
from workflows.services import transitions

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_resolutions_and_approvals_at_once_take_every_place_once():
    queue = QueueFactory(slug="invoices", name="Invoices")
    use_case = UseCaseFactory(slug="invoices", name="Invoices", review_queue=queue,
                              output_schema=INVOICE_OUTPUT_SCHEMA)
    reviewer, approver = UserFactory(username="reviewer"), UserFactory(username="approver")
    queue.members.add(reviewer, approver)
    first = make_decision_case(use_case, state=CaseState.ASSIGNED, assignee=reviewer)
    decisions = [first] + [
        make_decision_case(use_case, external_id=f"inv-{n}", ai_system=first.ai_system,
                           state=CaseState.ASSIGNED, assignee=reviewer, four_eyes=n % 2 == 0)
        for n in range(2, 11)]
    for decision in decisions:
        if decision.case.requires_four_eyes:
            transitions.resolve(case_id=decision.case_id, user=reviewer, verdict="accepted",
                                output=None, reason_code="")

    def finish(decision):
        if decision.case.requires_four_eyes:
            return lambda: transitions.approve(case_id=decision.case_id, user=approver)
        return lambda: transitions.resolve(case_id=decision.case_id, user=reviewer,
                                           verdict="accepted", output=None, reason_code="")

    run_concurrently(*[finish(decision) for decision in decisions])

    count = len(decisions)
    assert sorted(LabelledExample.objects.values_list("position", flat=True)) == list(
        range(1, count + 1))
    assert sorted(Decision.objects.values_list("feed_position", flat=True)) == list(
        range(1, count + 1))
