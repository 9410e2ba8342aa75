"""The engine with the domain plugged in: what ``tests/workflows`` cannot show alone
(an AI system's key, a decision's content on a case, the resolution webhook, the intake
metrics)."""

import pytest

from tests.exceptions_app.factories import INVOICE_OUTPUT_SCHEMA, UseCaseFactory
from tests.workflows.people_support import (  # noqa: F401 (fixtures)
    manager,
    member,
    outsider,
    queue,
    second_member,
)
from tests.workflows.webhook_support import nudges, receiver  # noqa: F401 (fixtures)


@pytest.fixture
def invoice_use_case(queue):  # noqa: F811 (the fixture imported above)
    """A use case whose review queue is ``queue``, with reason codes and an output schema."""
    return UseCaseFactory(slug="invoices", name="Invoices", review_queue=queue,
                          output_schema=INVOICE_OUTPUT_SCHEMA)
