"""The one validator (jsonschema-rs) answers what the reference implementation
(jsonschema, kept as a test dependency for this) answers: the same violations, at the
same places, in the same order, in the same sentences, for every draft a contract may
declare, keyword by keyword (a table in the manner of the JSON Schema test suite).

Where jsonschema-rs and jsonschema word a rarer keyword differently, the test holds the
places and keywords to the same and says so below (``OWN_SENTENCES``)."""

import pytest
from jsonschema.validators import validator_for

from exceptions_app.contracts import SUPPORTED_DRAFTS, contract_validator

DRAFTS = {
    "4": "http://json-schema.org/draft-04/schema#",
    "6": "http://json-schema.org/draft-06/schema#",
    "7": "http://json-schema.org/draft-07/schema#",
    "2019-09": "https://json-schema.org/draft/2019-09/schema",
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
}
ALL = tuple(DRAFTS)
SINCE_6 = ("6", "7", "2019-09", "2020-12")
SINCE_7 = ("7", "2019-09", "2020-12")
UP_TO_7 = ("4", "6", "7")
SINCE_2019 = ("2019-09", "2020-12")

SCALARS = [None, True, False, 0, 1, 1.0, -1, 2.5, 10**30, 1e-7, 0.1, "", "a", "abc", "é"]

