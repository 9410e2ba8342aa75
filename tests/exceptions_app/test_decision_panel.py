"""The case page's decision panel, written in Python (``decision_panel``), is what its
template markup wrote: the former markup is kept beside this file as the reference and
both render every kind of decision (blind or not, with and without documents,
explanation and reasons), byte for byte."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import timezone

from exceptions_app.models import AiSystem, Decision, DecisionDocument, PolicyVersion
from exceptions_app.templatetags.decision_panel import decision_panel

# The body of templates/exceptions_app/_case_decision.html before the tag wrote it.
REFERENCE = Template(
    (Path(__file__).parent / "case_decision_panel.html").read_text().removesuffix("\n"))

POLICY = PolicyVersion(pk=3, number=12, text="# Invoices\n\nOver **50,000** needs two "
                       "people. <script>alert(1)</script>")
SYSTEM = AiSystem(pk=1, name="Extractor <3> & co", slug="extractor")


def decision(**fields) -> Decision:
    values = {"pk": 41, "ai_system": SYSTEM, "policy_version": POLICY, "stage": "assist",
              "model_version": "extractor-3.2 <beta>", "confidence": 0.8234,
              "received_at": datetime(2026, 12, 4, 9, 5, 7, 123456, tzinfo=UTC),
              "input": {"vendor": "ACME <GmbH>", "po_amount": 4100.0, "currency": "EUR",
                        "line_items": [{"description": "Widgets & bolts", "quantity": 3,
                                        "unit_price": 12.5}],
                        "notes": {"a": [1, 2, {"deep": None}], "b": True}},
              "output": {"action": "approve", "amount": 4180.0},
              "explanation": "Line one\nline <two> & three",
              "reasons": [{"rule": "amount-mismatch", "text": "Amount is 2% off <PO>",
                           "action": "review"},
                          {"rule": "", "text": "Default", "action": "review"},
                          {"text": "No rule key"}]}
    values.update(fields)
    return Decision(**values)


def documents() -> list[DecisionDocument]:
    return [DecisionDocument(pk=5, kind="pdf", original_filename="invoice <1>.pdf",
                             content_type="application/pdf", fetch_status="stored"),
            DecisionDocument(pk=6, kind="url", source_url="https://example.com/a?b=1&c=2",
                             fetch_status="failed", fetch_error="Timed out")]


PANELS = {
    "plain": {"decision": decision(), "document": None, "documents": []},
    "no explanation, no reasons": {"decision": decision(explanation="", reasons=[]),
                                   "document": None, "documents": []},
    "odd values": {"decision": decision(input=None, output=[], confidence=1.0, stage="audit",
                                        reasons=None), "document": None, "documents": []},
    "documents": {"decision": decision(), "document": documents()[0],
                  "documents": documents()},
    "a document not stored": {"decision": decision(), "document": None,
                              "documents": documents()[1:]},
}


@pytest.mark.parametrize("name", PANELS)
@pytest.mark.parametrize("hide_suggestion", [False, True])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_the_decision_panel_is_what_its_template_wrote(name, hide_suggestion, zone):
    context = {"panel": {"context": PANELS[name]}, "hide_suggestion": hide_suggestion}
    with timezone.override(zone):
        expected = REFERENCE.render(Context(context))
        assert decision_panel(PANELS[name], hide_suggestion) == expected


def test_blind_review_shows_neither_the_output_nor_the_rules():
    html = decision_panel(PANELS["plain"], True)

    assert "AI suggestion hidden" in html and "extractor-3.2" not in html
    assert "Amount is 2%" not in html and "4,180.00" not in html
    assert "&lt;script&gt;" not in html and "<script>" not in html  # the policy is cleaned
