"""Home's queue cards and cases in hand, written in Python: ``{% load home_panels %}``.

``{% queue_panel %}`` is what ``workflows/_queues.html`` wrote (that template now calls
the tag, for the cards' htmx refresh every 30 s); ``{% in_hand_panel %}`` what
``workflows/home.html`` wrote for "Your cases in hand", with ``workflows/_state.html``
for each row's state. Home is every reviewer's page, and the cards' and rows' loops,
lookups, include and tags cost more than the rest of its own markup. The former
templates are the reference, kept in ``tests/workflows/home_panels/``;
``test_home_panels.py`` holds the page equal to them, byte for byte, for every kind of
queue card and case in hand, in three time zones.
"""

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.urls import get_script_prefix, get_urlconf
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from workflows.templatetags.case_panels import case_url
from workflows.templatetags.casework import _route, _shown, age, due

register = template.Library()

_CSRF = CsrfTokenNode()
_BLIND = (' <span class="badge badge--blind" title="Reviewers decide from the input alone">'
          "Blind</span>")
_NO_QUEUE = ('\n  <div class="card empty">You are not a member of any queue yet. Ask a '
             "manager to add you to one.</div>\n")


@register.simple_tag(takes_context=True)
def queue_panel(context) -> SafeString:
    summaries = context.get("summaries")
    prefix, urlconf = get_script_prefix(), get_urlconf()
    home, next_case = _route("home", prefix, urlconf), _route("next-case", prefix, urlconf)
    if summaries:
        csrf = _CSRF.render(context)
        cards = "".join(_queue_card(summary, next_case, csrf) for summary in summaries)
        listed = f'\n  <ul class="queue-grid" role="list">\n    {cards}\n  </ul>\n'
    else:
        listed = _NO_QUEUE
    return mark_safe(
        f'\n<div id="queues" hx-get="{home}?fragment=queues" hx-trigger="every 30s"'
        f' data-poll-pauses-on-focus hx-swap="outerHTML">\n{listed}\n</div>\n')


def _queue_card(summary, next_case: str, csrf: str) -> str:
    queue = summary.queue
    name = conditional_escape(queue.name)
    oldest = conditional_escape(age(summary.oldest_open_at)) if summary.oldest_open_at else "—"
    return (
        f'\n      <li class="queue">\n        <h3>{name}{_BLIND if queue.blind else ""}</h3>\n'
        '        <div class="queue__stats">\n'
        f'          <div><div class="stat__value">{conditional_escape(summary.open_count_label)}'
        '</div><div class="stat__label">waiting</div></div>\n'
        f'          <div><div class="stat__value">{oldest}</div>'
        '<div class="stat__label">oldest wait</div></div>\n        </div>\n'
        f'        <form method="post" action="{next_case}">{csrf}\n'
        f'          <input type="hidden" name="queue" value="{conditional_escape(queue.slug)}">\n'
        '          <button type="submit" class="button--small"'
        f'{"" if summary.open_count else " disabled"}>Next from {name}</button>\n'
        "        </form>\n      </li>\n    ")


@register.simple_tag(takes_context=True)
def in_hand_panel(context) -> SafeString:
    cases = context.get("my_cases") or []
    if cases:
        rows = "".join(_case_in_hand(case) for case in cases)
        listed = (
            '\n    <div class="table-wrap">\n      <table class="table-stack">\n'
            '        <thead><tr><th scope="col">Case</th><th scope="col">Queue</th>'
            '<th scope="col">State</th><th scope="col">Priority</th><th scope="col">Due</th>'
            f"</tr></thead>\n        <tbody>\n          {rows}\n        </tbody>\n"
            "      </table>\n    </div>\n  ")
    else:
        listed = ('\n    <p class="empty">Nothing in hand. Press <kbd class="key">n</kbd> or '
                  "“Next case” to take one.</p>\n  ")
    return mark_safe(
        '<section class="card card--flush section" aria-labelledby="mine-heading">\n'
        '  <div class="card__head">\n    <h2 id="mine-heading">Your cases in hand</h2>\n'
        f'    <span class="muted">{_shown(len(cases))} case{"" if len(cases) == 1 else "s"}'
        f"</span>\n  </div>\n  {listed}\n</section>")


def _case_in_hand(case) -> str:
    return (
        "\n            <tr>\n"
        f'              <td data-label="Case"><a href="{case_url("case", case.pk)}">'
        f"{conditional_escape(case.title or case)}</a></td>\n"
        f'              <td data-label="Queue">{conditional_escape(case.queue.name)}</td>\n'
        f'              <td data-label="State"><span class="badge badge--'
        f'{conditional_escape(case.state)}">{conditional_escape(case.get_state_display())}'
        "</span>\n</td>\n"
        f'              <td data-label="Priority" class="num">{_shown(case.priority)}</td>\n'
        f'              <td data-label="Due">{due(case.due_at)}</td>\n            </tr>\n'
        "          ")
