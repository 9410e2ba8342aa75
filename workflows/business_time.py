"""Business time: SLA clocks that run only while a queue is staffed.

Pure functions over a ``BusinessCalendar`` (no database): ``add_business_time`` turns a
target into a due time, ``business_time_between`` measures what a clock has used (a clock
paused while a case waits resumes with ``target - elapsed`` left), ``is_open`` and
``next_opening`` answer "is anyone at work now?".

How wall-clock hours meet real time (DST). A working interval is two readings of the local
clock on one local date. It opens at the first instant the clock shows its start and closes
at the first instant after that the clock shows its end; business time is the real (UTC)
time in between. So:

- 09:00-17:00 is 8 hours on every day whose clock change happens at night, including the
  change days themselves; a night without work is unaffected by a change in it.
- An interval that spans a change is measured in real elapsed time: 00:00-06:00 is 5 hours
  on a spring-forward night and 7 on a fall-back night; a 24x7 calendar's days are 23 and
  25 hours long, so on it business time is exactly elapsed time.
- A bound inside the skipped hour means the moment the clock jumps past it (02:30-04:00 on
  a spring-forward night opens at 03:00 new time); a bound inside the repeated hour means
  its first occurrence.

Every instant in and out is an aware datetime; results are in UTC. Durations are exact
(``timedelta``), intervals are half-open: open at the opening instant, closed at closing.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "BusinessCalendar",
    "add_business_time",
    "business_time_between",
    "is_open",
    "next_opening",
]

# As the end of a working interval, midnight means the end of the day (24:00).
MIDNIGHT = time(0)
_ONE_DAY = timedelta(days=1)
_RESOLUTION = timedelta(microseconds=1)
# A calendar with working hours is open at least once a year; this only stops a loop
# forever on a calendar whose every interval falls into skipped hours.
_MAX_CLOSED_DAYS = 10 * 366

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class BusinessCalendar:
    """When a queue is staffed.

    ``working_hours`` maps a weekday (0 = Monday) to its ordered, non-overlapping intervals
    of local wall time; an absent weekday is closed, an interval ending at ``time(0)`` runs
    to midnight. Holidays (``holidays`` package, public category) close the whole local
    date. ``closures`` are extra closed periods between aware instants.
    """

    time_zone: str
    working_hours: Mapping[int, tuple[tuple[time, time], ...]] = field(hash=False)
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closures: tuple[tuple[datetime, datetime], ...] = ()

    def __post_init__(self):
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(
                f"Unknown time zone {self.time_zone!r}: use an IANA name such as "
                f"'Europe/Berlin'.") from None
        # Copies, so that a caller changing its dict or list later cannot change a calendar.
        week = _validated_week(self.working_hours)
        object.__setattr__(self, "working_hours", MappingProxyType(
            {weekday: week[weekday] for weekday in range(7) if week[weekday]}))
        closures = tuple(_validated_closure(closure) for closure in self.closures)
        object.__setattr__(self, "closures", closures)
        _validate_holidays(self.holiday_country, self.holiday_subdivision)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_week", week)
        merged = _merged(sorted((start.astimezone(UTC), end.astimezone(UTC))
                                for start, end in closures))
        object.__setattr__(self, "_closures", merged)
        object.__setattr__(self, "_closure_ends", [end for _, end in merged])

    def __reduce__(self):
        # A mappingproxy cannot be pickled: rebuild from plain values (and re-validate).
        return (type(self), (self.time_zone, dict(self.working_hours), self.holiday_country,
                             self.holiday_subdivision, self.closures))

    @classmethod
    def always_open(cls, time_zone: str = "UTC") -> BusinessCalendar:
        """A 24x7 calendar: business time is elapsed time."""
        return cls(time_zone=time_zone,
                   working_hours={weekday: ((MIDNIGHT, MIDNIGHT),) for weekday in range(7)})

    def _is_holiday(self, day: date) -> bool:
        if self.holiday_country is None:
            return False
        return day in _holiday_dates(self.holiday_country, self.holiday_subdivision, day.year)

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()

    def _working_intervals(self, day: date) -> list[Interval]:
        """The local date's open intervals in UTC, holidays and closures taken out."""
        if self._is_holiday(day):
            return []
        intervals = []
        for start, end in self._week[day.weekday()]:
            opens = _first_instant_showing(self._zone, day, start)
            closes = _first_instant_showing(
                self._zone, day + _ONE_DAY if end == MIDNIGHT else day, end)
            if opens < closes:  # an interval inside a skipped hour does not happen that day
                intervals.append((opens, closes))
        return self._without_closures(intervals)

    def _without_closures(self, intervals: list[Interval]) -> list[Interval]:
        if not self._closures:
            return intervals
        remaining = []
        for opens, closes in intervals:
            index = bisect_right(self._closure_ends, opens)
            while index < len(self._closures) and self._closures[index][0] < closes:
                closed_from, closed_until = self._closures[index]
                if opens < closed_from:
                    remaining.append((opens, closed_from))
                opens = max(opens, closed_until)
                index += 1
            if opens < closes:
                remaining.append((opens, closes))
        return remaining

    def _day_after(self, day: date) -> date:
        """The next local date that may have business time, past any closure covering days."""
        following = day + _ONE_DAY
        midnight = _first_instant_showing(self._zone, following, MIDNIGHT)
        index = bisect_right(self._closure_ends, midnight)
        if index < len(self._closures) and self._closures[index][0] <= midnight:
            # Every date before the one the closure ends on lies wholly inside it.
            return max(following, self._local_date(self._closures[index][1]))
        return following

    def _intervals_from(self, since: datetime) -> Iterator[Interval]:
        """Business intervals in order, endless, the first clipped to start at ``since``.

        Local dates tile the time line (each runs from its first midnight to the next), so
        nothing before ``since``'s own local date can be open at or after it. Each date
        costs a few interval computations, whatever the duration in it: never per minute.
        """
        day = self._local_date(since)
        closed_days = 0
        while True:
            found = False
            for opens, closes in self._working_intervals(day):
                if closes > since:
                    found = True
                    yield max(opens, since), closes
            closed_days = 0 if found else closed_days + 1
            if closed_days > _MAX_CLOSED_DAYS:
                raise ValueError(f"This calendar has no working time in the ten years after "
                                 f"{since.isoformat()}: check its working hours.")
            day = self._day_after(day)


