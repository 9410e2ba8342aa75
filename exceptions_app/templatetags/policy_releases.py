"""``{% load policy_releases %}``: whether a person may open a use case's policy release
pages (the use case page links to them only then)."""

from django import template

from exceptions_app import policy_selectors

register = template.Library()


@register.simple_tag
def may_see_policies(user, use_case) -> bool:
    return policy_selectors.may_see_policies(user=user, use_case=use_case)
