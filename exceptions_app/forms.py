"""Forms of the domain's part of the case page: the corrected output's fields.

The engine's resolve form (``workflows.forms.ResolveForm``) takes them from the case
presenter (``exceptions_app.presenters``): one input per field of the AI output, typed
after the use case's output schema when it has one, else after the value the AI gave.
"""

import json

from django import forms

from exceptions_app import contract_wording

_JSON_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool,
               "object": dict, "array": list}


def _schema_type(schema: dict | None) -> type | None:
    kind = (schema or {}).get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), None)
    return _JSON_TYPES.get(kind)


class JsonValueField(forms.JSONField):
    """A nested object or list, edited as JSON."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "spellcheck": "false",
                                                          "class": "mono"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


def output_field(*, key: str, value, schema: dict | None, prefill: bool) -> forms.Field:
    """One output field, labelled with the schema's title; its own refusals (a number
    that is not one) in the same words as the contract's (``contract_wording``)."""
    label = contract_wording.field_title(schema, key)
    kind = _schema_type(schema) or (type(value) if value is not None else str)
    initial = value if prefill else None
    options = {"label": label, "required": False, "initial": initial}
    if schema and schema.get("description"):
        options["help_text"] = schema["description"]
    offered = contract_wording.choices(schema)
    if offered and all(isinstance(item, str | int | float) and not isinstance(item, bool)
                       for item, _ in offered):
        by_text = {str(item): item for item, _ in offered}
        return forms.TypedChoiceField(
            choices=[("", "—")] + [(str(item), text) for item, text in offered],
            coerce=by_text.__getitem__, empty_value=None,
            error_messages={"invalid_choice": contract_wording.choose_one(
                label, (text for _, text in offered))}, **options)
    if kind is bool:
        return forms.NullBooleanField(widget=forms.Select(choices=[
            ("unknown", "—"), ("true", "Yes"), ("false", "No")]), **options)
    if kind is int:
        return forms.IntegerField(
            error_messages={"invalid": contract_wording.must_be(label, "integer")}, **options)
    if kind is float:
        return forms.FloatField(
            widget=forms.NumberInput(attrs={"step": "any"}),
            error_messages={"invalid": contract_wording.must_be(label, "number")}, **options)
    if kind in (dict, list):
        return JsonValueField(error_messages={"invalid": contract_wording.not_json(label)},
                              **options)
    return forms.CharField(max_length=10000, empty_value=None, strip=True, **options)


def output_fields(*, output: dict, output_schema: dict | None, prefill: bool) -> dict:
    """{output key: form field}: the AI's fields first, then the schema's others."""
    properties = (output_schema or {}).get("properties") or {}
    keys = list(output) + [key for key in properties if key not in output]
    return {key: output_field(key=key, value=output.get(key), schema=properties.get(key),
                              prefill=prefill)
            for key in keys}
