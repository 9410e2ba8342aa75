"""The case page's decision panel written in Python: ``{% load decision_panel %}``.

``{% decision_panel panel.context hide_suggestion %}`` writes what
``exceptions_app/_case_decision.html``'s template markup wrote (the former markup is the
reference in ``tests/exceptions_app/test_decision_panel.py``, byte for byte): every case
page shows it, and its variables and filters cost the template language about half a
millisecond a view. The source document, rare, is still its own template.
"""

from django import template
from django.template.defaultfilters import capfirst, date, linebreaksbr, stringformat
from django.template.loader import get_template
from django.templatetags.static import static
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from exceptions_app.templatetags.policy_text import markdown
from workflows.templatetags.casework import percent, render_data

register = template.Library()

_BLIND_NOTE = (
    '\n    <section class="blind-note" aria-labelledby="suggestion-heading">\n'
    '      <h2 id="suggestion-heading">AI suggestion hidden</h2>\n'
    "      <p>This is a blind review: decide from the input alone. The AI's output and "
    "confidence appear once the case is resolved, so your verdict measures the AI instead "
    "of echoing it.</p>\n    </section>\n  ")
_TABS = (
    '\n    <link rel="stylesheet" href="{}">\n    \n'
    '    <input type="radio" name="decision-view" id="decision-view-fields" '
    'class="decision-view__switch" checked>\n'
    '    <input type="radio" name="decision-view" id="decision-view-document" '
    'class="decision-view__switch">\n'
    '    <div class="decision-view__tabs" aria-label="Show">\n'
    '      <label for="decision-view-fields">Fields</label>\n'
    '      <label for="decision-view-document">Document</label>\n'
    "    </div>\n    {}\n  ")
_RULES_HIDDEN = (
    "\n      <p class=\"muted\">The rules that fired are hidden with the suggestion: they "
    "would give the AI's answer away. The policy you decide by:</p>\n    ")


def _shown(value) -> str:
    """``{{ value }}``: localized and escaped."""
    return conditional_escape(localize(value))


def _key(item, name: str):
    """``{{ item.name }}`` of a JSON reason: its key, else nothing."""
    return item.get(name, "") if isinstance(item, dict) else getattr(item, name, "")


def _rule(reason) -> str:
    rule = _key(reason, "rule")
    return f"rule {_shown(rule)}" if rule else "policy default"


@register.simple_tag
def decision_panel(panel_context: dict, hide_suggestion: bool = False) -> SafeString:
    decision = panel_context["decision"]
    document, documents = panel_context.get("document"), panel_context.get("documents")
    received = template_localtime(decision.received_at)
    tabs = ""
    if documents:
        tabs = _TABS.format(static("css/documents.css"), get_template(
            "exceptions_app/_case_document.html").render(
                {"document": document, "documents": documents}))
    if hide_suggestion:
        suggestion = _BLIND_NOTE
        reasons = _RULES_HIDDEN
    else:
        explanation = (
            '\n        <h3 class="section-sm">Explanation</h3>\n'
            f'        <p class="explanation">{linebreaksbr(decision.explanation, True)}</p>\n'
            "      " if decision.explanation else "")
        suggestion = (
            '\n    <section class="card" aria-labelledby="suggestion-heading">\n'
            '      <div class="card__head">\n'
            '        <h2 id="suggestion-heading">AI output</h2>\n'
            f'        <span class="muted">Model <code>{_shown(decision.model_version)}</code>'
            "</span>\n      </div>\n"
            '      <div class="confidence">\n'
            '        <label for="confidence-meter">Confidence</label>\n'
            '        <meter id="confidence-meter" min="0" max="1" low="0.6" high="0.9" '
            f'optimum="1" value="{_shown(stringformat(decision.confidence, "f"))}">'
            f"{_shown(percent(decision.confidence))}</meter>\n"
            f'        <span class="confidence__value">{_shown(percent(decision.confidence))}'
            "</span>\n      </div>\n"
            f"      {render_data(decision.output)}\n      {explanation}\n"
            "    </section>\n  ")
        fired = "".join(
            '\n          <li class="reason">\n'
            f"            <div>{_shown(_key(reason, 'text'))}</div>\n"
            '            <div class="reason__rule">'
            f"{_rule(reason)} · {_shown(_key(reason, 'action'))}</div>\n          </li>\n        "
            for reason in decision.reasons or ())
        reasons = ('\n      <ul class="reasons">\n        '
                   + (fired or '\n          <li class="reason muted">No rule fired.</li>\n'
                               "        ")
                   + "\n      </ul>\n    ")
    policy = decision.policy_version
    number = _shown(policy.number)
    return mark_safe(
        f'\n<div class="decision-view{" decision-view--with-document" if documents else ""}">'
        f"\n  {tabs}\n"
        '  <div class="decision-view__fields stack">\n'
        '  <section class="card" aria-labelledby="input-heading">\n'
        '    <div class="card__head">\n'
        '      <h2 id="input-heading">Input</h2>\n'
        f'      <span class="muted">Received <time datetime="{received.isoformat()}">'
        f'{date(received, "M j, H:i T")}</time> from {_shown(decision.ai_system.name)}'
        "</span>\n    </div>\n"
        f"    {render_data(decision.input)}\n  </section>\n\n"
        f"  {suggestion}\n\n"
        '  <section class="card" aria-labelledby="reasons-heading">\n'
        '    <div class="card__head">\n'
        '      <h2 id="reasons-heading">Why a person sees this</h2>\n'
        f'      <span class="muted">Policy v{number} · {_shown(capfirst(decision.stage))}'
        " stage</span>\n    </div>\n"
        f"    {reasons}\n"
        '    <details class="policy-text" open>\n'
        f"      <summary>The policy these reasons come from (v{number})</summary>\n"
        '      <div class="markdown">'
        f"{markdown(policy.text)}</div>\n"
        "    </details>\n  </section>\n  </div>\n</div>\n")