def add_business_time(calendar: BusinessCalendar, start: datetime,
                      duration: timedelta) -> datetime:
    """The instant (UTC) at which ``duration`` of business time has elapsed after ``start``.

    A clock started outside working hours begins at the next opening. A due time that
    falls on a closing instant is that closing instant, not the next opening. A zero
    duration returns ``start`` unchanged (in UTC), even when the calendar is closed then.
    """
    start = _as_utc(start, "start")
    if duration < timedelta(0):
        raise ValueError(f"The duration must not be negative (got {duration}).")
    if not duration:
        return start
    remaining = duration
    for opens, closes in calendar._intervals_from(start):
        if remaining <= closes - opens:
            return opens + remaining
        remaining -= closes - opens
    raise AssertionError("unreachable: business intervals never run out")  # pragma: no cover


def business_time_between(calendar: BusinessCalendar, start: datetime,
                          end: datetime) -> timedelta:
    """The business time elapsed from ``start`` to ``end``; ``end`` must not be earlier."""
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    if end < start:
        raise ValueError(f"The end {end.isoformat()} is before the start {start.isoformat()}.")
    elapsed = timedelta(0)
    for opens, closes in calendar._intervals_from(start):
        if opens >= end:
            break
        elapsed += min(closes, end) - opens
    return elapsed


def is_open(calendar: BusinessCalendar, at: datetime) -> bool:
    """Whether ``at`` is business time (an opening instant is, a closing instant is not)."""
    at = _as_utc(at, "at")
    return any(opens <= at < closes
               for opens, closes in calendar._working_intervals(calendar._local_date(at)))


