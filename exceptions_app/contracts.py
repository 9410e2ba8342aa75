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


def contract_errors(schema: dict | None, value) -> list[str]:
    """Every violation of ``schema`` by ``value``, each naming where it is."""
    if not schema:
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    messages = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages
