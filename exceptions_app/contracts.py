"""Data contracts: a use case's optional JSON Schemas for input and output."""

import json
import re
from functools import lru_cache

import fastjsonschema
import jsonschema
from django.core.exceptions import ValidationError
from jsonschema.validators import validator_for


def check_schema(schema: dict) -> None:
    """Refuse a schema that is not itself valid JSON Schema."""
    try:
        validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValidationError(f"Not a valid JSON Schema: {exc.message}") from exc


class Contract:
    """A schema ready to check values against: ``errors(value)`` lists every violation
    (``violations(value)`` as jsonschema's errors, for ``contract_wording`` to word).

    jsonschema names each violation, but walking a value through it costs ten times
    more than code compiled from the schema (fastjsonschema), which stops at the first
    one. So a value is checked by the compiled code first, and only one it refuses goes
    through jsonschema, whose answer is the one that counts. That is sound because
    the compiled check never lets through what jsonschema refuses: it is used only for
    schemas made of ``_COMPILABLE`` keywords, which mean the same in fastjsonschema's
    draft 7 as in the draft jsonschema applies.
    """

    def __init__(self, schema: dict):
        self.validator = validator_for(schema)(schema)
        self.passes = _compiled_check(schema)

    def violations(self, value) -> list[jsonschema.ValidationError]:
        """Every violation, as jsonschema reports them, in the order of their place."""
        if self.passes is not None and self.passes(value):
            return []
        return sorted(self.validator.iter_errors(value), key=lambda e: list(e.absolute_path))

    def errors(self, value) -> list[str]:
        messages = []
        for error in self.violations(value):
            where = "/".join(str(part) for part in error.absolute_path)
            messages.append(f"{where}: {error.message}" if where else error.message)
        return messages


# Keywords that take only schemas, lists of schemas, or maps of names to schemas.
_SUBSCHEMA = {"items", "additionalProperties", "not", "propertyNames", "if", "then", "else"}
_SUBSCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}
_SUBSCHEMA_MAPS = {"properties", "patternProperties"}
# Out: $schema, $ref and friends (drafts differ), an array "items" (draft 7's tuples,
# 2020-12's error), "dependencies" (gone in 2020-12), "format" (asserted by fastjsonschema
# only, so merely slower), "multipleOf" and "uniqueItems" (float and bool equality).
_COMPILABLE = _SUBSCHEMA | _SUBSCHEMA_LISTS | _SUBSCHEMA_MAPS | {
    "type", "enum", "const", "required", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems", "maxItems",
    "minProperties", "maxProperties", "title", "description", "default", "examples",
    "$comment"}


def _compilable(schema) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or not set(schema) <= _COMPILABLE:
        return False
    for keyword, value in schema.items():
        if keyword in _SUBSCHEMA and not _compilable(value):
            return False
        if keyword in _SUBSCHEMA_LISTS and not (
                isinstance(value, list) and all(map(_compilable, value))):
            return False
        if keyword in _SUBSCHEMA_MAPS and not (
                isinstance(value, dict) and all(map(_compilable, value.values()))):
            return False
    # Python's equality takes 1 for True and 1.0 for 1; JSON Schema's only the latter.
    constants = [*schema.get("enum", []), *([schema["const"]] if "const" in schema else [])]
    return all(isinstance(value, str) or value is None for value in constants)


def _compiled_check(schema: dict):
    """A function answering whether a value satisfies ``schema``; None if the schema has
    keywords outside ``_COMPILABLE`` (or fastjsonschema cannot compile it)."""
    if not _compilable(schema):
        return None
    try:
        validate = fastjsonschema.compile(schema)
    except fastjsonschema.JsonSchemaDefinitionException:
        return None

    def passes(value) -> bool:
        try:
            validate(value)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return passes


@lru_cache(maxsize=512)
def _contract(schema_json: str) -> Contract:
    return Contract(json.loads(schema_json))


def contract_validator(schema: dict | None) -> Contract | None:
    """The contract of a schema, built once per schema; None if there is no contract."""
    if not schema:
        return None
    return _contract(json.dumps(schema, sort_keys=True))


def contract_errors(schema_or_contract, value) -> list[str]:
    """Every violation of a schema (or of a contract from ``contract_validator``) by
    ``value``, each naming where it is."""
    contract = (contract_validator(schema_or_contract)
                if isinstance(schema_or_contract, dict) else schema_or_contract)
    if contract is None:
        return []
    return contract.errors(value)


# What any stored JSON must be, schema or not: PostgreSQL's jsonb refuses NUL
# characters and non-finite numbers, and the CEL rules see every number as a double.
MAX_JSON_DEPTH = 32
_LARGEST_DOUBLE = 1.7976931348623157e308
# JSON may escape half of a UTF-16 pair alone ("\\ud800"); Python keeps it as a code
# point of its own, but it is no character: PostgreSQL refuses the text, so one such
# string would fail the whole write. (A pair the decoder joined is one code point.)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_PROBLEM = ("text may not contain a lone UTF-16 surrogate "
                      "(an invalid character such as \\ud800)")


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
            if not item.isascii() and _LONE_SURROGATE.search(item):
                return _at(where, _SURROGATE_PROBLEM)
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return _at(where, "a key may not contain the NUL character (\\u0000)")
                if not key.isascii() and _LONE_SURROGATE.search(key):
                    return _at(where, f"a key: {_SURROGATE_PROBLEM}")
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