def next_opening(calendar: BusinessCalendar, at: datetime) -> datetime:
    """The first business instant at or after ``at`` (UTC): ``at`` itself when open."""
    opens, _ = next(calendar._intervals_from(_as_utc(at, "at")))
    return opens


def _as_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (got naive {value.isoformat()}): "
                         f"give it a tzinfo, e.g. UTC.")
    return value.astimezone(UTC)


def _first_instant_showing(zone: ZoneInfo, day: date, wall: time) -> datetime:
    """The first instant (UTC) at which the local clock shows ``wall`` on ``day``.

    ``fold=0`` already gives the first of a repeated reading; a reading the clock skips
    is first reached, or rather passed, at the transition itself.
    """
    reading = datetime.combine(day, wall)
    instant = reading.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == reading:
        return instant
    # In a gap, fold=0 reads with the offset before the jump and fold=1 with the offset
    # after it, so the transition lies in (fold=1 instant, fold=0 instant]: bisect for it.
    before = reading.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = instant
    offset_after = after.astimezone(zone).utcoffset()
    while after - before > _RESOLUTION:
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return after


@functools.lru_cache(maxsize=512)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def _validated_week(working_hours) -> tuple[tuple[tuple[time, time], ...], ...]:
    if not isinstance(working_hours, Mapping):
        raise ValueError("working_hours must map weekdays (0 = Monday) to intervals.")
    week: list[tuple[tuple[time, time], ...]] = [()] * 7
    for weekday, intervals in working_hours.items():
        if not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValueError(f"Weekday {weekday!r} is not one of 0 (Monday) to 6 (Sunday).")
        checked = []
        for interval in intervals:
            start, end = _validated_interval(weekday, interval)
            if checked and (checked[-1][1] == MIDNIGHT or start < checked[-1][1]):
                raise ValueError(
                    f"Working hours on weekday {weekday} overlap or are out of order: "
                    f"{_hours(checked[-1])} then {_hours((start, end))}.")
            checked.append((start, end))
        week[weekday] = tuple(checked)
    if not any(week):
        raise ValueError("A calendar needs working hours on at least one weekday; use "
                         "BusinessCalendar.always_open() for a 24x7 queue.")
    return tuple(week)


def _validated_interval(weekday: int, interval) -> tuple[time, time]:
    try:
        start, end = interval
    except (TypeError, ValueError):
        raise ValueError(f"Working hours on weekday {weekday} must be (start, end) pairs of "
                         f"times, got {interval!r}.") from None
    if not (isinstance(start, time) and isinstance(end, time)):
        raise ValueError(f"Working hours on weekday {weekday} must be datetime.time values, "
                         f"got {interval!r}.")
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ValueError(f"Working hours on weekday {weekday} are local wall times: give "
                         f"them no tzinfo (the calendar's time_zone applies).")
    if end != MIDNIGHT and end <= start:
        raise ValueError(f"Working hours {_hours((start, end))} on weekday {weekday} end "
                         f"before they start; end at time(0) to work until midnight.")
    return start, end


def _validated_closure(closure) -> tuple[datetime, datetime]:
    try:
        start, end = closure
    except (TypeError, ValueError):
        raise ValueError(f"A closure must be a (start, end) pair, got {closure!r}.") from None
    for value in (start, end):
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"Closures need aware datetimes, got {value!r}.")
    if end <= start:
        raise ValueError(f"The closure from {start.isoformat()} to {end.isoformat()} ends "
                         f"before it starts.")
    return start, end


def _validate_holidays(country: str | None, subdivision: str | None) -> None:
    if country is None:
        if subdivision is not None:
            raise ValueError(f"Holiday subdivision {subdivision!r} needs a holiday_country.")
        return
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as error:
        raise ValueError(f"Unknown holidays for country {country!r}, subdivision "
                         f"{subdivision!r}: {error}.") from None


def _merged(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _hours(interval: tuple[time, time]) -> str:
    start, end = interval
    until = "24:00" if end == MIDNIGHT else end.isoformat("minutes")
    return f"{start.isoformat('minutes')}-{until}"
