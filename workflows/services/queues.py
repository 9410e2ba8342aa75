"""Queues: created and changed by managers, every change audited with before and after (I7).

The admin, and any page or API that edits a queue, call these; nothing else writes a
queue's settings or members. (``last_pushed_to`` is the engine's own bookkeeping of push
assignment, kept by ``assignment``.)
"""

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from workflows import actors, selectors
from workflows.models import Queue
from workflows.services import audit
from workflows.verbs import AuditVerb

# What a manager may set on a queue.
SETTINGS = ("slug", "name", "description", "lease_seconds", "blind", "response_target",
            "resolution_target", "process", "assignment_mode", "max_open_per_reviewer")
MEMBERSHIP = ("members", "member_groups")
EDITABLE = SETTINGS + MEMBERSHIP


def require_manager(actor, what: str) -> None:
    """A manager, or the system itself (seeding); a missing actor is a bug (TypeError)."""
    actors.require(actor)
    if not actors.is_system(actor) and not selectors.is_manager(actor):
        raise PermissionDenied(f"Only managers may {what}.")


def _unknown(values: dict) -> None:
    unknown = sorted(set(values) - set(EDITABLE))
    if unknown:
        raise TypeError(f"Not a queue setting: {', '.join(unknown)}.")


def queue_create(*, actor, now: datetime | None = None, **values) -> Queue:
    """A new queue with ``values`` (names from ``EDITABLE``); audited ``queue.created``."""
    require_manager(actor, "create queues")
    _unknown(values)
    with transaction.atomic():
        queue = Queue(**{name: value for name, value in values.items() if name in SETTINGS})
        queue.full_clean()
        queue.save()
        for name in MEMBERSHIP:
            if name in values:
                getattr(queue, name).set(values[name])
        audit.record(actor=actor, verb=AuditVerb.QUEUE_CREATED, object_type="queue",
                     object_id=queue.pk, now=now,
                     data={"before": None, "after": audit.snapshot(queue, EDITABLE)})
    return queue


def queue_update(*, queue: Queue, actor, now: datetime | None = None, **changes) -> Queue:
    """Change a queue's settings or members; one ``queue.changed`` event with the fields
    that differ, before and after. A change to nothing writes nothing."""
    require_manager(actor, "change queues")
    return audit.edit_settings(queue, changes=changes, fields=EDITABLE, actor=actor,
                               verb=AuditVerb.QUEUE_CHANGED, object_type="queue",
                               slug_key="queue", now=now or timezone.now())
