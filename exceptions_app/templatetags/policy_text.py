"""Template tags of the domain's pages: policy Markdown and data contracts in words.

``{% load policy_text %}``; the engine's templates never load it.
"""

import json

from django import template
from django.utils.safestring import mark_safe

from exceptions_app.contract_wording import field_title
from workflows.rich_text import sanitised_html

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Policy Markdown as HTML, cleaned by nh3 (an allow-list) before it is marked safe."""
    # The policy sits inside a page section: its headings start below the page's.
    return mark_safe(sanitised_html(text, heading_offset=2))


@register.filter
def pretty_json(value) -> str:
    """A JSON value indented for a <pre>; the template escapes it."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _schema_type(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = " or ".join(str(item) for item in kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"list of {_schema_type(schema['items'])}"
    if kind:
        return str(kind)
    for combinator, words in (("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")):
        if isinstance(schema.get(combinator), list):
            return words.join(_schema_type(part) for part in schema[combinator]
                              if isinstance(part, dict))
    return "any"


_SCHEMA_LIMITS = (("minimum", "at least {}"), ("exclusiveMinimum", "more than {}"),
                  ("maximum", "at most {}"), ("exclusiveMaximum", "less than {}"),
                  ("minLength", "at least {} characters"),
                  ("maxLength", "at most {} characters"), ("minItems", "at least {} items"),
                  ("maxItems", "at most {} items"), ("format", "format {}"),
                  ("pattern", "matches {}"))


@register.simple_tag
def schema_fields(schema) -> list[dict]:
    """A JSON Schema's top-level fields in words: name, type, required, limits and
    description. Empty when the schema names no properties."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return []
    required = set(schema.get("required") or [])
    rows = []
    for name, spec in schema["properties"].items():
        spec = spec if isinstance(spec, dict) else {}
        rules = [words.format(spec[key]) for key, words in _SCHEMA_LIMITS if key in spec]
        if isinstance(spec.get("enum"), list):
            rules.insert(0, "one of " + ", ".join(str(item) for item in spec["enum"]))
        rows.append({"name": name, "label": field_title(spec, name),
                     "type": _schema_type(spec),
                     "required": name in required, "rules": rules,
                     "description": spec.get("description", "")})
    return rows
