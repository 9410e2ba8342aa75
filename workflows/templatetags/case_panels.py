"""The case page's side panels, written in Python: ``{% load case_panels %}``.

``{% actions_panel %}`` is what ``workflows/_actions.html`` with its
``_reason_form.html``, ``_resolve_form.html`` and ``forms/_errors.html`` wrote;
``{% sla_panel %}`` what ``workflows/_sla.html`` wrote (that template now calls the tag,
for the panel's htmx refresh). Both panels are on every view of a case, and their
templates' includes, tags and lookups cost more than the rest of the page's own markup.
The former templates are the reference, kept in ``tests/workflows/case_panels/``;
``test_case_panels.py`` holds each tag equal to them, byte for byte, for every state and
person that changes what a panel shows.
"""

import functools

from django import template
from django.template.defaultfilters import date
from django.template.defaulttags import CsrfTokenNode
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from workflows.models import CaseState
from workflows.templatetags.casework import _shown, display_name, due, form_field

register = template.Library()

_CSRF = CsrfTokenNode()
# A case number no case has: where it lands in a route's path, any case's goes.
_ANY_CASE = 987654321987654321


def case_url(name: str, pk: int) -> str:
    """``{% url name pk %}`` for a route of one case, its path worked out once per process
    (the panels link five such routes on every view; each ``reverse`` cost more than the
    rest of its form)."""
    head, tail = _case_route(name, get_script_prefix(), get_urlconf())
    return f"{head}{int(pk)}{tail}"


@functools.cache
def _case_route(name: str, prefix: str, urlconf) -> tuple[str, str]:
    # Keyed by what ``reverse`` depends on besides the name, as ``{% route %}``.
    head, found, tail = conditional_escape(
        reverse(name, args=[_ANY_CASE], urlconf=urlconf)).partition(str(_ANY_CASE))
    assert found and str(_ANY_CASE) not in tail, name
    return head, tail


