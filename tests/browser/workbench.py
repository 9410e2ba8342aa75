"""A realistic reviewer's world for page and browser tests: people, queues, a policy
and decisions posted through the intake service, as an AI system would post them."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from exceptions_app.models import AiSystem, Decision, PolicyVersion, UseCase
from exceptions_app.services.intake import submit_decisions
from tests.exceptions_app.factories import (
    AiSystemFactory,
    PolicyVersionFactory,
    RuleFactory,
    UseCaseFactory,
)
from tests.factories import QueueFactory, UserFactory, make_manager
from workflows.models import Case, Queue

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's

# Debian's chromium (playwright install cannot download browsers here), where the
# screenshots go, and the two viewports the pages are checked at.
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}

POLICY_TEXT = """\
# Invoice approval policy

Invoices are paid when they **match their purchase order**. People check the rest.

## Rules

1. Over **50,000** the invoice goes through procurement: rejected here.
2. Over **10,000** a second person confirms the decision (*four eyes*).
3. When the extractor is less than **90%** sure, a person checks the extraction.
4. Within **2%** of the PO amount, the invoice is approved.

Questions: the accounts payable team, see [the AP handbook](https://example.com/ap).
"""

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["approve", "hold", "reject"],
                   "description": "What accounts payable should do with the invoice."},
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
    },
    "required": ["action", "amount"],
}

REASON_CODES = [
    {"code": "wrong-amount", "label": "The amount was extracted wrongly"},
    {"code": "no-po", "label": "No matching purchase order"},
    {"code": "duplicate", "label": "Duplicate invoice"},
    {"code": "policy", "label": "Against policy"},
]


@dataclass
class Workbench:
    reviewer: object
    second_reviewer: object
    manager: object
    outsider: object
    queue: Queue
    qa_queue: Queue
    use_case: UseCase
    policy: PolicyVersion
    ai_system: AiSystem
    decisions: dict = field(default_factory=dict)
    # The use case's business owner, once a test names them in its RACI matrix.
    owner: object = None

    def case(self, external_id: str) -> Case:
        return Case.objects.get(decision__external_id=external_id)


def invoice(external_id: str, *, confidence: float, amount: float, po_amount: float,
            vendor: str = "ACME GmbH", action: str = "approve") -> dict:
    return {
        "use_case": "invoice-approval",
        "external_id": external_id,
        "model_version": "extractor-3.2.1",
        "confidence": confidence,
        "input": {
            "vendor": {"name": vendor, "vat_id": "DE811907980",
                       "address": {"street": "Hauptstraße 5", "city": "Köln",
                                   "country": "DE"}},
            "invoice_number": external_id.upper(),
            "invoice_date": "2026-11-12",
            "po_number": "PO-7731",
            "po_amount": po_amount,
            "currency": "EUR",
            "lines": [
                {"sku": "BRK-220", "description": "Brake pads, front", "qty": 40,
                 "unit_price": round(amount * 0.6 / 40, 2)},
                {"sku": "SRV-010", "description": "Fitting service", "qty": 1,
                 "unit_price": round(amount * 0.4, 2)},
            ],
            "paid_before": False,
        },
        "output": {"action": action, "amount": amount, "currency": "EUR"},
        "explanation": (f"Read the total {amount:,.2f} EUR from the invoice footer; "
                        f"PO-7731 allows {po_amount:,.2f} EUR."),
    }


def build_workbench(*, extra_open_cases: int = 0) -> Workbench:
    reviewer = UserFactory(username="alice", first_name="Alice", last_name="Moreau")
    second = UserFactory(username="bob", first_name="Bob", last_name="Okafor")
    manager = make_manager(username="maria", first_name="Maria", last_name="Lindqvist")
    outsider = UserFactory(username="oscar", first_name="Oscar", last_name="Outside")
    owner = UserFactory(username="olivia", first_name="Olivia", last_name="Owner")

    queue = QueueFactory(slug="invoice-review", name="Invoice review")
    qa_queue = QueueFactory(slug="invoice-qa", name="Invoice QA", blind=True)
    other_queue = QueueFactory(slug="claims-review", name="Claims review")
    queue.members.add(reviewer, second)
    qa_queue.members.add(reviewer, second)
    other_queue.members.add(outsider)

    # Automate stage: review rules open cases, passed decisions are all QA-sampled.
    use_case = UseCaseFactory(slug="invoice-approval", name="Invoice approval",
                              stage="automate", automate_qa_rate=1.0, review_queue=queue,
                              qa_queue=qa_queue, output_schema=OUTPUT_SCHEMA,
                              reason_codes=REASON_CODES,
                              summary_fields=["input.vendor.name", "output.amount"])
    policy = PolicyVersionFactory(use_case=use_case, number=3, text=POLICY_TEXT,
                                  default_action="review")
    RuleFactory(policy=policy, position=1, name="huge-amount", action="reject",
                description="Over 50,000: rejected, these go through procurement",
                expression="output.amount > 50000.0")
    RuleFactory(policy=policy, position=2, name="large-amount", action="review",
                four_eyes=True, priority=60,
                description="Over 10,000: a second person confirms the decision",
                expression="output.amount > 10000.0")
    RuleFactory(policy=policy, position=3, name="low-confidence", action="review",
                priority=70,
                description="Confidence under 0.9: a person checks the extraction",
                expression="confidence < 0.9")
    RuleFactory(policy=policy, position=4, name="matches-po", action="auto",
                description="Matches its PO within 2%: approved",
                expression="output.amount <= input.po_amount * 1.02")
    ai_system = AiSystemFactory(slug="invoice-bot", name="Invoice extractor",
                                use_cases=[use_case])

    items = [
        # Low confidence: the most urgent ordinary review case.
        invoice("inv-2026-000123", confidence=0.62, amount=4180.0, po_amount=4100.0),
        # Over 10,000: four eyes.
        invoice("inv-2026-000124", confidence=0.97, amount=12400.0, po_amount=12400.0,
                vendor="Nordlicht AG"),
        # Confident and matching: passes, sampled into the blind QA queue.
        invoice("inv-2026-000125", confidence=0.98, amount=880.0, po_amount=880.0,
                vendor="Bolt & Nut Ltd"),
    ]
    items += [invoice(f"inv-2026-9{n:05d}", confidence=0.7, amount=500.0 + n,
                      po_amount=500.0 + n) for n in range(extra_open_cases)]
    results = submit_decisions(ai_system=ai_system, items=items)
    decisions = {result.decision.external_id: result.decision for result in results}
    assert all(result.status == 201 for result in results), [r.errors for r in results]
    return Workbench(reviewer=reviewer, second_reviewer=second, manager=manager,
                     outsider=outsider, queue=queue, qa_queue=qa_queue, use_case=use_case,
                     policy=policy, ai_system=ai_system, decisions=decisions, owner=owner)


def decision(external_id: str) -> Decision:
    return Decision.objects.select_related("case").get(external_id=external_id)


def screenshot(page, name: str) -> None:
    """Write ``docs/screenshots/<name>`` when ``BACKSTOP_SCREENSHOTS`` is set."""
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True, animations="disabled",
                        caret="hide")
