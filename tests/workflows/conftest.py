"""People and cases for the case-lifecycle tests.

Three people, as every access test has them: a ``member`` of the queue, a
``manager`` (``workflows.manage_cases``) and an ``outsider`` who works another queue.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from exceptions_app.models import Decision, Route
from tests.factories import (
    AiSystemFactory,
    CaseFactory,
    PolicyVersionFactory,
    QueueFactory,
    UseCaseFactory,
    UserFactory,
    make_manager,
)
from workflows.models import CaseState, Resolution

INVOICE_OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["action", "amount"],
    "properties": {"action": {"enum": ["approve", "hold", "reject"]},
                   "amount": {"type": "number", "minimum": 0}},
}


@pytest.fixture
def queue(db):
    return QueueFactory(slug="invoices", name="Invoices", lease_seconds=600)


@pytest.fixture
def member(queue):
    user = UserFactory(username="member")
    queue.members.add(user)
    return user


@pytest.fixture
def second_member(queue):
    user = UserFactory(username="second")
    queue.members.add(user)
    return user


@pytest.fixture
def manager(db):
    return make_manager(username="manager")


@pytest.fixture
def outsider(db):
    user = UserFactory(username="outsider")
    QueueFactory(slug="elsewhere", name="Elsewhere").members.add(user)
    return user


def make_case(queue, *, state=CaseState.OPEN, assignee=None, first_reviewer=None,
              four_eyes=False, priority=50, now=None, **fields):
    """A case put straight into ``state``, with the fields that state implies."""
    now = now or timezone.now()
    values = {"queue": queue, "priority": priority, "requires_four_eyes": four_eyes,
              "created_at": now - timedelta(minutes=5), **fields}
    if state in (CaseState.ASSIGNED, CaseState.WAITING):
        values.update(assignee=assignee, first_claimed_at=now - timedelta(minutes=4))
    if state == CaseState.ASSIGNED:
        values.update(lease_expires_at=now + queue.lease_time,
                      work_started_at=now - timedelta(minutes=4))
    if state == CaseState.WAITING:
        values.update(waiting_since=now - timedelta(minutes=1))
    if state == CaseState.ESCALATED:
        values.update(escalation_level=1)
    if state in (CaseState.PENDING_APPROVAL, CaseState.RESOLVED):
        values.update(first_reviewer=first_reviewer or assignee)
    if state in (CaseState.RESOLVED, CaseState.CANCELLED):
        values.update(closed_at=now - timedelta(minutes=1))
    if state == CaseState.RESOLVED:
        values.update(assignee=assignee)
    case = CaseFactory(state=state, **values)
    if state in (CaseState.PENDING_APPROVAL, CaseState.RESOLVED):
        Resolution.objects.create(case=case, verdict="accepted",
                                  resolved_by=values["first_reviewer"], created_at=now)
    return case


@pytest.fixture
def invoice_use_case(queue):
    """A use case whose review queue is ``queue``, with reason codes and an output schema."""
    return UseCaseFactory(slug="invoices", name="Invoices", review_queue=queue,
                          output_schema=INVOICE_OUTPUT_SCHEMA)


def make_decision_case(use_case, *, queue=None, external_id="inv-1", confidence=0.62,
                       four_eyes=False, ai_system=None, **case_fields):
    """A decision routed to review, with its open case (as intake leaves them)."""
    policy = use_case.policies.filter(status="active").first() or PolicyVersionFactory(
        use_case=use_case)
    ai_system = ai_system or AiSystemFactory(slug="invoice-bot", use_cases=[use_case])
    case = make_case(queue or use_case.review_queue, four_eyes=four_eyes,
                     title=f"Invoices: {external_id}", **case_fields)
    decision = Decision.objects.create(
        ai_system=ai_system, use_case=use_case, external_id=external_id,
        body_hash="0" * 64, model_version="extractor-3.2.1", confidence=confidence,
        input={"vendor": "ACME GmbH", "po_amount": 4100.0, "currency": "EUR"},
        output={"action": "approve", "amount": 4180.0},
        explanation="Read the total from the last page.", received_at=timezone.now(),
        policy_version=policy, stage=use_case.stage, route=Route.REVIEW,
        reasons=[{"rule": "low-confidence", "action": "review",
                  "text": "Confidence under 0.9: a person checks the extraction"}],
        case=case)
    return decision


def client_for(user) -> APIClient:
    """An API client signed in as ``user``."""
    client = APIClient()
    client.force_authenticate(user)
    return client