@register.simple_tag(takes_context=True)
def actions_panel(context) -> SafeString:
    forms = context.get("forms") or {}
    case = context["case"]
    csrf = _CSRF.render(context)
    blocking = context.get("consults_blocking")
    resolve, approve = forms.get("resolve"), forms.get("approve")

    def url(name: str) -> str:
        return case_url(name, case.pk)

    def simple(action: str, name: str, button: str, pad: str = "") -> str:
        # A form whose only field is the version the page showed (I4).
        form = forms[action]
        return (f'<form method="post" action="{url(name)}">{csrf}'
                f"{form['version'].as_hidden()}{_errors(form)}\n"
                f'{pad}      <button type="submit" class="button--primary button--block">'
                f"{button}</button>\n{pad}    </form>")

    def reason(action: str, name: str, field: str, button: str, *, danger=False) -> str:
        form = forms[action]
        look = ' class="button--danger"' if danger else ""
        return (f'<form method="post" action="{url(name)}" novalidate>{csrf}\n'
                f"  {_errors(form)}\n  {form['version'].as_hidden()}\n"
                f"  {form_field(context, form[field])}\n"
                f'  <button type="submit"{look}>{button}</button>\n</form>\n')

    def opened(action: str) -> str:
        return " open" if forms[action].errors else ""

    parts = ['\n<section class="card actions" aria-labelledby="actions-heading">\n'
             f'  <h2 id="actions-heading" tabindex="-1">'
             f'{"Your decision" if resolve else "Actions"}</h2>\n\n  ']
    if blocking and (resolve or approve):
        names = ", ".join(conditional_escape(display_name(consult.consultee))
                          for consult in blocking)
        parts.append(
            '\n    <p class="alert alert--info" id="consults-pending">This case cannot be '
            f'{"approved" if approve else "resolved"} until {names} '
            f'answer{"s" if len(blocking) == 1 else ""} the consult '
            '(<a href="#consults">see the consults</a>'
            f'{"; you can fill in your decision meanwhile" if resolve else ""}).</p>\n  ')
    parts.append("\n\n  ")
    if "claim" in forms:
        parts.append(f"\n    {simple('claim', 'case-claim', 'Take this case')}\n  ")
    parts.append("\n\n  ")
    if "resume" in forms:
        parts.append("\n    <p>Waiting for information. Resume when it has arrived: the case "
                     "is yours again and its SLA clock runs.</p>\n"
                     f"    {simple('resume', 'case-resume', 'Resume the case')}\n  ")
    parts.append("\n\n  ")
    if resolve:
        parts.append(f"\n    {_resolve_form(context, resolve, case, csrf, url)}\n  ")
    parts.append("\n\n  ")
    if approve or "send_back" in forms:
        parts.append(f"\n    <p>{conditional_escape(display_name(case.first_reviewer))} "
                     "resolved this case; it needs a second person's confirmation.</p>\n    ")
        if approve:
            parts.append("\n      " + simple("approve", "case-approve",
                                                "Approve the resolution", pad="  ") + "\n    ")
        parts.append("\n    ")
        if "send_back" in forms:
            parts.append(f"\n      <details{opened('send_back')}>\n"
                         "        <summary>Send back with a comment</summary>\n"
                         f"        {reason('send_back', 'case-send-back', 'comment', 'Send back')}"
                         "\n      </details>\n    ")
        parts.append("\n  ")
    parts.append("\n\n  ")
    if "escalate" in forms:
        parts.append(f'\n    <details data-shortcut="e" aria-keyshortcuts="e"'
                     f"{opened('escalate')}>\n"
                     '      <summary>Escalate <kbd class="key" aria-hidden="true">e</kbd>'
                     "</summary>\n"
                     f"      {reason('escalate', 'case-escalate', 'reason', 'Escalate')}"
                     "\n    </details>\n  ")
    parts.append("\n\n  ")
    if "request_info" in forms:
        parts.append(f"\n    <details{opened('request_info')}>\n"
                     "      <summary>Request information</summary>\n      "
                     + reason("request_info", "case-request-info", "reason",
                              "Request information")
                     + "\n    </details>\n  ")
    parts.append("\n\n  ")
    if "release" in forms:
        form = forms["release"]
        parts.append("\n    <details>\n      <summary>Release</summary>\n"
                     '      <p class="muted">Give the case back to its queue for someone else '
                     "to take.</p>\n"
                     f'      <form method="post" action="{url("case-release")}">{csrf}'
                     f"{form['version'].as_hidden()}{_errors(form)}\n"
                     '        <button type="submit">Release to the queue</button>\n'
                     "      </form>\n    </details>\n  ")
    parts.append("\n\n  ")
    if "reassign" in forms:
        form = forms["reassign"]
        parts.append(f"\n    <details{opened('reassign')}>\n"
                     '      <summary>Reassign <span class="badge badge--outline">manager</span>'
                     "</summary>\n"
                     f'      <form method="post" action="{url("case-reassign")}" novalidate>'
                     f"{csrf}\n        {_errors(form)}\n"
                     f"        {form['version'].as_hidden()}\n"
                     f"        {form_field(context, form['to_user'])}\n"
                     '        <button type="submit">Reassign</button>\n'
                     "      </form>\n    </details>\n  ")
    parts.append("\n\n  ")
    if "cancel" in forms:
        parts.append(f"\n    <details{opened('cancel')}>\n"
                     '      <summary>Cancel the case <span class="badge badge--outline">manager'
                     "</span></summary>\n      "
                     + reason("cancel", "case-cancel", "reason", "Cancel the case", danger=True)
                     + "\n    </details>\n  ")
    parts.append("\n\n  ")
    if not forms:
        said = ("Nothing for you to do on this case now." if case.is_open else
                f"This case is {conditional_escape(case.get_state_display().lower())}.")
        parts.append(f'\n    <p class="muted">{said}</p>\n  ')
    parts.append("\n\n  ")
    if resolve or "escalate" in forms:
        keys = "".join(f'<span><kbd class="key">{_shown(option["key"])}</kbd> '
                       f'{conditional_escape(str(option["label"]).lower())}</span>'
                       for option in resolve.verdict_options) if resolve else ""
        escalate = ('<span><kbd class="key">e</kbd> escalate</span>'
                    if "escalate" in forms else "")
        parts.append('\n    <p class="shortcuts" aria-label="Keyboard shortcuts">\n'
                     f"      {keys}{escalate}\n    </p>\n  ")
    parts.append("\n</section>\n")
    return mark_safe("".join(parts))


def _errors(form) -> str:
    """``forms/_errors.html``."""
    errors = form.non_field_errors()
    listed = ('<ul class="errorlist nonfield" role="alert">'
              + "".join(f"<li>{_shown(error)}</li>" for error in errors) + "</ul>"
              if errors else "")
    return listed + "\n"


