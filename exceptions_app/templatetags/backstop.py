"""Presentation helpers for the reviewer UI: structured data, Markdown, due times, events.

Nothing here decides what a person may do; it only says things readably.
"""

import json
import re
from datetime import datetime, timedelta

import markdown as markdown_lib
import nh3
from django import template
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

from workflows import verbs
from workflows.services import sla

register = template.Library()

# Markdown in policy texts may carry links, tables and lists, never scripts or styles.
_MARKDOWN_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "strong", "sub", "sup",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
}


_HEADING = re.compile(r"<(/?)h([1-6])\b")


@register.filter
def markdown(text: str) -> str:
    """Policy Markdown as HTML, cleaned by nh3 (an allow-list) before it is marked safe."""
    html = markdown_lib.markdown(text or "", extensions=["tables", "sane_lists"])
    # The policy sits inside a page section: its headings start below the page's.
    html = _HEADING.sub(lambda m: f"<{m[1]}h{min(int(m[2]) + 2, 6)}", html)
    return mark_safe(nh3.clean(html, tags=_MARKDOWN_TAGS,
                               link_rel="noopener noreferrer nofollow"))


@register.filter
def field_label(key) -> str:
    """``po_amount`` -> ``Po amount``; keys stay recognisable but read as words."""
    words = str(key).replace("_", " ").replace("-", " ").strip()
    return capfirst(words) if words else str(key)


def _scalar(value):
    if value is None:
        return format_html('<span class="value--null">{}</span>', "empty")
    if isinstance(value, bool):
        return format_html('<span class="value--bool">{}</span>', "Yes" if value else "No")
    if isinstance(value, int | float):
        return format_html('<span class="value--number">{}</span>', _number(value))
    if value == "":
        return format_html('<span class="value--null">blank</span>')
    return format_html("{}", value)


def _number(value) -> str:
    if isinstance(value, float) and abs(value) < 1e15 and round(value, 2) == value:
        return f"{value:,.2f}"  # money-like: 62.70, 1,672.00
    if isinstance(value, float):
        return f"{value:,}"
    return f"{value:,}" if abs(value) >= 10000 else str(value)


def _summary(value) -> str:
    if isinstance(value, dict):
        return f"{len(value)} field{'s' if len(value) != 1 else ''}"
    return f"{len(value)} item{'s' if len(value) != 1 else ''}"


def _render(value, depth: int):
    if isinstance(value, dict):
        if not value:
            return format_html('<span class="value--null">no fields</span>')
        rows = format_html_join(
            "", '<dt>{}<span class="key" aria-hidden="true">{}</span></dt><dd>{}</dd>',
            ((field_label(key), key if field_label(key).lower() != str(key).lower() else "",
              _nested(item, depth + 1)) for key, item in value.items()))
        return format_html('<dl class="data">{}</dl>', rows)
    if isinstance(value, list):
        if not value:
            return format_html('<span class="value--null">{}</span>', "no items")
        if _is_table(value):
            return _table(value)
        items = format_html_join("", "<li>{}</li>", ((_nested(item, depth + 1),)
                                                     for item in value))
        return format_html("<ol>{}</ol>", items)
    return _scalar(value)


def _is_table(items: list) -> bool:
    """A list of flat records with the same fields reads best as a table."""
    if not all(isinstance(item, dict) and item for item in items):
        return False
    keys = list(items[0])
    return (len(keys) <= 8 and all(list(item) == keys for item in items)
            and not any(isinstance(v, dict | list) for item in items for v in item.values()))


def _table(items: list[dict]):
    keys = list(items[0])
    head = format_html_join("", '<th scope="col">{}</th>', ((field_label(k),) for k in keys))
    body = format_html_join("", "<tr>{}</tr>", (
        (format_html_join("", '<td{}>{}</td>', (
            (mark_safe(' class="num"') if isinstance(item[k], int | float)
             and not isinstance(item[k], bool) else "", _scalar(item[k])) for k in keys)),)
        for item in items))
    return format_html('<div class="table-wrap"><table class="data-table"><thead><tr>{}</tr>'
                       "</thead><tbody>{}</tbody></table></div>", head, body)


def _nested(value, depth: int):
    if isinstance(value, dict | list) and value:
        # Nested objects and lists fold away; a small one right under a field stays open.
        open_attr = mark_safe(" open") if depth <= 1 and len(value) <= 8 else ""
        return format_html("<details{}><summary>{}</summary>{}</details>",
                           open_attr, _summary(value), _render(value, depth))
    return _render(value, depth)


@register.filter
def render_data(value):
    """A JSON value as a definition list: fields, not a dump; nested data collapsible."""
    return _render(value, 0)


@register.filter
def render_value(value):
    """One JSON value inline (a nested one collapsible)."""
    return _nested(value, 1)


@register.filter
def percent(value) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return ""


