"""The plain form widgets written in Python: the same HTML as Django's widget templates.

Django renders every widget through its template engine: ``text.html`` includes
``input.html``, which includes ``attrs.html``, which loops over the attributes; about a
quarter of a millisecond per field here, and a case page shows a dozen fields (a
version in every action's form, the resolve form's inputs, the reason boxes), the
largest part of its template time. ``WidgetRenderer`` writes the HTML of the input
widgets, the textarea and the select in Python and leaves every other template (and
every widget whose option template is not Django's own) to Django. The forms of the
case pages use it (``workflows.forms``); ``tests/workflows/test_widget_html.py`` holds
it equal to Django's templates, widget by widget and form by form.
"""

from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeData
from django.utils.timezone import template_localtime

WIDGETS = "django/forms/widgets/"
OPTION = WIDGETS + "select_option.html"


def _text(value) -> str:
    """``{{ value }}`` in an autoescaping template (``render_value_in_context``)."""
    value = localize(template_localtime(value))
    return conditional_escape(value if isinstance(value, str) else str(value))


def _string(value) -> str:
    """``{{ value|stringformat:'s' }}``: ``str(value)``, left as it is when it was safe."""
    return str(value) if isinstance(value, SafeData) else escape(str(value))


def _attrs(attrs: dict) -> str:
    """``django/forms/widgets/attrs.html``."""
    return "".join(
        f" {_text(name)}" if value is True else f' {_text(name)}="{_string(value)}"'
        for name, value in attrs.items() if value is not False)


def _input(widget: dict) -> str:
    value = f' value="{_string(widget["value"])}"' if widget["value"] is not None else ""
    return (f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"'
            f'{value}{_attrs(widget["attrs"])}>')


def _textarea(widget: dict) -> str:
    value = _text(widget["value"]) if widget["value"] else ""
    return f'<textarea name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>\n{value}</textarea>'


def _select(widget: dict) -> str | None:
    parts = [f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            if option["template_name"] != OPTION:
                return None  # a widget of its own: Django renders it
            # The included option template keeps its final newline.
            parts.append(f'\n  <option value="{_string(option["value"])}"'
                         f'{_attrs(option["attrs"])}>{_text(option["label"])}</option>\n')
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


# Each of these templates is ``{% include "django/forms/widgets/input.html" %}``.
INPUT_TYPES = ("input", "text", "number", "hidden", "email", "url", "password", "search",
               "tel", "date", "datetime", "time", "color", "checkbox")
WRITERS = {
    **{f"{WIDGETS}{name}.html": _input for name in INPUT_TYPES},
    WIDGETS + "textarea.html": _textarea,
    WIDGETS + "select.html": _select,
}


class WidgetRenderer(DjangoTemplates):
    """Django's template renderer, with the plain widgets written in Python."""

    def render(self, template_name, context, request=None):
        write = WRITERS.get(template_name)
        widget = context.get("widget") if write is not None else None
        html = write(widget) if isinstance(widget, dict) else None
        return html if html is not None else super().render(template_name, context, request)


# One instance: its template engine (for everything else) is built once per process.
widget_renderer = WidgetRenderer()
