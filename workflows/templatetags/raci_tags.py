"""The RACI matrix as rows a template can lay out: ``{% raci_rows process as rows %}``."""

from django import template

from workflows.models import Activity, RaciRole
from workflows.services import raci

register = template.Library()


def matrix_rows(process) -> list[dict]:
    """``[{"activity", "label", "cells": [{"role", "role_label", "holders"}]}]`` in the
    order of ``Activity`` and R, A, C, I; empty for no process. One query."""
    if process is None:
        return []
    grid = raci.matrix(process=process)
    return [{"activity": activity, "label": label,
             "cells": [{"role": role, "role_label": role_label,
                        "holders": grid[activity][role]}
                       for role, role_label in RaciRole.choices]}
            for activity, label in Activity.choices]


@register.simple_tag
def raci_rows(process) -> list[dict]:
    return matrix_rows(process)


@register.simple_tag
def raci_roles() -> list[tuple[str, str]]:
    return list(RaciRole.choices)
