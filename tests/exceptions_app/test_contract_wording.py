"""A data contract's refusals in a reviewer's words: every field's problem at once,
named by the schema's titles and the choices' labels, keyed by the field's path."""

import pytest

from exceptions_app.contract_wording import (
    choices,
    contract_field_errors,
    missing_reason_code,
    unknown_reason_code,
)
from exceptions_app.demo import data

INVOICE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["action", "amount", "vendor"],
    "properties": {
        "action": {"title": "Action", "enum": ["approve", "hold", "reject"]},
        "amount": {"title": "Invoice total", "type": "number", "minimum": 0},
        "vendor": {"title": "Vendor", "type": "string", "minLength": 1},
    },
}


def words(schema, value):
    return contract_field_errors(schema, value, prefix="output")


def test_every_bad_field_is_worded_at_once_under_its_path():
    assert words(INVOICE, {"action": None, "amount": -12.0, "vendor": None}) == {
        "output.action": ["Action: choose one of Approve, Hold, Reject."],
        "output.amount": ["Invoice total must be 0 or more."],
        "output.vendor": ["Vendor is required."],
    }


def test_a_valid_value_has_no_errors():
    assert words(INVOICE, {"action": "hold", "amount": 12, "vendor": "ACME"}) == {}
    assert words(None, {"anything": 1}) == {}


def test_a_missing_field_and_an_emptied_one_are_both_required():
    assert words(INVOICE, {"action": "hold", "vendor": ""}) == {
        "output.amount": ["Invoice total is required."],
        "output.vendor": ["Vendor is required."],
    }


def test_a_field_without_a_title_is_named_by_its_key_in_words():
    schema = {"properties": {"po_amount": {"type": "number"}}}

    assert words(schema, {"po_amount": "lots"}) == {
        "output.po_amount": ["Po amount must be a number."]}


@pytest.mark.parametrize(("spec", "value", "message"), [
    ({"type": "integer"}, 2.5, "Field must be a whole number."),
    ({"type": ["string", "boolean"]}, 3, "Field must be text or yes or no."),
    ({"exclusiveMinimum": 0}, 0, "Field must be more than 0."),
    ({"maximum": 50000}, 60000, "Field must be 50,000 or less."),
    ({"exclusiveMaximum": 0.5}, 0.5, "Field must be less than 0.5."),
    ({"multipleOf": 5}, 7, "Field must be a multiple of 5."),
    ({"minLength": 3}, "ab", "Field must be at least 3 characters long."),
    ({"maxLength": 2}, "abc", "Field must be at most 2 characters long."),
    ({"pattern": "^PO-"}, "X-1", "Field is not in the expected form."),
    ({"minItems": 1}, [], "Field needs at least 1 item."),
    ({"maxItems": 1}, [1, 2], "Field takes at most 1 item."),
    ({"uniqueItems": True}, [1, 1], "Field lists the same item twice."),
    ({"const": "EUR"}, "USD", "Field must be EUR."),
    ({"not": {"const": "n/a"}}, "n/a", "Field may not be 'n/a'."),
])
def test_each_kind_of_problem_is_worded(spec, value, message):
    schema = {"properties": {"field": {"title": "Field", **spec}}}

    assert words(schema, {"field": value}) == {"output.field": [message]}


def test_labelled_choices_name_their_titles():
    currency = {"title": "Currency", "oneOf": [{"const": "EUR", "title": "Euro"},
                                                {"const": "USD", "title": "US dollar"}]}
    schema = {"properties": {"currency": currency}}

    assert choices(currency) == [("EUR", "Euro"), ("USD", "US dollar")]
    assert words(schema, {"currency": "JPY"}) == {
        "output.currency": ["Currency: choose one of Euro, US dollar."]}


def test_a_nested_problem_names_where_it_sits():
    schema = {"properties": {"line_items": {"title": "Line items", "type": "array", "items": {
        "type": "object", "required": ["quantity"],
        "properties": {"quantity": {"title": "Quantity", "exclusiveMinimum": 0}}}}}}

    assert words(schema, {"line_items": [{"quantity": 1}, {"quantity": 0}, {}]}) == {
        "output.line_items.1.quantity": ["Quantity (Line items, item 2) must be more than 0."],
        "output.line_items.2.quantity": ["Quantity (Line items, item 3) is required."],
    }


def test_problems_of_the_output_as_a_whole_are_keyed_by_the_prefix():
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"amount": {"type": "number"}}}

    assert words(schema, {"amount": 1, "tip": 2}) == {
        "output": ["The output has fields the contract does not know: tip."]}
    assert words(schema, [1]) == {"output": ["The output must be a group of fields."]}


REASON_CODES = [{"code": "wrong-amount", "label": "The AI read the amount wrong"},
                {"code": "policy", "label": "policy"}, {"code": "other"}]


def test_reason_code_errors_name_the_dropdowns_labels_and_the_codes():
    listed = "The AI read the amount wrong (wrong-amount), policy, other"

    assert missing_reason_code(reason_codes=REASON_CODES) == (
        f"Say why with a reason code: choose one of {listed}.")
    assert unknown_reason_code(reason_code="bad-vibes", reason_codes=REASON_CODES,
                               use_case="Invoice approval") == (
        f"'bad-vibes' is not a reason code of Invoice approval: choose one of {listed}.")


def _untitled(schema, where=""):
    """The paths of the fields in ``schema`` (at any depth) that have no title."""
    for name, spec in (schema.get("properties") or {}).items():
        if not spec.get("title"):
            yield f"{where}{name}"
        yield from _untitled(spec, f"{where}{name}.")
    if isinstance(schema.get("items"), dict):
        yield from _untitled(schema["items"], f"{where}*.")


def test_the_demos_contracts_give_every_field_a_title():
    assert list(_untitled(data.INPUT_SCHEMA)) == []
    assert list(_untitled(data.OUTPUT_SCHEMA)) == []