def _resolve_form(context, form, case, csrf: str, url) -> str:
    """``workflows/_resolve_form.html``."""
    verdict = form["verdict"]
    errors = verdict.errors
    error_id = f"{_shown(verdict.auto_id)}_error"
    options = "".join(
        f'\n        <label class="verdict{" verdict--reject" if option["reject"] else ""}">'
        f'<input type="radio" name="{_shown(verdict.html_name)}" value="{_shown(option["value"])}"'
        f' data-shortcut="{_shown(option["key"])}"'
        + (f' data-shortcut-focus="#{_shown(option["focus"])}"' if option["focus"] else "")
        + f' aria-keyshortcuts="{_shown(option["key"])}"'
        f'{" checked" if option["checked"] else ""}><span>{_shown(option["label"])} '
        f'<kbd aria-hidden="true">{_shown(option["key"])}</kbd></span></label>\n      '
        for option in form.verdict_options)
    corrections = "".join(f"\n      {form_field(context, field)}\n    "
                          for field in form.correction_fields)
    four_eyes = case.requires_four_eyes
    return (
        f'<form class="resolve-form" method="post" action="{url("case-resolve")}" novalidate>'
        f"{csrf}\n  {_errors(form)}\n  {form['version'].as_hidden()}\n"
        "  <fieldset"
        + (f' class="field--error" aria-describedby="{error_id}"' if errors else "")
        + '>\n    <legend>Verdict</legend>\n    <div class="verdicts">\n      '
        f"{options}\n    </div>\n    "
        + (f'<ul class="errorlist" id="{error_id}">'
           + "".join(f"<li>{_shown(error)}</li>" for error in errors) + "</ul>"
           if errors else "")
        + "\n  </fieldset>\n\n"
        '  <fieldset class="correction correction--toggle">\n'
        f'    <legend>{"Your answer" if form.blind else "Corrected output"}</legend>\n    '
        f"{corrections}\n  </fieldset>\n\n"
        f"  {form_field(context, form['reason_code'])}\n"
        f"  {form_field(context, form['notes'])}\n"
        '  <button type="submit" id="resolve-submit" class="button--primary button--block">'
        f'{"Submit for approval" if four_eyes else "Resolve the case"}</button>\n  '
        + ('<p class="field__help">Four eyes: a second reviewer confirms this before it '
           "counts.</p>" if four_eyes else "")
        + "\n</form>\n")


@register.simple_tag(takes_context=True)
def sla_panel(context) -> SafeString:
    case = context["case"]

    def time(moment, shown: str) -> str:
        # ``<time datetime="{{ moment|date:'c' }}">{{ moment|date:shown }}</time>``
        local = template_localtime(moment)
        return (f'<time datetime="{conditional_escape(date(local, "c"))}">'
                f"{conditional_escape(date(local, shown))}</time>")

    late = '<span class="due--overdue">Late</span>'
    refresh = (f' hx-get="{case_url("case", case.pk)}?fragment=sla"'
               ' hx-trigger="every 60s" hx-swap="outerHTML"' if case.is_open else "")
    if case.first_claimed_at:
        was_late = case.response_due_at and case.first_claimed_at > case.response_due_at
        response = (f"\n        <div>{late if was_late else 'On time'}</div>\n"
                    f'        <div class="sla__sub">responded '
                    f'{time(case.first_claimed_at, "M j, H:i T")}</div>\n      ')
    elif case.response_due_at and case.escalation_level:
        response = (f"\n        <div>{late}</div>\n"
                    '        <div class="sla__sub">escalated before anyone responded</div>'
                    "\n      ")
    elif case.is_open:
        response = f"\n        <div>{due(case.response_due_at)}</div>\n      "
    else:
        response = '<div class="muted">—</div>'
    if case.closed_at:
        was_late = case.due_at and case.closed_at > case.due_at
        resolution = (f"\n        <div>{late if was_late else 'On time'}</div>\n"
                      f'        <div class="sla__sub">closed {time(case.closed_at, "M j, H:i T")}'
                      "</div>\n      ")
    elif case.state == CaseState.WAITING:
        resolution = ("\n        <div>Paused</div>\n"
                      '        <div class="sla__sub">waiting for information</div>\n      ')
    else:
        resolution = f"\n        <div>{due(case.due_at)}</div>\n      "
    lease = (f'\n    <p class="muted sla__lease">Claim held until '
             f'{time(case.lease_expires_at, "H:i T")}; untouched after that, the case returns '
             "to the queue.</p>\n  "
             if case.state == CaseState.ASSIGNED and case.lease_expires_at else "")
    return mark_safe(
        f'\n<section class="card" id="sla" aria-labelledby="sla-heading"{refresh}>\n'
        '  <h2 id="sla-heading">SLA</h2>\n  <div class="sla">\n    <div class="sla__item">\n'
        f'      <div class="sla__label">First response</div>\n      {response}\n    </div>\n'
        '    <div class="sla__item">\n      <div class="sla__label">Resolution</div>\n'
        f"      {resolution}\n    </div>\n  </div>\n  {lease}\n</section>\n")
