"""The top bar's menus, written in Python: ``{% load top_bar %}{% top_bar %}``.

What ``base.html`` wrote for a signed-in person (the main menu and the account menu),
on every page: its sixty-odd tags, conditions and lookups cost more than the rest of
the page's frame. The former ``base.html`` is the reference, kept in
``tests/workflows/top_bar/``; ``test_top_bar.py`` holds the two equal, byte for byte,
for every page's menu entry and every kind of person (working queues or not, approvals
and notifications waiting or not, manager, auditor, signed out).
"""

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.urls import get_script_prefix, get_urlconf
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from workflows.templatetags.casework import _route, _shown, display_name, initials

register = template.Library()

_CSRF = CsrfTokenNode()
_CURRENT = ' aria-current="page"'


@register.simple_tag(takes_context=True)
def top_bar(context) -> SafeString:
    user = context.get("user")
    if not (user and user.is_authenticated):
        return mark_safe("")
    nav, bar, perms = context.get("nav"), context.get("main_nav"), context.get("perms")
    prefix, urlconf = get_script_prefix(), get_urlconf()

    def link(route: str, key: str, label: str, after: str = "") -> str:
        current = _CURRENT if nav == key else ""
        return f'<a href="{_route(route, prefix, urlconf)}"{current}>{label}{after}</a>'

    works_queues = bar and bar.works_queues
    parts = ['\n        <nav class="nav" aria-label="Main">\n          ',
             link("home", "home", "Home"), "\n          "]
    if nav != "home" and works_queues:
        parts.append(
            "\n            \n"
            f'            <form method="post" action="{_route("next-case", prefix, urlconf)}"'
            f' class="nav__form">{_CSRF.render(context)}\n'
            '              <button type="submit" class="nav__button" data-shortcut="n"'
            ' aria-keyshortcuts="n">Next case</button>\n            </form>\n          ')
    parts.append("\n          ")
    if works_queues:
        parts.append(f'\n            {link("case-index", "cases", "Cases")}\n          ')
    parts.append("\n          ")
    if bar and bar.may_approve:
        waiting = bar.approvals
        count = (f' <span class="count" aria-label="{_shown(waiting)} waiting">'
                 f"{_shown(waiting)}</span>" if waiting else "")
        parts.append(f'\n            {link("approvals", "approvals", "Approvals", count)}'
                     "\n          ")
    parts.append("\n          ")
    for domain_link in bar.links if bar else ():
        current = _CURRENT if nav == domain_link["key"] else ""
        parts.append(f'\n            <a href="{conditional_escape(domain_link["url"])}"{current}>'
                     f'{conditional_escape(domain_link["label"])}</a>\n          ')
    unread = context.get("unread_notifications")
    unread_count = (f' <span class="count" aria-label="{_shown(unread)} unread">'
                    f"{_shown(unread)}</span>" if unread else "")
    parts += ["\n          ", link("my-consults", "consults", "Consults"), "\n          ",
              link("availability", "availability", "Availability"), "\n          ",
              link("notifications", "notifications", "Notifications", unread_count),
              "\n          "]
    if perms and perms["workflows"]["manage_cases"]:
        parts += ['\n            <span class="nav__divider" aria-hidden="true"></span>\n'
                  "            ", link("sla-dashboard", "dashboard", "Dashboard"),
                  "\n            ", link("raci-index", "raci", "RACI"),
                  "\n            ", link("queue-index", "queues", "Queues"),
                  "\n            ", link("delivery-log", "delivery-log", "Delivery log"),
                  "\n          "]
    parts.append("\n          ")
    if bar and bar.reads_audit_trail:
        parts.append(f'\n            {link("audit-log", "audit", "Audit log")}\n          ')
    name = conditional_escape(display_name(user))
    parts.append(
        '\n        </nav>\n        <details class="usermenu">\n'
        f'          <summary aria-label="Account menu for {name}"><span class="avatar"'
        f' aria-hidden="true">{conditional_escape(initials(user))}</span>'
        f'<span class="hide-narrow">{name}</span></summary>\n'
        '          <div class="usermenu__panel">\n'
        '            <p class="muted">Signed in as <strong>'
        f"{conditional_escape(user.get_username())}</strong></p>\n"
        '            <a class="usermenu__link" href="'
        f'{_route("profile", prefix, urlconf)}">Profile and time zone</a>\n'
        '            <a class="usermenu__link" href="'
        f'{_route("api-docs", prefix, urlconf)}">API docs</a>\n'
        f'            <form method="post" action="{_route("logout", prefix, urlconf)}">'
        f"{_CSRF.render(context)}\n"
        '              <button type="submit" class="button--ghost">Sign out</button>\n'
        "            </form>\n          </div>\n        </details>\n      ")
    return mark_safe("".join(parts))
