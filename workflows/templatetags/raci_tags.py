"""The RACI matrix as rows a template can lay out: ``{% raci_rows process as rows %}``."""

from django import template

from workflows.models import RaciRole
from workflows.presentation import matrix_rows

register = template.Library()


@register.simple_tag
def raci_rows(process) -> list[dict]:
    return matrix_rows(process)


@register.simple_tag
def raci_roles() -> list[tuple[str, str]]:
    return list(RaciRole.choices)
