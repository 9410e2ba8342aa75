"""Data contracts and the shape check of posted decisions: their fast paths answer
exactly what the slow ones (jsonschema, the DRF serializer) would."""

import pytest
from jsonschema.validators import validator_for

from exceptions_app.api.serializers import DecisionInSerializer, validate_decisions
from exceptions_app.contracts import contract_errors, contract_validator
from tests.exceptions_app.intake_support import invoice

INVOICE_INPUT = {
    "type": "object", "required": ["vendor", "po_amount", "currency"],
    "properties": {"vendor": {"type": "string", "minLength": 1},
                   "po_amount": {"type": "number", "minimum": 0},
                   "currency": {"enum": ["EUR", "USD"]},
                   "line_items": {"type": "array", "items": {
                       "type": "object", "required": ["quantity"]}}}}

SCHEMAS = [
    INVOICE_INPUT,
    {"type": "integer", "maximum": 10},
    {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^a"}},
    {"type": "object", "additionalProperties": False, "properties": {"a": {"const": "x"}}},
    {"anyOf": [{"type": "string"}, {"type": "null"}], "not": {"const": ""}},
    # Keywords the compiled check would read differently or not at all: jsonschema only.
    {"enum": [1, "one"]},
    {"type": "array", "prefixItems": [{"type": "string"}]},
    {"$defs": {"n": {"type": "number"}}, "properties": {"n": {"$ref": "#/$defs/n"}}},
    {"type": "string", "format": "email"},
]
VALUES = [None, True, False, 0, 1, 1.0, 11, 2.5, "", "a", "abc", "x@y.z", [], [1], ["a"],
          ["ab", 2], {}, {"a": "x"}, {"a": "y"}, {"b": 1}, {"n": "7"}, {"n": 7},
          {"vendor": "ACME", "po_amount": 10, "currency": "EUR"},
          {"vendor": "", "po_amount": -1, "currency": "JPY"},
          {"vendor": "ACME", "po_amount": 10, "currency": "EUR", "line_items": [{}]}]


def jsonschema_errors(schema, value) -> list[str]:
    validator = validator_for(schema)(schema)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            if error.absolute_path else error.message
            for error in sorted(validator.iter_errors(value),
                                key=lambda e: list(e.absolute_path))]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_contract_finds_exactly_what_jsonschema_finds(schema):
    for value in VALUES:
        assert contract_errors(schema, value) == jsonschema_errors(schema, value), value


def test_usual_contracts_are_checked_by_compiled_code_first():
    assert contract_validator(INVOICE_INPUT).passes is not None
    assert contract_validator({"type": "array", "prefixItems": []}).passes is None
    assert contract_validator({"enum": [1, "one"]}).passes is None


def serializer_answer(item):
    serializer = DecisionInSerializer(data=item)
    if serializer.is_valid():
        return (dict(serializer.validated_data), None)
    return (None, serializer.errors)


@pytest.mark.parametrize("item", [
    invoice("inv-1"),
    invoice("inv-1", explanation="Matches the PO.", meta={"pages": 2}),
    invoice("inv-1", confidence=1),
    invoice("inv-1", confidence=0),
    invoice("inv-1", explanation=""),
    invoice("  inv-1 "),
    invoice("inv-ü"),
    invoice("x" * 200),
    invoice("x" * 201),
    invoice(""),
    invoice("inv-1", use_case="not a slug"),
    invoice("inv-1", use_case="u" * 51),
    invoice("inv-1", confidence=True),
    invoice("inv-1", confidence=False),
    invoice("inv-1", confidence=None),
    invoice("inv-1", confidence="1"),
    invoice("inv-1", confidence=1.5),
    invoice("inv-1", confidence="0.9"),
    invoice("inv-1", explanation=None),
    invoice("inv-1", explanation=" padded "),
    invoice("inv-1", meta=None),
    invoice("inv-1", model_version="v\x001"),
    invoice("inv-1", input={"vendor": "nul\x00"}),
    invoice("inv-1", output=[1]),
    {"use_case": "invoice-approval", "external_id": "inv-1"},
    ["not", "an", "object"],
])
def test_plain_items_are_validated_as_the_serializer_does(item):
    [(data, errors)] = validate_decisions([item])

    assert (data, errors) == serializer_answer(item)
