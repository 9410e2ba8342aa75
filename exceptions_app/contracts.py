"""Data contracts: a use case's optional JSON Schemas for input and output.

One validator checks every value, valid or not: jsonschema-rs, compiled from the schema
once, for every draft a schema may declare (4, 6, 7, 2019-09, 2020-12; none declared is
2020-12). It names each violation with where it is and the keyword it breaks; the
sentences are jsonschema's (the reference implementation), which the intake API has
always answered, written here from the keyword, its value in the schema and the value
found. ``tests/exceptions_app/test_contract_equivalence.py`` holds both to the same
answers, draft by draft and keyword by keyword.
"""

import json
import re
from dataclasses import dataclass
from functools import lru_cache

import jsonschema_rs
from django.core.exceptions import ValidationError

# The drafts a schema may declare; jsonschema-rs validates each by its own rules.
SUPPORTED_DRAFTS = {
    "http://json-schema.org/draft-04/schema": "draft 4",
    "http://json-schema.org/draft-06/schema": "draft 6",
    "http://json-schema.org/draft-07/schema": "draft 7",
    "https://json-schema.org/draft/2019-09/schema": "draft 2019-09",
    "https://json-schema.org/draft/2020-12/schema": "draft 2020-12",
}


def check_schema(schema: dict) -> None:
    """Refuse a schema that is not itself valid JSON Schema of a supported draft."""
    declared = schema.get("$schema") if isinstance(schema, dict) else None
    if declared is not None and str(declared).rstrip("#") not in SUPPORTED_DRAFTS:
        raise ValidationError(
            f"Not a valid JSON Schema: its $schema {declared!r} is not a draft Backstop "
            f"validates; declare one of {', '.join(SUPPORTED_DRAFTS.values())} "
            f"(or none, for 2020-12).")
    try:
        jsonschema_rs.meta.validate(schema)
        _validator(schema)
    except jsonschema_rs.ValidationError as exc:
        where = "/".join(map(str, exc.instance_path))
        raise ValidationError(
            f"Not a valid JSON Schema: {f'at {where}: ' if where else ''}{exc.message}"
        ) from None
    except jsonschema_rs.ReferencingError as exc:
        raise ValidationError(f"Not a valid JSON Schema: {exc}") from None


def _validator(schema: dict):
    # Formats are annotations, as they have been here: "format" is not asserted.
    return jsonschema_rs.validator_for(schema, validate_formats=False)


@dataclass(frozen=True)
class Violation:
    """One way a value breaks its contract."""

    path: tuple  # where in the value: keys and indexes
    keyword: str | None  # the keyword broken; None for a ``false`` schema
    expected: object  # that keyword's value in the schema
    instance: object  # the value found there
    schema: dict  # the (sub)schema holding the keyword
    message: str  # jsonschema's sentence


class Contract:
    """A schema ready to check values against: ``violations(value)`` lists every way a
    value breaks it (for ``contract_wording`` to word), ``errors(value)`` the same as
    "path: sentence" lines (the intake API's answer)."""

    def __init__(self, schema: dict):
        self.schema = schema
        self.validator = _validator(schema)

    def violations(self, value) -> list[Violation]:
        """Every violation, in the order of their place (as jsonschema's, sorted by
        path: within one place, in the order of the schema's keywords)."""
        found = {}
        for error in self.validator.iter_errors(value):
            order = _evaluation_order(self.schema, error.evaluation_path)
            for rank, violation in _violations(self.schema, value, error, order):
                # "required" and a list's extra items come once per field or item:
                # jsonschema says it once for them all.
                found.setdefault((violation.path, violation.keyword, violation.message),
                                 ((list(violation.path), rank), violation))
        return [violation for _, violation in sorted(found.values(), key=lambda e: e[0])]

    def errors(self, value) -> list[str]:
        return [f"{'/'.join(map(str, violation.path))}: {violation.message}"
                if violation.path else violation.message
                for violation in self.violations(value)]


_MISSING = object()


