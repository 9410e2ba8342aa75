"""The one writer of a case's resolution and its audit event.

A person resolving (``transitions.resolve``) and the escalation chain's last level
deciding (``escalation``: reject or fall back, on behalf of the Accountable) store the
same ``Resolution`` row and audit the same verb with the same data, so the timeline, the
labelled data and the audit trail read both alike. Only the context differs: who acted
(a person, or ``SYSTEM`` on behalf of the owner) and what the caller adds (a blind
answer's differing fields; the escalation and the person it acted for).
"""

import contextlib
from datetime import datetime

from workflows.models import AuditEvent, Case, CaseState, Resolution
from workflows.services import audit
from workflows.verbs import AuditVerb


def store_resolution(*, case: Case, verdict: str, output: dict | None, reason_code: str,
                     notes: str, resolved_by, now: datetime) -> Resolution:
    """The case's resolution, written over any earlier one (a four-eyes case sent back
    and resolved again); approval starts empty."""
    resolution = new_resolution(case=case, verdict=verdict, output=output,
                                reason_code=reason_code, notes=notes,
                                resolved_by=resolved_by, now=now)
    return write_resolution(case=case, resolution=resolution)


def new_resolution(*, case: Case, verdict: str, output: dict | None, reason_code: str,
                   notes: str, resolved_by, now: datetime) -> Resolution:
    """``store_resolution``'s resolution, not yet written (``write_resolution``): what
    its audit event says is known before the case's save, so that the two go together."""
    values = {"verdict": verdict, "output": output, "reason_code": reason_code,
              "notes": notes or "", "resolved_by": resolved_by,
              "time_spent_seconds": case.time_spent_seconds, "created_at": now,
              "approved_by": None, "approved_at": None}
    earlier = None
    if Case.resolution.is_cached(case):  # read with the case (``db.case_for_change``)
        with contextlib.suppress(Resolution.DoesNotExist):  # read: it has none
            earlier = case.resolution
    if earlier is None:
        # Not ``Resolution(case=case)``: that would mark the case as read with this one.
        resolution = Resolution(case_id=case.pk)
        Resolution.case.field.set_cached_value(resolution, case)
    else:
        resolution = earlier
    for name, value in values.items():
        setattr(resolution, name, value)
    return resolution


def write_resolution(*, case: Case, resolution: Resolution) -> Resolution:
    """Write ``new_resolution``'s answer, after the case's conditional save: that save
    holds off any other writer of its resolution, so one statement does (not
    update_or_create's savepoints and read)."""
    if not resolution._state.adding:
        resolution.save(update_fields=RESOLUTION_FIELDS)
    elif Case.resolution.is_cached(case):  # known to have none
        resolution.save(force_insert=True)
    else:
        values = {name: getattr(resolution, name) for name in RESOLUTION_FIELDS}
        resolution, _ = Resolution.objects.update_or_create(case=case, defaults=values)
    case.resolution = resolution  # what the case answers with, no second read
    return resolution


# What a resolution (again) writes; ``case`` stays.
RESOLUTION_FIELDS = ["verdict", "output", "reason_code", "notes", "resolved_by",
                     "time_spent_seconds", "created_at", "approved_by", "approved_at"]


def resolution_event(*, case: Case, resolution: Resolution, actor, before: str,
                     now: datetime, **context) -> AuditEvent:
    """The unsaved audit event of a resolution: ``case.resolved``, or
    ``case.submitted_for_approval`` while a second person must confirm it (I7)."""
    verb = (AuditVerb.CASE_RESOLVED if case.state == CaseState.RESOLVED
            else AuditVerb.CASE_SUBMITTED_FOR_APPROVAL)
    return audit.build(
        actor=actor, verb=verb, object_type="case", object_id=case.pk, case=case, now=now,
        data={"from": before, "to": case.state, "version": case.version,
              "verdict": resolution.verdict, "output": resolution.output,
              "reason_code": resolution.reason_code, "notes": resolution.notes,
              "resolved_by": resolution.resolved_by_id,
              "time_spent_seconds": resolution.time_spent_seconds, **context})