# (name, drafts, schema, values): each schema is checked against every value.
CASES = [
    ("type", ALL, {"type": "string"}, SCALARS),
    ("type, integer", ALL, {"type": "integer"}, SCALARS),
    ("type, several", ALL, {"type": ["string", "null"]}, SCALARS),
    ("enum", ALL, {"enum": ["approve", "hold", "reject"]}, [*SCALARS, "hold"]),
    ("enum of mixed values", ALL, {"enum": [1, "one", None, [1]]},
     [*SCALARS, [1], [True], True]),
    ("const", SINCE_6, {"const": 1}, [*SCALARS, 1.0]),
    ("const, object", SINCE_6, {"const": {"a": [1, 2]}}, [{"a": [1, 2]}, {"a": [2, 1]}, {}]),
    ("required", ALL, {"required": ["vendor", "amount"]},
     [{}, {"vendor": "x"}, {"amount": 1, "vendor": None}, [], "x"]),
    ("properties", ALL,
     {"properties": {"vendor": {"type": "string", "minLength": 1},
                     "amount": {"type": "number", "minimum": 0}}},
     [{}, {"vendor": ""}, {"vendor": 3, "amount": -1}, {"amount": "10"}, {"other": 1}]),
    ("additionalProperties false", ALL,
     {"properties": {"a": {}}, "additionalProperties": False},
     [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 2, "c": 3}, {"é": 1}]),
    ("additionalProperties with patterns", ALL,
     {"properties": {"a": {}}, "patternProperties": {"^x-": {"type": "string"}, "^y": {}},
      "additionalProperties": False},
     [{"x-a": "s"}, {"x-a": 1}, {"b": 1}, {"b": 1, "c": 2}]),
    ("additionalProperties as a schema", ALL,
     {"properties": {"a": {}}, "additionalProperties": {"type": "integer"}},
     [{"a": "s", "b": 1}, {"b": "s"}, {"b": "s", "c": 2.5}]),
    ("minimum and maximum", ALL, {"minimum": 0, "maximum": 10}, [-1, 0, 10, 11, 10.5, "x"]),
    ("exclusive limits, draft 4", ("4",),
     {"minimum": 0, "exclusiveMinimum": True, "maximum": 10, "exclusiveMaximum": True},
     [0, 0.1, 10, 9.9, -3]),
    ("exclusive limits", SINCE_6, {"exclusiveMinimum": 0, "exclusiveMaximum": 10},
     [0, 0.1, 10, 9.9, -3]),
    ("multipleOf", ALL, {"multipleOf": 0.5}, [1, 1.5, 1.25, 7, "x"]),
    ("multipleOf, integer", ALL, {"multipleOf": 3}, [9, 10, 9.0, 4.5]),
    ("lengths", ALL, {"minLength": 2, "maxLength": 3}, ["", "a", "ab", "abcd", "éé", 5]),
    ("length of one", ALL, {"minLength": 1, "maxLength": 0}, ["", "a"]),
    ("pattern", ALL, {"pattern": "^INV-[0-9]+$"}, ["INV-1", "inv-1", "INV-", 3]),
    ("items as a schema", ALL, {"items": {"type": "object", "required": ["quantity"]}},
     [[], [{}], [{"quantity": 1}, 3, {}], {}]),
    ("sizes of lists", ALL, {"minItems": 1, "maxItems": 2}, [[], [1], [1, 2, 3]]),
    ("empty lists only", ALL, {"maxItems": 0}, [[], [1]]),
    ("uniqueItems", ALL, {"uniqueItems": True}, [[1, 2], [1, 1], [1, True], [{"a": 1}, {"a": 1}]]),
    ("items as a list", ("4", "6", "7", "2019-09"),
     {"items": [{"type": "string"}, {"type": "integer"}], "additionalItems": False},
     [["a", 1], ["a", "b"], ["a", 1, 2], [1]]),
    ("prefixItems", ("2020-12",),
     {"prefixItems": [{"type": "string"}], "items": {"type": "integer"}},
     [["a", 1, 2], [1, "b"], ["a", "b"]]),
    ("prefixItems, nothing after", ("2020-12",),
     {"prefixItems": [{"type": "string"}], "items": False}, [["a"], ["a", 1], ["a", 1, 2]]),
    ("contains", SINCE_6, {"contains": {"type": "integer"}}, [[1], ["a"], [], "x"]),
    ("minContains", SINCE_2019, {"contains": {"type": "integer"}, "minContains": 2},
     [[1, 2], [1, "a"], ["a"]]),
    ("maxContains", SINCE_2019, {"contains": {"type": "integer"}, "maxContains": 1},
     [[1], [1, 2], ["a"]]),
    ("sizes of objects", ALL, {"minProperties": 1, "maxProperties": 2},
     [{}, {"a": 1}, {"a": 1, "b": 2, "c": 3}]),
    ("dependencies", UP_TO_7,
     {"dependencies": {"po_number": ["po_amount", "currency"], "b": {"required": ["c"]}}},
     [{}, {"po_number": "x"}, {"po_number": "x", "po_amount": 1}, {"b": 1}]),
    ("dependentRequired", SINCE_2019, {"dependentRequired": {"po_number": ["po_amount", "x"]}},
     [{}, {"po_number": "x"}, {"po_number": "x", "po_amount": 1}]),
    ("dependentSchemas", SINCE_2019, {"dependentSchemas": {"b": {"required": ["c"]}}},
     [{}, {"b": 1}, {"b": 1, "c": 2}]),
    ("allOf", ALL, {"allOf": [{"type": "number"}, {"minimum": 5}]}, [1, 6, "x"]),
    ("anyOf", ALL, {"anyOf": [{"type": "string"}, {"type": "null"}]}, [None, "a", 1]),
    ("oneOf", ALL, {"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 3, 2.5, 0.5]),
    ("labelled choices", ALL,
     {"oneOf": [{"const": "approve", "title": "Approve"}, {"const": "hold", "title": "Hold"}]}
    , ["approve", "x", None]),
    ("not", ALL, {"not": {"const": ""}}, ["", "a", 1]),
    ("if, then, else", SINCE_7,
     {"if": {"properties": {"currency": {"const": "EUR"}}},
      "then": {"required": ["iban"]}, "else": {"required": ["swift"]}},
     [{"currency": "EUR"}, {"currency": "USD"}, {"currency": "EUR", "iban": "x"}]),
    ("$ref to definitions", UP_TO_7,
     {"definitions": {"money": {"type": "number", "minimum": 0}},
      "properties": {"amount": {"$ref": "#/definitions/money"}}},
     [{"amount": -1}, {"amount": "1"}, {"amount": 2}]),
    ("$ref to $defs", SINCE_2019,
     {"$defs": {"money": {"type": "number", "minimum": 0}},
      "properties": {"amount": {"$ref": "#/$defs/money"},
                     "lines": {"type": "array", "items": {"$ref": "#/$defs/money"}}}},
     [{"amount": -1}, {"amount": "1"}, {"lines": [1, -2, "3"]}]),
    ("$ref beside other keywords", SINCE_2019,
     {"$defs": {"text": {"type": "string"}}, "$ref": "#/$defs/text", "minLength": 2},
     ["", "ab", 1]),
    ("format is not asserted", ALL, {"type": "string", "format": "email"},
     ["x@y.z", "not an e-mail", 3]),
    ("format date", ALL, {"format": "date"}, ["2026-12-04", "yesterday"]),
    ("unevaluatedProperties", SINCE_2019,
     {"properties": {"a": {}}, "allOf": [{"properties": {"b": {}}}],
      "unevaluatedProperties": False},
     [{"a": 1, "b": 2}, {"a": 1, "c": 3}, {"d": 1, "c": 3}]),
    ("unevaluatedProperties as a schema", SINCE_2019,
     {"properties": {"a": {}}, "unevaluatedProperties": {"type": "string"}},
     [{"a": 1, "b": "x"}, {"b": 2}]),
    ("unevaluatedItems", ("2020-12",),
     {"prefixItems": [{"type": "string"}], "unevaluatedItems": False}, [["a"], ["a", 1]]),
    ("propertyNames", SINCE_6, {"propertyNames": {"maxLength": 3}}, [{"ab": 1}, {"abcd": 1}]),
    ("false schemas", SINCE_6, {"properties": {"a": False, "b": True}},
     [{"a": 1}, {"b": 1}, {}]),
    ("nested places", SINCE_6,
     {"type": "object", "required": ["line_items"], "properties": {"line_items": {
         "type": "array", "minItems": 1, "items": {
             "type": "object", "required": ["description", "quantity"],
             "properties": {"description": {"type": "string", "minLength": 1},
                            "quantity": {"type": "number", "exclusiveMinimum": 0}
                           }}}}},
     [{"line_items": []}, {"line_items": [{}]},
      {"line_items": [{"description": "", "quantity": 0}, {"description": "x", "quantity": 1},
                      "x"]}]),
]

# Keywords whose sentence jsonschema-rs writes (the reference lists the unevaluated
# items themselves): their places and keywords must still agree.
OWN_SENTENCES = {"unevaluatedItems"}


def reference(schema: dict, value) -> list[tuple[str, str, str]]:
    validator = validator_for(schema)(schema)
    return [("/".join(map(str, error.absolute_path)), error.validator, error.message)
            for error in sorted(validator.iter_errors(value),
                                key=lambda e: list(e.absolute_path))]


def ours(schema: dict, value) -> list[tuple[str, str, str]]:
    return [("/".join(map(str, violation.path)), violation.keyword, violation.message)
            for violation in contract_validator(schema).violations(value)]


def comparable(answers, schema):
    """(place, keyword, sentence), the sentence left out where ours is jsonschema-rs's.

    A ``false`` subschema's refusal is compared without its place: jsonschema puts it on
    the object holding the field, jsonschema-rs (and so the wording) on the field."""
    return [(None if keyword is None else place, keyword,
             None if _own_sentence(keyword, schema) else message)
            for place, keyword, message in answers]


def _own_sentence(keyword, schema) -> bool:
    return keyword in OWN_SENTENCES


@pytest.mark.parametrize(("name", "draft", "schema", "values"), [
    pytest.param(name, draft, schema, values, id=f"{draft}: {name}")
    for name, drafts, schema, values in CASES for draft in drafts])
def test_the_validator_answers_what_the_reference_answers(name, draft, schema, values):
    schema = {"$schema": DRAFTS[draft], **schema}
    for value in values:
        expected, got = reference(schema, value), ours(schema, value)
        assert comparable(got, schema) == comparable(expected, schema), value


def test_a_schema_without_schema_is_2020_12():
    schema = {"prefixItems": [{"type": "string"}], "items": False}

    assert ours(schema, ["a", 1]) == [("", "items", ours(
        {"$schema": DRAFTS["2020-12"], **schema}, ["a", 1])[0][2])]


def test_a_false_field_is_refused_at_the_field():
    schema = {"properties": {"a": False}}

    assert ours(schema, {"a": 1}) == [("a", None, "False schema does not allow 1")]


def test_every_supported_draft_is_in_the_table():
    assert {uri.rstrip("#") for uri in DRAFTS.values()} == set(SUPPORTED_DRAFTS)