def _walk(document, path):
    for part in path:
        try:
            document = document[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return document


def _evaluation_order(root: dict, evaluation_path) -> tuple:
    """Where a keyword comes in jsonschema's walk of the schema: at each step, the
    keyword's position in its schema (local ``$ref``s followed)."""
    order, schema = [], root
    for part in evaluation_path:
        if isinstance(schema, dict) and part in schema:
            order.append(list(schema).index(part))
        elif isinstance(schema, list) and isinstance(part, int):
            order.append(part)
        else:
            order.append(0)
        schema = _walk(schema, [part])
        if isinstance(schema, str) and part == "$ref" and schema.startswith("#"):
            schema = _walk(root, [_unescape(step) for step in schema[1:].split("/")[1:]])
    return tuple(order)


def _unescape(step: str):
    step = step.replace("~1", "/").replace("~0", "~")
    return int(step) if step.isdigit() else step


def _violations(root: dict, value, error, order: tuple) -> list[tuple[tuple, Violation]]:
    """The violations one error of jsonschema-rs stands for, each with its rank among
    those of its place."""
    path = tuple(error.instance_path)
    schema_path = list(error.schema_path)
    holder = _walk(root, schema_path[:-1])
    keyword = schema_path[-1] if schema_path else None
    if error.kind.name == "falseSchema":
        if keyword == "items" and isinstance(holder, dict) and "prefixItems" in holder:
            # Items past prefixItems where "items" is false: one refusal of the list.
            listed = _walk(value, path[:-1])
            prefix, extra = len(holder["prefixItems"]), len(listed) - len(holder["prefixItems"])
            rest = listed[prefix:] if extra != 1 else listed[prefix]
            return [(order, Violation(
                path[:-1], "items", False, listed, holder,
                f"Expected at most {prefix} {'items' if prefix != 1 else 'item'} but found "
                f"{extra} extra: {rest!r}"))]
        # (jsonschema places this refusal at the object holding the field.)
        return [(order, Violation(path, None, False, _walk(value, path), {}, error.message))]
    instance = _walk(value, path)
    if instance is _MISSING or not isinstance(holder, dict) or keyword not in holder:
        # A place outside the root schema (a remote $ref): jsonschema-rs's own sentence.
        return [(order, Violation(path, error.kind.name, None, error.instance, {},
                                  error.message))]
    expected = holder[keyword]
    if keyword in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(expected, bool):
        keyword = keyword[len("exclusive"):].lower()  # draft 4: a flag on minimum/maximum
        expected = holder[keyword]
    if keyword in ("contains", "minContains", "maxContains"):
        keyword, message = _contains(instance, holder, root)
        return [(order, Violation(path, keyword, holder[keyword], instance, holder, message))]
    if "propertyNames" in error.evaluation_path and isinstance(instance, dict):
        # A name the keyword refuses, as jsonschema says it: name by name.
        return [((n, *order), Violation(path, keyword, expected, name, holder, message))
                for n, name in enumerate(instance)
                if not _is_valid({keyword: expected}, name, root)
                for message in _messages(keyword, expected, name, holder, error, root)]
    return [((*order, n), Violation(path, keyword, expected, instance, holder, message))
            for n, message in enumerate(
                _messages(keyword, expected, instance, holder, error, root))]


def _messages(keyword: str, expected, instance, schema: dict, error, root) -> list[str]:
    """jsonschema's sentences for ``instance`` breaking ``keyword`` (4.x wording)."""
    if keyword == "required":
        return [f"{name!r} is a required property" for name in expected
                if name not in instance]
    if keyword in ("dependentRequired", "dependencies"):
        return [f"{each!r} is a dependency of {name!r}"
                for name, needs in expected.items() if name in instance
                and isinstance(needs, list) for each in needs if each not in instance]
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return [f"{instance!r} is not of type {', '.join(map(repr, kinds))}"]
    if keyword == "enum":
        return [f"{instance!r} is not one of {expected!r}"]
    if keyword == "const":
        return [f"{expected!r} was expected"]
    if keyword in _LIMITS:
        return [_LIMITS[keyword](instance, expected, schema)]
    if keyword in _SIZES:
        empty, one, other = _SIZES[keyword]
        return [f"{instance!r} {empty if expected == 0 else one if expected == 1 else other}"]
    if keyword == "uniqueItems":
        return [f"{instance!r} has non-unique elements"]
    if keyword == "pattern":
        return [f"{instance!r} does not match {expected!r}"]
    if keyword == "anyOf" or type(error.kind).__name__ == "OneOfNotValid":
        return [f"{instance!r} is not valid under any of the given schemas"]
    if keyword == "oneOf":
        valid = [option for option in expected if _is_valid(option, instance, root)]
        return [f"{instance!r} is valid under each of "
                f"{', '.join(map(repr, [*valid[1:], *valid[:1]]))}"]
    if keyword == "not":
        return [f"{instance!r} should not be valid under {expected!r}"]
    if keyword == "additionalProperties" and expected is False:
        extras = sorted(error.kind.unexpected, key=str)
        if "patternProperties" in schema:
            return [f"{', '.join(map(repr, extras))} "
                    f"{'does' if len(extras) == 1 else 'do'} not match any of the regexes: "
                    f"{', '.join(map(repr, sorted(schema['patternProperties'])))}"]
        return [f"Additional properties are not allowed ({_extras(extras)} unexpected)"]
    if keyword == "unevaluatedProperties":
        if expected is False:
            extras = sorted(error.kind.unexpected, key=str)
            return [f"Unevaluated properties are not allowed ({_extras(extras)} unexpected)"]
        unexpected = set(error.kind.unexpected)
        return ["Unevaluated properties are not valid under the given schema "
                f"({_extras([key for key in instance if key in unexpected])} "
                "unevaluated and invalid)"]
    return [error.message]


def _contains(instance: list, schema: dict, root: dict) -> tuple[str, str]:
    """The keyword of "contains" (or its bounds) a list breaks, and jsonschema's sentence."""
    if str(root.get("$schema", "")).rstrip("#") in _DRAFTS_6_7:
        return "contains", f"None of {instance!r} are valid under the given schema"
    matches = sum(_is_valid(schema["contains"], item, root) for item in instance)
    if matches > schema.get("maxContains", len(instance)):
        return "maxContains", ("Too many items match the given schema "
                               f"(expected at most {schema['maxContains']})")
    if not matches:
        return "contains", f"{instance!r} does not contain items matching the given schema"
    return "minContains", ("Too few items match the given schema (expected at least "
                           f"{schema.get('minContains', 1)} but only {matches} matched)")


_DRAFTS_6_7 = ("http://json-schema.org/draft-06/schema", "http://json-schema.org/draft-07/schema")


def _is_valid(schema, instance, root: dict) -> bool:
    """Whether ``instance`` satisfies a part of ``root`` (under ``root``'s draft)."""
    if isinstance(schema, dict) and "$schema" in root:
        schema = {"$schema": root["$schema"], **schema}
    try:
        return _validator(schema).is_valid(instance)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError):
        return False  # an option that refers outside itself: not named


