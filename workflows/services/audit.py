"""The audit trail (I7): append-only events, sealed into one hash chain.

Writers only insert an event carrying its own ``row_hash`` and take no lock, so
concurrent intake never waits on the chain. ``seal`` links committed events into
the chain in a single sealing process and signs the head; ``verify`` checks it.
"""

import hashlib
import json
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from workflows.models import AuditEvent


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)


def event_hash(event: AuditEvent) -> str:
    """What the chain vouches for: every field of the event but its id."""
    content = {
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "verb": event.verb,
        "object_type": event.object_type,
        "object_id": str(event.object_id),
        "case": event.case_id,
        "data": event.data,
    }
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def build(*, verb: str, object_type: str, object_id, actor=None, actor_label: str = "",
          case=None, case_id: int | None = None, data: dict | None = None,
          now: datetime | None = None) -> AuditEvent:
    """An unsaved event with its hash, for ``bulk_create`` in a batch."""
    if not actor_label:
        actor_label = actor.get_username() if actor is not None else "system"
    # A JSON round trip makes the hashed data exactly what the database will return.
    data = json.loads(_canonical(data or {}))
    event = AuditEvent(occurred_at=now or timezone.now(), actor=actor, actor_label=actor_label,
                       verb=verb, object_type=object_type, object_id=str(object_id),
                       case=case, data=data)
    if case is None and case_id is not None:
        event.case_id = case_id
    event.row_hash = event_hash(event)
    return event


def record(**kwargs) -> AuditEvent:
    """Write one event in the caller's transaction."""
    event = build(**kwargs)
    event.save()
    return event
