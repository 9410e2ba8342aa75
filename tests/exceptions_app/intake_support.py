"""What the intake tests build and compare: invoice bodies, API clients for AI systems,
and counts of what intake has stored."""

import itertools
from typing import NamedTuple

from rest_framework.test import APIClient

from exceptions_app.models import Decision
from tests.exceptions_app.factories import issue_key
from workflows.models import AuditEvent, Case

_numbers = itertools.count(1)


def invoice(external_id: str | None = None, *, confidence: float = 0.95,
            amount: float = 4100.0, po_amount: float = 4100.0,
            use_case: str = "invoice-approval", **extra) -> dict:
    """A realistic invoice decision; confident and matching its PO unless told otherwise."""
    return {"use_case": use_case,
            "external_id": external_id or f"inv-2026-{next(_numbers):06d}",
            "model_version": "extractor-3.2.1", "confidence": confidence,
            "input": {"vendor": "ACME GmbH", "po_amount": po_amount, "currency": "EUR"},
            "output": {"action": "approve", "amount": amount}, **extra}


def client_for(system) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(system)}")
    client.ai_system = system
    return client


class Stored(NamedTuple):
    decisions: int
    cases: int
    events: int


def stored() -> Stored:
    """What intake has written so far: compare before and after a request."""
    return Stored(Decision.objects.count(), Case.objects.count(), AuditEvent.objects.count())


def without_guardrails(use_case) -> None:
    """Lift a use case's daily caps and probation, as its owner would (the demo sets them
    on the automated use case): for tests that compare intake's routes with routing's own,
    which guardrails would change by what passed earlier."""
    from django.contrib.auth import get_user_model

    from exceptions_app.services import guardrails

    guardrails.update_guardrails(use_case=use_case,
                                 actor=get_user_model().objects.get(username="manager"),
                                 daily_auto_cap=None, daily_value_cap=None,
                                 probation_decisions=0)
