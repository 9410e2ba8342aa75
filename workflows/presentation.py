"""Saying case data readably, for pages and forms alike (the ``casework`` and
``raci_tags`` template tags wrap these): field labels, people an event list names, an
output compared field by field, the RACI matrix as rows.
"""

from django.utils.text import capfirst

from workflows.models import RaciRole, activity_choices
from workflows.services import raci
from workflows.services.transitions import differing_fields

# Keys of an audit event's data that name a person by id; a page looks the names up in
# one query.
PERSON_KEYS = ("assignee", "to_assignee", "from_assignee", "first_reviewer")


def field_label(key) -> str:
    """``po_amount`` -> ``Po amount``; keys stay recognisable but read as words."""
    words = str(key).replace("_", " ").replace("-", " ").strip()
    return capfirst(words) if words else str(key)


def people_in(events) -> set:
    """The user ids an event list mentions, for one name lookup."""
    ids = set()
    for event in events:
        data = event.data if isinstance(event.data, dict) else {}
        ids.update(data[key] for key in PERSON_KEYS if isinstance(data.get(key), int))
    return ids


def output_changes(suggested, answer, changed_only=False) -> list[dict]:
    """Field by field: what the machine suggested and what the person decided; ``changed``
    as the engine compares them (``transitions.differing_fields``: 4094 and 4094.0 agree)."""
    suggested = suggested if isinstance(suggested, dict) else {}
    answer = answer if isinstance(answer, dict) else {}
    differing = set(differing_fields(suggested=suggested, answer=answer))
    keys = list(suggested) + [key for key in answer if key not in suggested]
    rows = [{"label": field_label(key), "suggested": suggested.get(key),
             "answer": answer.get(key), "changed": key in differing}
            for key in keys]
    return [row for row in rows if row["changed"]] if changed_only else rows


def matrix_rows(process) -> list[dict]:
    """``[{"activity", "label", "cells": [{"role", "role_label", "holders"}]}]`` in the
    order of ``activity_choices`` and R, A, C, I; empty for no process. One query."""
    if process is None:
        return []
    grid = raci.matrix(process=process)
    return [{"activity": activity, "label": label,
             "cells": [{"role": role, "role_label": role_label,
                        "holders": grid[activity][role]}
                       for role, role_label in RaciRole.choices]}
            for activity, label in activity_choices()]