def _extras(extras: list) -> str:
    return f"{', '.join(map(repr, extras))} {'was' if len(extras) == 1 else 'were'}"


def _below(instance, limit, schema) -> str:
    exclusive = schema.get("exclusiveMinimum") is True
    return (f"{instance!r} is {'less than or equal to' if exclusive else 'less than'} "
            f"the minimum of {limit!r}")


def _above(instance, limit, schema) -> str:
    exclusive = schema.get("exclusiveMaximum") is True
    return (f"{instance!r} is {'greater than or equal to' if exclusive else 'greater than'} "
            f"the maximum of {limit!r}")


_LIMITS = {
    "minimum": _below,
    "maximum": _above,
    "exclusiveMinimum": lambda instance, limit, _: (
        f"{instance!r} is less than or equal to the minimum of {limit!r}"),
    "exclusiveMaximum": lambda instance, limit, _: (
        f"{instance!r} is greater than or equal to the maximum of {limit!r}"),
    "multipleOf": lambda instance, limit, _: f"{instance!r} is not a multiple of {limit}",
}
# What jsonschema says of a too short or too long string, list or object: when the
# limit is 0, when it is 1, otherwise.
_SIZES = {
    "minLength": ("is too short", "should be non-empty", "is too short"),
    "maxLength": ("is expected to be empty", "is too long", "is too long"),
    "minItems": ("is too short", "should be non-empty", "is too short"),
    "maxItems": ("is expected to be empty", "is too long", "is too long"),
    "minProperties": ("does not have enough properties", "should be non-empty",
                      "does not have enough properties"),
    "maxProperties": ("is expected to be empty", "has too many properties",
                      "has too many properties"),
}


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

    Iterative, so a hostile nesting depth cannot exhaust the stack. A value that plainly
    has no problem (nearly every one) is passed by ``_plainly_storable``'s walk, which
    keeps no paths.
    """
    return None if _plainly_storable(value, 0) else _named_problem(value)


def _named_problem(value) -> str | None:
    """``json_value_problem``'s full walk, naming where."""
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


def _plainly_storable(item, depth: int) -> bool:
    """Whether ``json_value_problem`` finds nothing in ``item`` at ``depth``: the same
    checks without naming where (the recursion stops past ``MAX_JSON_DEPTH``)."""
    if depth > MAX_JSON_DEPTH:
        return False
    kind = type(item)
    if kind is str:
        return "\x00" not in item and (item.isascii() or not _LONE_SURROGATE.search(item))
    if kind is dict:
        for key, child in item.items():
            if "\x00" in key or not (key.isascii() or not _LONE_SURROGATE.search(key)):
                return False
            if not _plainly_storable(child, depth + 1):
                return False
        return True
    if kind is list:
        return all(_plainly_storable(child, depth + 1) for child in item)
    if kind is bool or item is None:
        return True
    if kind is int or kind is float:
        return -_LARGEST_DOUBLE <= item <= _LARGEST_DOUBLE
    return False  # anything else: the full walk decides


def _at(where: str, problem: str) -> str:
    return f"{where}: {problem}" if where else problem
