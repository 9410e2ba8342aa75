"""Data contracts and the shape check of posted decisions: their fast paths answer
exactly what the reference ones (jsonschema, the DRF serializer) would."""

import pytest
from django.core.exceptions import ValidationError
from jsonschema.validators import validator_for

from exceptions_app.api.serializers import DecisionInSerializer, validate_decisions
from exceptions_app.contracts import check_schema, contract_errors
from exceptions_app.demo.data import INPUT_SCHEMA, OUTPUT_SCHEMA
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


@pytest.mark.parametrize(("schema", "problem"), [
    ({"type": "strin"}, "at type:"),
    ({"properties": {"a": {"minLength": -1}}}, "at properties/a/minLength:"),
    ({"pattern": "("}, "at pattern:"),
    ({"$ref": "#/$defs/missing"}, "/$defs/missing"),
    ({"$schema": "http://json-schema.org/draft-03/schema#"},
     "declare one of draft 4, draft 6, draft 7, draft 2019-09, draft 2020-12"),
])
def test_a_schema_that_is_not_valid_json_schema_is_refused_naming_where(schema, problem):
    with pytest.raises(ValidationError) as refused:
        check_schema(schema)

    assert refused.value.messages[0].startswith("Not a valid JSON Schema: ")
    assert problem in refused.value.messages[0]


@pytest.mark.parametrize("schema", [
    INPUT_SCHEMA, OUTPUT_SCHEMA,
    {"$schema": "http://json-schema.org/draft-04/schema#", "minimum": 0,
     "exclusiveMinimum": True},
    {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]},
])
def test_schemas_of_every_supported_draft_are_taken(schema):
    check_schema(schema)


DEEP = {"a": [1]}
for _ in range(40):
    DEEP = {"d": DEEP}


@pytest.mark.parametrize("value", [
    {"vendor": "Bäckerei", "n": [1, 2.5, None, True, {"x": "y"}]},
    {"nul": "a\x00b"}, {"key\x00": 1}, {"lone": "\ud800"}, {"\udc00": 1},
    {"big": float("inf")}, {"nan": [float("nan")]}, {"huge": 10**400}, {"ok": 10**300},
    DEEP, {"d": [[[[["deep but fine"]]]]]},
])
def test_the_quick_walk_answers_what_the_full_walk_names(value):
    """``json_value_problem`` lets plainly storable values through without naming paths;
    a value with a problem gets the full walk's answer, where included."""
    from exceptions_app import contracts

    full = contracts._named_problem(value)
    assert contracts.json_value_problem(value) == full
    assert contracts._plainly_storable(value, 0) == (full is None)
