"""Template tags of the case pages: structured data, due times, people, events.

``{% load casework %}``. Generic: they know cases, users and JSON, never what a case is
about. Nothing here decides what a person may do; it only says things readably.
"""

import functools
from datetime import datetime, timedelta

from django import template
from django.core.signals import setting_changed
from django.template.defaultfilters import date
from django.templatetags.static import StaticNode
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from workflows import presentation, verbs
from workflows.presentation import PERSON_KEYS, field_label
from workflows.rich_text import sanitised_html
from workflows.services import sla

register = template.Library()
register.filter("field_label", field_label)
register.simple_tag(presentation.output_changes, name="output_changes")

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


@register.simple_tag
def due(moment: datetime | None, label: str = "", soon_minutes: int = 60) -> str:
    """A due time as a countdown: ``in 42 min``, ``overdue by 1h 05m``, in the page's
    zone. Built in Python rather than an included template: list pages show one per row."""
    if moment is None:
        return mark_safe('<span class="muted">—</span>')  # format_html wants arguments
    now = timezone.now()
    remaining = moment - now
    overdue = sla.reached(moment, now)  # overdue at the deadline's instant, as everywhere
    soon = not overdue and remaining <= timedelta(minutes=soon_minutes)
    text = ("due now" if not remaining else f"overdue by {_span(remaining)}" if overdue
            else f"in {_span(remaining)}")
    local = timezone.localtime(moment)
    # ISO 8601 and "2026-12-04 09:30 CET", as the date filter's "c" and "Y-m-d H:i T"
    # say them, by the datetime's own methods: a fifth of dateformat's cost.
    return format_html('<time class="due {}" datetime="{}" title="{}">{}{}</time>',
                       "due--overdue" if overdue else "due--soon" if soon else "",
                       local.isoformat(), f"{local:%Y-%m-%d %H:%M} {local.tzname()}",
                       f"{label} " if label else "", text)


@register.simple_tag
def case_rows(cases, case_base: str, tick: bool = False) -> str:
    """The case list's rows (``selectors.case_list_page``), written here rather than in a
    template loop: fifty rows are the list page's hot path, and this costs a third of
    what the template language does (docs/PERFORMANCE.md, "Finding cases")."""
    return format_html_join("\n", _CASE_ROW, (
        (format_html(_TICK, case.pk, case.label) if tick else "",
         case_base, case.pk, case.label, case.pk, case.queue.name, case.state,
         case.get_state_display(),
         case.assignee.display_name if case.assignee_id else _NOBODY, case.priority,
         due(case.due_at) if case.is_open else format_html(
             '<span class="muted">{}</span>', case.get_state_display().lower()))
        for case in cases))


_TICK = ('<td data-label="Tick"><input type="checkbox" name="cases" value="{}" form="bulk" '
         'aria-label="Tick {}"></td>')
_CASE_ROW = ('<tr>{}<td data-label="Case"><a href="{}{}/">{}</a> <span class="muted">#{}'
             '</span></td><td data-label="Queue">{}</td><td data-label="State"><span '
             'class="badge badge--{}">{}</span></td><td data-label="Assignee">{}</td>'
             '<td data-label="Priority" class="num">{}</td><td data-label="Due">{}</td></tr>')
_NOBODY = mark_safe('<span class="muted">nobody</span>')


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
    mentioned = [people[person] for person in data.get("mentioned") or []
                 if isinstance(person, int) and person in people]
    if mentioned:
        details.append(f"mentions {', '.join(mentioned)}")
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


@register.filter
def comment_html(markdown_text: str) -> str:
    """A comment's Markdown as HTML, cleaned by nh3 (an allow-list) before it is marked
    safe; its headings sit below the timeline's."""
    return mark_safe(sanitised_html(markdown_text, heading_offset=2))


@register.filter
def reason_label(code, reason_codes) -> str:
    for item in reason_codes or []:
        if item.get("code") == code:
            return item.get("label") or code
    return code


@register.simple_tag
def timeline_items(events, people=None, hide_suggestion: bool = False) -> SafeString:
    """The case page's timeline, its ``<li>`` items as the template loop wrote them
    (``tests/workflows/case_timeline.html`` keeps that loop as the reference;
    ``test_case_timeline.py`` holds the two equal, byte for byte). Written here: a case
    collects events all its life, and the loop's tags and filters cost about 0.1 ms an
    event."""
    items = [_timeline_item(event, people, hide_suggestion) for event in events]
    if not items:
        return mark_safe('\n        <li class="muted">No events yet.</li>\n      ')
    return mark_safe("".join(items))


