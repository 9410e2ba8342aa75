"""Helpers for the SLA tests: calendars, policy versions and cases opened through intake's
own path (``open_cases``), so that their clocks start as in production."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from workflows.actors import SYSTEM
from workflows.models import Calendar, CalendarClosure, Case
from workflows.services import sla
from workflows.services.cases import NewCase, open_cases

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE_HOURS = {str(day): [["09:00", "17:00"]] for day in range(5)}  # Monday to Friday


def berlin(*args) -> datetime:
    """A Berlin wall-clock reading as an aware datetime."""
    return datetime(*args, tzinfo=BERLIN)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def office_calendar(name: str = "Berlin office", *, holidays: str = "DE",
                    closures=()) -> Calendar:
    calendar = Calendar.objects.create(name=name, time_zone="Europe/Berlin",
                                       working_hours=OFFICE_HOURS, holiday_country=holidays)
    for starts_at, ends_at in closures:
        CalendarClosure.objects.create(calendar=calendar, starts_at=starts_at, ends_at=ends_at,
                                       reason="Team offsite")
    return calendar


def targets(response, resolution, *more) -> list[dict]:
    """``targets(1h, 8h)`` for priority 0; ``more`` adds ``(min_priority, response,
    resolution)`` rows."""
    rows = [{"min_priority": 0, "response_target": response, "resolution_target": resolution}]
    rows += [{"min_priority": p, "response_target": r, "resolution_target": s}
             for p, r, s in more]
    return rows


def publish(queue, *, response=timedelta(hours=1), resolution=timedelta(hours=8), more=(),
            calendar=None, fraction=0.75, restart_on_reassign=False, actor=SYSTEM, now=None):
    return sla.publish_sla_policy(
        queue=queue, targets=targets(response, resolution, *more), calendar=calendar,
        warning_fraction=fraction, actor=actor, now=now or datetime.now(UTC),
        restart_on_reassign=restart_on_reassign)


def open_case(queue, *, now, priority: int = 50, title: str = "Invoice") -> Case:
    (case,) = open_cases(specs=[NewCase(queue=queue, title=title, priority=priority)],
                         actor_label="test", now=now)
    return Case.objects.get(pk=case.pk)
