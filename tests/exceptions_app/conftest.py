"""Fixtures for the intake tests: invoice bodies, more AI systems, what is stored."""

import itertools
from typing import NamedTuple

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from exceptions_app.models import Decision
from tests.factories import AiSystemFactory, issue_key
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


@pytest.fixture
def make_invoice():
    return invoice


def client_for(system) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(system)}")
    client.ai_system = system
    return client


@pytest.fixture
def other_client(invoice_policy):
    """A second AI system allowed to post invoices, with its own key."""
    return client_for(AiSystemFactory(slug="other-bot", use_cases=[invoice_policy.use_case]))


class Stored(NamedTuple):
    decisions: int
    cases: int
    events: int


def stored() -> Stored:
    """What intake has written so far: compare before and after a request."""
    return Stored(Decision.objects.count(), Case.objects.count(), AuditEvent.objects.count())


@pytest.fixture(autouse=True)
def _fresh_throttle():
    # Throttle budgets live in the cache, which outlives a test's database.
    cache.clear()
    yield
    cache.clear()
