"""Processes and their escalation chains: changed by managers, audited before and after (I7).

A process's RACI matrix is edited through ``raci``; its name and its chain of escalation
levels through these. The admin calls them; nothing else writes a process or a level.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from workflows.models import EscalationLevel, Process, RaciAssignment
from workflows.services import audit, raci
from workflows.services.queues import require_manager
from workflows.verbs import AuditVerb

PROCESS_SETTINGS = ("slug", "name")
LEVEL_SETTINGS = ("level", "target", "time_limit", "queue", "notify_informed", "consult",
                  "consult_required", "outcome")
LEVEL_EDITABLE = (*LEVEL_SETTINGS, "users")


@transaction.atomic
def process_create(*, actor, slug: str, name: str, now: datetime | None = None) -> Process:
    require_manager(actor, "create processes")
    process = Process(slug=slug, name=name)
    process.full_clean()
    process.save()
    audit.record(actor=actor, verb=AuditVerb.PROCESS_CREATED, object_type="process",
                 object_id=process.pk, now=now,
                 data={"before": None, "after": audit.snapshot(process, PROCESS_SETTINGS)})
    return process


def process_update(*, process: Process, actor, now: datetime | None = None,
                   **changes) -> Process:
    """Rename a process; one ``process.changed`` event with before and after."""
    require_manager(actor, "change processes")
    return audit.edit_settings(process, changes=changes, fields=PROCESS_SETTINGS, actor=actor,
                               verb=AuditVerb.PROCESS_CHANGED, object_type="process",
                               slug_key="process", now=now)


def _chain(process: Process) -> list[dict]:
    return [audit.snapshot(level, LEVEL_EDITABLE)
            for level in EscalationLevel.objects.filter(process=process).order_by("level")]


def _set(level: EscalationLevel, values: Mapping) -> None:
    for name, value in values.items():
        if name in LEVEL_SETTINGS:
            setattr(level, name, value)
    level.full_clean(exclude=["process"], validate_constraints=False)
    level.save()
    if "users" in values:
        level.users.set(values["users"])


@transaction.atomic
def escalation_chain_edit(*, process: Process, actor, added: Iterable[Mapping] = (),
                          changed: Mapping[int, Mapping] | None = None,
                          removed: Iterable[int] = (),
                          now: datetime | None = None) -> list[EscalationLevel]:
    """Add, change and remove levels of the process's chain (values by the names in
    ``LEVEL_EDITABLE``; changed and removed levels by id); one ``escalation_chain.changed``
    event with the whole chain before and after. A change to nothing writes nothing."""
    require_manager(actor, "change escalation chains")
    added, changed, removed = list(added), dict(changed or {}), list(removed)
    for values in [*added, *changed.values()]:
        unknown = sorted(set(values) - set(LEVEL_EDITABLE))
        if unknown:
            raise TypeError(f"Not an escalation level setting: {', '.join(unknown)}.")
    # Edits of one process take turns, so before/after are exact.
    Process.objects.select_for_update().filter(pk=process.pk).first()
    before = _chain(process)
    levels = EscalationLevel.objects.filter(process=process)
    levels.filter(pk__in=removed).delete()
    for level in levels.filter(pk__in=list(changed)):
        _set(level, changed[level.pk])
    for values in added:
        _set(EscalationLevel(process=process), values)
    after = _chain(process)
    if before != after:
        audit.record(actor=actor, verb=AuditVerb.ESCALATION_CHAIN_CHANGED, object_type="process",
                     object_id=process.pk, now=now,
                     data={"process": process.slug, "before": before, "after": after})
    return list(levels.order_by("level"))


@transaction.atomic
def process_delete(*, process: Process, actor, now: datetime | None = None) -> None:
    """Remove a process: its matrix cell by cell through ``raci`` (audited), then the
    process and its chain, audited ``process.deleted`` with what they were."""
    require_manager(actor, "delete processes")
    now = now or timezone.now()
    raci.edit_entries(process=process, actor=actor, now=now,
                      removed=list(RaciAssignment.objects.filter(process=process)
                                   .values_list("pk", flat=True)))
    data = {"before": {**audit.snapshot(process, PROCESS_SETTINGS),
                       "escalation_chain": _chain(process)}, "after": None}
    process_id = process.pk
    process.delete()
    audit.record(actor=actor, verb=AuditVerb.PROCESS_DELETED, object_type="process",
                 object_id=process_id, now=now, data=data)