def _timeline_item(event, people, hide_suggestion: bool) -> str:
    said = describe_event(event, people, hide_suggestion)
    details = (' <span class="muted">· '
               + " · ".join(conditional_escape(detail) for detail in said["details"])
               + "</span>") if said["details"] else ""
    moment = template_localtime(event.occurred_at)
    actor = (display_name(event.actor) if event.actor else event.actor_label)
    note = (f'<div class="timeline__note">{conditional_escape(said["text"])}</div>'
            if said["text"] else "")
    comment = ""
    if event.verb == "case.commented":
        data = event.data if isinstance(event.data, dict) else {}
        comment = (f'<div class="timeline__note comment" id="comment-'
                   f'{_shown(data.get("comment_id", ""))}">'
                   f'{comment_html(data.get("markdown", ""))}</div>')
    return (f'\n        \n        <li>\n          <div class="timeline__what">'
            f'{conditional_escape(said["what"])}{details}</div>\n'
            f'          <div class="timeline__when"><time datetime="{moment.isoformat()}">'
            f'{date(moment, "M j, H:i T")}</time> · {_shown(actor)}</div>\n'
            f"          {note}\n          {comment}\n        </li>\n      ")


def _shown(value) -> str:
    """``{{ value }}``: localized and escaped."""
    return conditional_escape(localize(value))


@register.simple_tag(takes_context=True)
def form_field(context, field) -> SafeString:
    """A form field with its label, help and errors: ``forms/_field.html``'s HTML
    (``test_form_field.py`` holds the two equal, byte for byte), written here for the
    case page, which shows up to a dozen fields on every view."""
    required = (' <span aria-hidden="true">*</span>'
                if field.field.required and context.get("show_required") else "")
    help_text = (f'<div class="field__help" id="{_shown(field.auto_id)}_helptext">'
                 f"{_shown(field.help_text)}</div>" if field.help_text else "")
    errors = field.errors
    listed = (f'<ul class="errorlist" id="{_shown(field.auto_id)}_error">'
              + "".join(f"<li>{_shown(error)}</li>" for error in errors) + "</ul>"
              if errors else "")
    return mark_safe(
        f'<div class="field{" field--error" if errors else ""}">\n'
        f'  <label for="{_shown(field.id_for_label)}">{_shown(field.label)}{required}'
        f"</label>\n  {field}\n  {help_text}\n  {listed}\n</div>\n")


class _RouteNode(template.Node):
    def __init__(self, name: str):
        self.name = name

    def render(self, context) -> SafeString:
        return _route(self.name, get_script_prefix(), get_urlconf())


@functools.cache
def _route(name: str, prefix: str, urlconf) -> SafeString:
    # Keyed by what ``reverse`` depends on besides the name: the script prefix the
    # server was mounted at and the request's urlconf.
    return conditional_escape(reverse(name, urlconf=urlconf))


@register.tag
def route(parser, token) -> _RouteNode:
    """``{% route 'name' %}``: ``{% url 'name' %}`` for a route without arguments,
    reversed once per process (the top bar links a dozen on every page, and reversing
    each cost more than the rest of the bar)."""
    bits = token.split_contents()
    if len(bits) != 2 or bits[1][0] not in "'\"" or bits[1][0] != bits[1][-1]:
        raise template.TemplateSyntaxError("{% route %} takes one quoted route name")
    return _RouteNode(bits[1][1:-1])


class _AssetNode(template.Node):
    def __init__(self, path: str):
        self.path = path

    def render(self, context) -> SafeString:
        return _asset(self.path)


@functools.cache
def _asset(path: str) -> SafeString:
    # What ``{% static %}`` answers depends on the path and on settings only (the storage,
    # its manifest, ``STATIC_URL``, ``DEBUG``), all fixed for a process's life.
    return conditional_escape(StaticNode.handle_simple(path))


def _forget_assets(**kwargs) -> None:
    # Settings change in tests only (``override_settings``): answer as the new ones say.
    _asset.cache_clear()


setting_changed.connect(_forget_assets)


@register.tag
def asset(parser, token) -> _AssetNode:
    """``{% asset 'path' %}``: ``{% static 'path' %}`` for a quoted path, found once per
    process (``base.html`` links six on every page, each asked of the storage anew)."""
    bits = token.split_contents()
    if len(bits) != 2 or bits[1][0] not in "'\"" or bits[1][0] != bits[1][-1]:
        raise template.TemplateSyntaxError("{% asset %} takes one quoted path")
    return _AssetNode(bits[1][1:-1])
