"""Fixtures for the intake tests: invoice bodies, more AI systems, a fresh throttle."""

import pytest
from django.core.cache import cache

from tests.exceptions_app.factories import AiSystemFactory
from tests.exceptions_app.intake_support import client_for, invoice


@pytest.fixture
def make_invoice():
    return invoice


@pytest.fixture
def other_client(invoice_policy):
    """A second AI system allowed to post invoices, with its own key."""
    return client_for(AiSystemFactory(slug="other-bot", use_cases=[invoice_policy.use_case]))


@pytest.fixture(autouse=True)
def _fresh_throttle():
    # Throttle budgets live in the cache, which outlives a test's database.
    cache.clear()
    yield
    cache.clear()
