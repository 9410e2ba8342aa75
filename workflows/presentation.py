"""Saying case data readably, for pages and forms alike (the ``casework`` and
``raci_tags`` template tags wrap these): field labels, people an event list names, an
output compared field by field, what changed behind a stale page, the RACI matrix as
rows.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.text import capfirst
from django.utils.timesince import timesince

from workflows import verbs
from workflows.actors import SYSTEM
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
        if isinstance(data.get("mentioned"), list):  # a comment's mentions
            ids.update(person for person in data["mentioned"] if isinstance(person, int))
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


# How a stale page names its own reader's changes: the same person, elsewhere.
YOU_ELSEWHERE = "you, in another tab or window"
CHANGES_SHOWN = 5


@dataclass(frozen=True)
class ChangesSince:
    """Who changed a case behind a page, and what they did, newest last."""

    who: str  # "Maria Lindqvist", "you, in another tab or window", "A and B"
    changes: list[str]  # "Maria Lindqvist: escalated, 2 minutes ago"
    earlier: int  # changes before the ones listed, left to the timeline

    @property
    def only_you(self) -> bool:
        return self.who == YOU_ELSEWHERE


def changes_since(events, *, viewer, now: datetime) -> ChangesSince | None:
    """``events`` (``selectors.changes_since``) as the stale page says them: who by
    display name (the viewer as "you, in another tab or window"), what in the audit
    vocabulary's words, when as a time ago. None when no event says."""
    events = list(events)
    if not events:
        return None
    names = []
    for event in events:
        name = _actor_name(event, viewer)
        if name not in names:
            names.append(name)
    shown = events[-CHANGES_SHOWN:]
    return ChangesSince(
        who=" and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names),
        changes=[_change(event, viewer, now) for event in shown],
        earlier=len(events) - len(shown))


def _change(event, viewer, now: datetime) -> str:
    what = verbs.wording(event.verb)
    what = what[:1].lower() + what[1:] if what[1:2].islower() else what  # "SLA warning"
    return f"{capfirst(_actor_name(event, viewer))}: {what}, {_ago(event.occurred_at, now)}"


def _actor_name(event, viewer) -> str:
    if event.actor_id is not None and event.actor_id == viewer.pk:
        return YOU_ELSEWHERE
    if event.actor is not None:
        return event.actor.display_name
    return "the system" if event.actor_label == SYSTEM.label else event.actor_label


def _ago(moment: datetime, now: datetime) -> str:
    if now - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment, now, depth=1)} ago"


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