def _span(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes = seconds // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{max(minutes, 1)} min" if minutes or seconds else "now"


@register.filter
def age(moment: datetime | None) -> str:
    """How long ago: ``3h 05m``."""
    if moment is None:
        return "—"
    if isinstance(moment, timedelta):
        return _span(moment)
    return _span(timezone.now() - moment)


@register.inclusion_tag("exceptions_app/_due.html")
def due(moment: datetime | None, label: str = "", soon_minutes: int = 60):
    """A due time as a countdown: ``in 42 min``, ``overdue by 1h 05m``."""
    if moment is None:
        return {"moment": None, "label": label}
    now = timezone.now()
    remaining = moment - now
    overdue = sla.reached(moment, now)  # overdue at the deadline's instant, as everywhere
    soon = not overdue and remaining <= timedelta(minutes=soon_minutes)
    text = ("due now" if not remaining else f"overdue by {_span(remaining)}" if overdue
            else f"in {_span(remaining)}")
    return {"moment": moment, "label": label, "text": text,
            "css": "due--overdue" if overdue else "due--soon" if soon else ""}


@register.filter
def initials(user) -> str:
    name = user.display_name.strip()
    parts = name.split()
    return "".join(part[0] for part in parts[:2]) if len(parts) > 1 else name[:2]


@register.filter
def display_name(user) -> str:
    if user is None:
        return "nobody"
    return user.display_name


@register.filter
def display_names(users) -> str:
    """People by name, "nobody" when there are none (an empty RACI cell)."""
    return ", ".join(display_name(user) for user in users) if users else "nobody"


# Data keys worth a word in the timeline; anything else stays in the admin's raw view.
_DETAIL_KEYS = (
    ("queue", "queue {}"), ("priority", "priority {}"), ("verdict", "{}"),
    ("reason_code", "reason code {}"), ("route", "route {}"), ("model_version", "model {}"),
    ("policy_version", "policy v{}"), ("level", "level {}"),
)
# Keys that name a person by id; the view looks the names up in one query.
PERSON_KEYS = ("assignee", "to_assignee", "from_assignee", "first_reviewer")
# On a blind case these would give the AI's answer away (the verdict of a blind
# answer says whether it matched the AI's).
_SUGGESTION_KEYS = {"route", "confidence", "verdict"}
_TEXT_KEYS = ("reason", "comment", "notes", "answer")
_ROUTINE_REASONS = {"review", "qa-sample"}


@register.simple_tag
def describe_event(event, people=None, hide_suggestion: bool = False) -> dict:
    """``{"what", "details", "text"}`` for one audit event, in a reviewer's words."""
    data = event.data if isinstance(event.data, dict) else {}
    people = people or {}
    what = verbs.wording(event.verb)
    details = []
    for key, words in _DETAIL_KEYS:
        value = data.get(key)
        if value in (None, "", [], {}) or (hide_suggestion and key in _SUGGESTION_KEYS):
            continue
        details.append(words.format(value))
    for key in PERSON_KEYS:
        name = people.get(data[key]) if isinstance(data.get(key), int) else None
        if not name:
            continue
        if key == "first_reviewer":
            details.append(f"first reviewer {name}")
        elif key == "to_assignee" or event.verb == verbs.AuditVerb.CASE_SENT_BACK:
            details.append(f"to {name}")
        else:
            details.append(f"from {name}")
    if not hide_suggestion and isinstance(data.get("confidence"), int | float):
        details.append(f"confidence {percent(data['confidence'])}")
    if data.get("qa_sampled") or data.get("reason") == "qa-sample":
        details.append("QA sample")
    if isinstance(data.get("time_spent_seconds"), int) and data["time_spent_seconds"] > 0:
        details.append(f"{_span(timedelta(seconds=data['time_spent_seconds']))} spent")
    texts = [data[key] for key in _TEXT_KEYS
             if isinstance(data.get(key), str) and data[key].strip()
             and not (key == "reason" and data[key] in _ROUTINE_REASONS)]
    return {"what": what, "details": details, "text": "\n".join(texts)}


def people_in(events) -> set:
    """The user ids an event list mentions, for one name lookup."""
    ids = set()
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        ids.update(data[key] for key in PERSON_KEYS if isinstance(data.get(key), int))
    return ids


@register.simple_tag
def output_changes(ai_output, human_output, changed_only=False) -> list[dict]:
    """Field by field: what the AI said and what the person decided; ``changed`` as the
    engine compares them (``transitions.differing_fields``: 4094 and 4094.0 agree)."""
    from workflows.services.transitions import differing_fields

    ai_output = ai_output if isinstance(ai_output, dict) else {}
    human_output = human_output if isinstance(human_output, dict) else {}
    differing = set(differing_fields(suggested=ai_output, answer=human_output))
    keys = list(ai_output) + [key for key in human_output if key not in ai_output]
    rows = [{"label": field_label(key), "ai": ai_output.get(key),
             "human": human_output.get(key), "changed": key in differing}
            for key in keys]
    return [row for row in rows if row["changed"]] if changed_only else rows


@register.filter
def reason_label(code, reason_codes) -> str:
    for item in reason_codes or []:
        if item.get("code") == code:
            return item.get("label") or code
    return code


class MainNav:
    """For the top bar: how many approvals wait for this person, and do they work any
    queue (then "Next case" is worth offering, and so are approvals). Each answer is one
    query, asked only when the bar shows it; a manager works every queue."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def approvals(self) -> int:
        from workflows import selectors

        return selectors.pending_approvals(user=self.user).count()

    @cached_property
    def works_queues(self) -> bool:
        from workflows import selectors

        return (selectors.is_manager(self.user)
                or selectors.member_queues(user=self.user).exists())

    @property
    def may_approve(self) -> bool:
        return bool(self.approvals) or self.works_queues


@register.simple_tag
def main_nav(user) -> MainNav:
    return MainNav(user)


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
        rows.append({"name": name, "label": field_label(name), "type": _schema_type(spec),
                     "required": name in required, "rules": rules,
                     "description": spec.get("description", "")})
    return rows
