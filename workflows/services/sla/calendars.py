"""Business calendars: created and changed by managers, audited before and after (I7).

A calendar's working hours are checked where they are saved, by the same code that
turns them into business time (``business_time.BusinessCalendar``), so a calendar that
is stored is one the clocks can use. A change applies to clocks computed from then on;
running clocks keep their due times (closures, which move them, are ``closures``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import transaction

from workflows.models import Calendar
from workflows.services import audit
from workflows.services.sla.policies import _require_manager
from workflows.services.sla.terms import business_calendar
from workflows.verbs import AuditVerb

CALENDAR_SETTINGS = ("name", "time_zone", "working_hours", "holiday_country",
                     "holiday_subdivision")


def _check(calendar: Calendar) -> None:
    calendar.full_clean()
    try:
        ZoneInfo(calendar.time_zone)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ValidationError({"time_zone": [
            f"{calendar.time_zone!r} is not a time zone; use a name like "
            f"'Europe/Berlin' or 'UTC'."]}) from exc
    try:
        business_calendar(calendar)
    except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
        field = "holiday_country" if "holiday" in str(exc).lower() else "working_hours"
        raise ValidationError({field: [str(exc)]}) from exc


@transaction.atomic
def calendar_create(*, actor, now: datetime | None = None, **values) -> Calendar:
    """A new business calendar; audited ``calendar.created``."""
    _require_manager(actor, "create business calendars")
    unknown = sorted(set(values) - set(CALENDAR_SETTINGS))
    if unknown:
        raise TypeError(f"Not a calendar setting: {', '.join(unknown)}.")
    calendar = Calendar(**values)
    _check(calendar)
    calendar.save()
    audit.record(actor=actor, verb=AuditVerb.CALENDAR_CREATED, object_type="calendar",
                 object_id=calendar.pk, now=now,
                 data={"calendar": calendar.name, "before": None,
                       "after": audit.snapshot(calendar, CALENDAR_SETTINGS)})
    return calendar


@transaction.atomic
def calendar_update(*, calendar: Calendar, actor, now: datetime | None = None,
                    **changes) -> Calendar:
    """Change a calendar's hours, zone or holidays; one ``calendar.changed`` event with
    the fields that differ. A change to nothing writes nothing."""
    _require_manager(actor, "change business calendars")
    unknown = sorted(set(changes) - set(CALENDAR_SETTINGS))
    if unknown:
        raise TypeError(f"Not a calendar setting: {', '.join(unknown)}.")
    calendar = Calendar.objects.select_for_update().get(pk=calendar.pk)
    before = audit.snapshot(calendar, CALENDAR_SETTINGS)
    for name, value in changes.items():
        setattr(calendar, name, value)
    _check(calendar)
    calendar.save()
    audit.record_changes(before=before, after=audit.snapshot(calendar, CALENDAR_SETTINGS),
                         actor=actor, verb=AuditVerb.CALENDAR_CHANGED, object_type="calendar",
                         object_id=calendar.pk, now=now, calendar=calendar.name)
    return calendar
