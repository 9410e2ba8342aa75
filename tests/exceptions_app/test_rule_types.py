"""Rule expressions typed against the use case's data contract when a draft is saved."""

import cel
import pytest
from django.core.exceptions import ValidationError

from exceptions_app.demo import data
from exceptions_app.models import PolicyVersion, UseCase
from exceptions_app.policy import evaluation_context
from exceptions_app.rule_types import Contract, problems
from exceptions_app.services.policies import RuleSpec, policy_create_draft
from tests.exceptions_app.factories import UseCaseFactory
from tests.factories import UserFactory

INVOICES = Contract.of(UseCase(input_schema=data.INPUT_SCHEMA, output_schema=data.OUTPUT_SCHEMA))
NO_CONTRACT = Contract.of(UseCase())


def problem(expression: str, contract: Contract = INVOICES) -> str:
    [found] = problems(expression, contract=contract)
    return found


@pytest.mark.parametrize(("expression", "says"), [
    ('confidence < "0.9"', "line 1, column 12: 'confidence < \"0.9\"' compares a number "
                           "(confidence) and text (\"0.9\"). The comparison fails on every "
                           "decision. Write the number without quotes: 0.9."),
    ('input.po_amount > "100"', "line 1, column 17: 'input.po_amount > \"100\"' compares a "
                                "number (input.po_amount) and text"),
    ("output.action == 5", "line 1, column 15: 'output.action == 5' compares text "
                           "(output.action) and a whole number (5). They are never equal."),
    ("output.amount * 2 > 100.0", "line 1, column 15: 'output.amount * 2' mixes a whole "
                                  "number with a decimal one"),
    ("confidence > 0.5 && output.vendor", "line 1, column 21: '&&' joins conditions that "
                                          "are true or false, and 'output.vendor' is text."),
    ("output.amount", "A rule must be true or false, and 'output.amount' is a number"),
    ('output.action in [1, 2]', "'output.action' is text, and the list '[1, 2]' holds a "
                                "whole number"),
    ("size(confidence) > 1", "size() counts text, a list or an object's keys"),
    ('input.vendor.lowerAscii() == "acme"', "CEL here has no function 'lowerAscii'"),
    ("confidence < 0.9 &&\n  input.currency == 1", "line 2, column 18: 'input.currency == 1'"),
])
def test_a_rule_mixing_kinds_is_refused_naming_the_position(expression, says):
    assert problem(expression).startswith(says) or says in problem(expression)


@pytest.mark.parametrize(("expression", "says"), [
    ("input.po_amout > 1.0", "line 1, column 7: the input schema has no field 'po_amout' in "
                             "'input.po_amout' (its fields: vendor, invoice_number, po_number, "
                             "po_amount, currency, line_items)."),
    ('output.verdict == "approve"', "line 1, column 8: the output schema has no field "
                                    "'verdict'"),
    ("input.line_items.exists(line, line.qty > 10.0)", "line 1, column 36: the input schema "
                                                       "has no field 'qty' in 'line.qty'"),
    ('has(input.supplier)', "line 1, column 11: the input schema has no field 'supplier'"),
    ('input["vendr"] == "ACME"', "line 1, column 8: the input schema has no field 'vendr'"),
])
def test_a_field_the_contract_does_not_declare_is_refused(expression, says):
    assert problem(expression).startswith(says)


@pytest.mark.parametrize("expression", [
    *(rule.expression for rule in data.POLICY_RULES),
    "output.amount < 5000",  # comparisons mix whole and decimal numbers
    "input.line_items.exists(line, line.quantity * line.unit_price > 10000.0)",
    "size(input.line_items) > 20",
    'input.currency in ["EUR", "CHF"] && model_version.startsWith("extractor-3")',
    'has(input.vendor) && input["vendor"] != ""',
    "meta.region == 1 || meta.anything.deeper",  # meta has no contract
    "-confidence < -0.5 && !(confidence > 0.99)",
    "confidence < 0.9 ? output.amount > 10.0 : output.amount > 100.0",
    "input.line_items.map(line, line.unit_price).filter(price, price > 0.0).size() > 0",
    'timestamp(meta.sent) < timestamp("2026-01-01T00:00:00Z")',
    "dyn(output.amount) == 5000",
])
def test_rules_that_can_work_pass(expression):
    assert problems(expression, contract=INVOICES) == []


def test_without_a_contract_any_field_may_be_read_but_kinds_still_count():
    assert problems("input.anything > 1.0 && output.whatever == 'x'", contract=NO_CONTRACT) == []
    assert "compares a number (confidence) and text" in problem('confidence < "0.9"', NO_CONTRACT)


@pytest.mark.parametrize("expression", [
    'confidence < "0.9"', "output.amount * 2 > 100.0", "output.action && true",
    "output.amount % 2.0 == 0.0",
])
def test_what_is_refused_fails_at_runtime_on_a_valid_decision(expression):
    """The checker refuses only what the runtime cannot evaluate: each refused rule,
    run on a decision that fits the contract, raises."""
    assert problems(expression, contract=INVOICES)
    decision = evaluation_context(
        input={"vendor": "ACME", "invoice_number": "1", "po_number": "PO-1", "po_amount": 100,
               "currency": "EUR", "line_items": [{"description": "x", "quantity": 1,
                                                  "unit_price": 100}]},
        output={"action": "approve", "amount": 100, "vendor": "ACME"},
        confidence=0.95, model_version="extractor-3.2.1", meta={})
    with pytest.raises((TypeError, RuntimeError, ValueError)):
        cel.compile(expression).execute(decision)


@pytest.mark.django_db
def test_saving_a_draft_refuses_the_rule_with_its_name_position_and_column():
    owner = UserFactory()
    use_case = UseCaseFactory(owner=owner, input_schema=data.INPUT_SCHEMA,
                              output_schema=data.OUTPUT_SCHEMA)
    rules = [RuleSpec(name="large", description="d", expression="output.amount > 50000.0",
                      action="review"),
             RuleSpec(name="unsure", description="d", expression='confidence < "0.9"',
                      action="review"),
             RuleSpec(name="typo", description="d", expression="input.ammount > 1.0",
                      action="review")]

    with pytest.raises(ValidationError) as refused:
        policy_create_draft(use_case=use_case, text="t", rules=rules, author=owner)

    unsure, typo = refused.value.message_dict["rules"]
    assert unsure.startswith("Rule 2 'unsure', expression: line 1, column 12: ")
    assert typo.startswith("Rule 3 'typo', expression: line 1, column 7: the input schema "
                           "has no field 'ammount'")
    assert not PolicyVersion.objects.exists()
