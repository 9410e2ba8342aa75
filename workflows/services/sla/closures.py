"""Business calendars' custom closures, and the running clocks they move."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from workflows.business_time import BusinessCalendar, add_business_time, business_time_between
from workflows.models import RUNNING_STATES, AuditEvent, Calendar, CalendarClosure, Case
from workflows.services import audit
from workflows.services.sla.clocks import next_check_at
from workflows.services.sla.nudges import nudge
from workflows.services.sla.policies import REAPPLY_CHUNK, _require_manager
from workflows.services.sla.terms import _ZERO, CLOSURE_LOOKBACK, TermsBook, business_calendar
from workflows.verbs import AuditVerb


def add_closure(*, calendar: Calendar, starts_at: datetime, ends_at: datetime,
                reason: str = "", actor, now: datetime) -> CalendarClosure:
    """Close the calendar for a period (a shutdown, an offsite); audited.

    Clocks computed from now on skip it (new cases, resumes, priority changes,
    reassignments, re-applications), and the running clocks of the open cases whose
    policy uses this calendar move with it (``_move_clocks``): each deadline and warning
    still ahead keeps the business time it had left. ``actor``: a manager, or ``None``
    for the system.
    """
    _require_manager(actor, "change a business calendar")
    if starts_at is None or starts_at.tzinfo is None:
        raise ValidationError({"starts_at": ["Give the start with its time zone offset."]})
    if ends_at is None or ends_at.tzinfo is None:
        raise ValidationError({"ends_at": ["Give the end with its time zone offset."]})
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": ["A closure ends after it starts."]})
    with transaction.atomic():
        before = _closures_of(calendar, now=now)
        closure = CalendarClosure.objects.create(calendar=calendar, starts_at=starts_at,
                                                 ends_at=ends_at, reason=reason or "")
        audit.record(actor=actor, verb=AuditVerb.CALENDAR_CLOSURE_ADDED, object_type="calendar",
                     object_id=calendar.pk, now=now,
                     data={"calendar": calendar.name, "closure": closure.pk,
                           "starts_at": starts_at, "ends_at": ends_at,
                           "reason": closure.reason})
    _move_clocks(calendar, closure, change="added", before=before, actor=actor, now=now)
    return closure


def remove_closure(*, calendar: Calendar, closure_id: int, actor, now: datetime) -> None:
    """Open the calendar again for a closed period; audited. Like ``add_closure``, it
    changes the clocks computed from now on and moves the running ones. An unknown (or
    already removed) closure raises ``CalendarClosure.DoesNotExist``."""
    _require_manager(actor, "change a business calendar")
    with transaction.atomic():
        # Locked, so that two removals of one closure write one event.
        closure = CalendarClosure.objects.select_for_update().get(pk=closure_id,
                                                                   calendar=calendar)
        before = _closures_of(calendar, now=now)
        audit.record(actor=actor, verb=AuditVerb.CALENDAR_CLOSURE_REMOVED, object_type="calendar",
                     object_id=calendar.pk, now=now,
                     data={"calendar": calendar.name, "closure": closure.pk,
                           "starts_at": closure.starts_at, "ends_at": closure.ends_at,
                           "reason": closure.reason})
        closure.delete()
        closure.pk = closure_id  # for the events that say why clocks moved
    _move_clocks(calendar, closure, change="removed", before=before, actor=actor, now=now)


def _closures_of(calendar: Calendar, *, now: datetime) -> list[CalendarClosure]:
    return list(calendar.closures.filter(ends_at__gt=now - CLOSURE_LOOKBACK)
                .order_by("starts_at"))


def _move_clocks(calendar: Calendar, closure: CalendarClosure, *, change: str,
                 before: list[CalendarClosure], actor, now: datetime) -> int:
    """Move the running clocks of the open cases on ``calendar`` from its closures
    ``before`` to its closures now; answer how many cases moved.

    Each instant still ahead (deadlines and warnings, response and resolution) keeps the
    business time it had left at ``now``; one already passed stays where it was, so a
    case already breached stays breached. Waiting cases keep their paused business time
    (``sla_remaining``) and take the new calendar when they resume. Like
    ``reapply_policy``: chunks, each its own transaction with its rows locked, one
    ``case.sla_calendar_changed`` event per case that moved (before and after), and a
    ``calendar.clocks_moved`` summary.
    """
    old = business_calendar(calendar, before)
    new = business_calendar(calendar, _closures_of(calendar, now=now))
    moved, last_id = 0, 0
    while True:
        with transaction.atomic():
            chunk = list(Case.objects.filter(sla_policy__calendar=calendar,
                                             state__in=RUNNING_STATES, pk__gt=last_id)
                         .order_by("pk").select_for_update(of=("self",))[:REAPPLY_CHUNK])
            if not chunk:
                break
            last_id = chunk[-1].pk
            moved += _move_chunk(chunk, old=old, new=new, closure=closure, change=change,
                                 actor=actor, now=now)
    audit.record(actor=actor, verb=AuditVerb.CALENDAR_CLOCKS_MOVED, object_type="calendar",
                 object_id=calendar.pk, now=now,
                 data={"calendar": calendar.name, "closure": closure.pk, "change": change,
                       "cases": moved})
    return moved


_CLOCK_FIELDS = ("response_warn_at", "response_due_at", "warn_at", "due_at")


def _move_chunk(chunk: list[Case], *, old: BusinessCalendar, new: BusinessCalendar,
                closure: CalendarClosure, change: str, actor, now: datetime) -> int:
    book = TermsBook(now=now).load_cases(chunk)
    changed, events = [], []
    for case in chunk:
        before = {name: getattr(case, name) for name in _CLOCK_FIELDS}
        after = {name: _moved(instant, old=old, new=new, now=now)
                 for name, instant in before.items()}
        if after == before:
            continue
        for name, instant in after.items():
            setattr(case, name, instant)
        case.sla_next_check_at = next_check_at(case, book.rules(case), now=now)
        case.bump_version()  # the rows are locked: nobody else writes them meanwhile
        changed.append(case)
        events.append(audit.build(
            verb=AuditVerb.CASE_SLA_CALENDAR_CHANGED, object_type="case", object_id=case.pk,
            case=case, actor=actor, now=now,
            data={"closure": closure.pk, "change": change, "version": case.version,
                  "before": before, "after": after}))
    Case.objects.bulk_update(changed, [*_CLOCK_FIELDS, "sla_next_check_at", "version"])
    AuditEvent.objects.bulk_create(events)
    nudge(changed, now=now)
    return len(changed)


def _moved(instant: datetime | None, *, old: BusinessCalendar, new: BusinessCalendar,
           now: datetime) -> datetime | None:
    """Where an instant of a running clock lies on the new calendar: past ones stay."""
    if instant is None or instant <= now:
        return instant
    left = business_time_between(old, now, instant)
    return add_business_time(new, now, left) if left > _ZERO else instant
