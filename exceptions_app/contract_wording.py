"""A data contract's refusals in a reviewer's words, every one at once.

The validator says ``None is not one of ['approve', 'hold', 'reject']``; a reviewer should
read "Action: choose one of Approve, Hold, Reject." Each error is worded from the
schema's ``title`` of the field (else its key, as words) and the labels of its choices:
an ``enum``'s values as words, or the ``title`` of each ``const`` in a ``oneOf``/``anyOf``
(JSON Schema's way to label choices). The case page and the cases API both show these
words: the page beside each field, the API's 400 keyed by the field's path
(``output.amount``, ``output.line_items.0.quantity``). The resolve form's own checks
(a number that is not one, a choice not offered) use the same sentences.
"""

from collections.abc import Iterable

from exceptions_app.contracts import contract_validator
from workflows.presentation import field_label

_KINDS = {"string": "text", "number": "a number", "integer": "a whole number",
          "boolean": "yes or no", "array": "a list", "object": "a group of fields",
          "null": "empty"}


def choices(schema) -> list[tuple[object, str]] | None:
    """The values a field may take with the labels a person sees; None if it is free."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("enum"), list):
        return [(value, choice_label(value)) for value in schema["enum"]]
    for combinator in ("oneOf", "anyOf"):
        options = schema.get(combinator)
        if (isinstance(options, list) and options
                and all(isinstance(option, dict) and "const" in option for option in options)):
            return [(option["const"], option.get("title") or choice_label(option["const"]))
                    for option in options]
    return None


def choice_label(value) -> str:
    if value is None:
        return "empty"
    return field_label(value) if isinstance(value, str) else _number(value)


def field_title(schema, key) -> str:
    """A field's name for people: its schema's ``title``, else its key as words."""
    if isinstance(schema, dict) and isinstance(schema.get("title"), str) and schema["title"]:
        return schema["title"]
    return field_label(key)


def must_be(label: str, kind: str) -> str:
    return f"{label} must be {_KINDS.get(kind, kind)}."


def choose_one(label: str, labels: Iterable[str]) -> str:
    return f"{label}: choose one of {', '.join(labels)}."


def not_json(label: str) -> str:
    return f"{label} must be written as JSON, e.g. {{\"name\": \"value\"}} or [1, 2]."


def contract_field_errors(schema: dict | None, value, *, prefix: str) -> dict[str, list[str]]:
    """Every way ``value`` breaks ``schema``, worded, keyed by the path of the field
    (``prefix`` for the value as a whole, ``prefix.key.0.key`` below it)."""
    contract = contract_validator(schema)
    if contract is None:
        return {}
    errors: dict[str, list[str]] = {}
    for error in contract.violations(value):
        for path, message in _worded(schema, error):
            messages = errors.setdefault(".".join([prefix, *map(str, path)]), [])
            if message not in messages:  # "required" comes once per missing field
                messages.append(message)
    return errors


def _worded(root: dict, error) -> list[tuple[list, str]]:
    path = list(error.path)
    keyword, expected, instance = error.keyword, error.expected, error.instance
    if keyword == "required":
        return [([*path, name], f"{_label(root, [*path, name])} is required.")
                for name in expected if isinstance(instance, dict) and name not in instance]
    label = _label(root, path)
    if instance is None and keyword != "not":
        # An emptied form field (and JSON's null) is a missing value to a reviewer.
        return [(path, _missing(label, error.schema))]
    return [(path, _problem(label, error))]


def _missing(label: str, schema: dict) -> str:
    options = choices(schema)
    return choose_one(label, (text for _, text in options)) if options else (
        f"{label} is required.")


_LIMITS = {
    "minimum": "must be {} or more", "exclusiveMinimum": "must be more than {}",
    "maximum": "must be {} or less", "exclusiveMaximum": "must be less than {}",
    "multipleOf": "must be a multiple of {}",
    "minLength": "must be at least {} long", "maxLength": "must be at most {} long",
    "minItems": "needs at least {}", "maxItems": "takes at most {}",
    "minProperties": "needs at least {}", "maxProperties": "takes at most {}",
}


def _problem(label: str, error) -> str:
    keyword, expected, instance = error.keyword, error.expected, error.instance
    if keyword in ("enum", "const", "oneOf", "anyOf") and (options := choices(error.schema)):
        return choose_one(label, (text for _, text in options))
    if keyword == "const":
        return f"{label} must be {choice_label(expected)}."
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return f"{label} must be {' or '.join(_KINDS.get(kind, kind) for kind in kinds)}."
    if keyword == "minLength" and instance == "":
        return f"{label} is required."
    if keyword in _LIMITS:
        return f"{label} {_LIMITS[keyword].format(_counted(keyword, expected))}."
    if keyword == "pattern":
        return f"{label} is not in the expected form."
    if keyword == "uniqueItems":
        return f"{label} lists the same item twice."
    if keyword == "additionalProperties":
        known = set(error.schema.get("properties") or {})
        extra = ", ".join(str(key) for key in instance if key not in known)
        return f"{label} has fields the contract does not know: {extra}."
    if keyword == "not":
        return f"{label} may not be {instance!r}." if isinstance(instance, str) else (
            f"{label} may not be {_number(instance)}.")
    # anyOf/oneOf/allOf of schemas and the rarer keywords: the validator's own sentence,
    # still under the field's name.
    return f"{label}: {error.message}."


def _label(root: dict, path: list) -> str:
    """The field's title; below the top level, where it sits: "Quantity (Line items,
    item 2)". The value as a whole is "The output"."""
    names, schema = [], root
    for part in path:
        if isinstance(part, int):
            schema = schema.get("items") if isinstance(schema, dict) else None
            names.append(f"item {part + 1}")
        else:
            properties = schema.get("properties") if isinstance(schema, dict) else None
            schema = properties.get(part) if isinstance(properties, dict) else None
            names.append(field_title(schema, part))
    if not names:
        return "The output"
    leaf = names[-1][:1].upper() + names[-1][1:]
    return f"{leaf} ({', '.join(names[:-1])})" if len(names) > 1 else leaf


_COUNTED = {"minLength": "character", "maxLength": "character", "minItems": "item",
            "maxItems": "item", "minProperties": "field", "maxProperties": "field"}


def _counted(keyword: str, expected) -> str:
    """``3`` -> "3 characters" for a length or a count; a bare number for a limit."""
    noun = _COUNTED.get(keyword)
    if noun is None:
        return _number(expected)
    return f"{_number(expected)} {noun}{'' if expected == 1 else 's'}"


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return str(value)
    return f"{int(value):,}"


# -- reason codes ----------------------------------------------------------------------

def _listed(reason_codes: list[dict]) -> str:
    """The dropdown's labels, each with the code the API sends for it."""
    return ", ".join(f"{item.get('label') or item['code']} ({item['code']})"
                     if item.get("label") and item["label"] != item["code"]
                     else item["code"] for item in reason_codes)


def unknown_reason_code(*, reason_code: str, reason_codes: list[dict], use_case: str) -> str:
    return (f"'{reason_code}' is not a reason code of {use_case}: choose one of "
            f"{_listed(reason_codes)}.")


def missing_reason_code(*, reason_codes: list[dict]) -> str:
    return f"Say why with a reason code: choose one of {_listed(reason_codes)}."
