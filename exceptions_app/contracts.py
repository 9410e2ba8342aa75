"""Data contracts: a use case's optional JSON Schemas for input and output."""

import json
from functools import lru_cache

import jsonschema
from django.core.exceptions import ValidationError
from jsonschema.validators import validator_for


def check_schema(schema: dict) -> None:
    """Refuse a schema that is not itself valid JSON Schema."""
    try:
        validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValidationError(f"Not a valid JSON Schema: {exc.message}") from exc


@lru_cache(maxsize=512)
def _validator(schema_json: str):
    schema = json.loads(schema_json)
    return validator_for(schema)(schema)


def contract_validator(schema: dict | None):
    """The validator of a schema, built once per schema; None if there is no contract."""
    if not schema:
        return None
    return _validator(json.dumps(schema, sort_keys=True))


def contract_errors(schema_or_validator, value) -> list[str]:
    """Every violation of a schema (or of a validator from ``contract_validator``) by
    ``value``, each naming where it is."""
    validator = (contract_validator(schema_or_validator)
                 if isinstance(schema_or_validator, dict) else schema_or_validator)
    if validator is None:
        return []
    messages = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages


# What any stored JSON must be, schema or not: PostgreSQL's jsonb refuses NUL
# characters and non-finite numbers, and the CEL rules see every number as a double.
MAX_JSON_DEPTH = 32
_LARGEST_DOUBLE = 1.7976931348623157e308


def json_value_problem(value) -> str | None:
    """Why ``value`` cannot be stored and judged, naming where; None if it can.

    Iterative, so a hostile nesting depth cannot exhaust the stack.
    """
    stack = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return _at(where, f"nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, str):
            if "\x00" in item:
                return _at(where, "text may not contain the NUL character (\\u0000)")
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return _at(where, "a key may not contain the NUL character (\\u0000)")
                stack.append((child, f"{where}/{key}" if where else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}/{n}" if where else str(n), depth + 1)
                         for n, child in enumerate(item))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float) and not -_LARGEST_DOUBLE <= item <= _LARGEST_DOUBLE:
            return _at(where, "the number is out of range (at most about 1.8e308)")
    return None


def _at(where: str, problem: str) -> str:
    return f"{where}: {problem}" if where else problem
