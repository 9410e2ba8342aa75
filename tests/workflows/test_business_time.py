"""The business-time engine against a hand-computed reference table, plus its algebra.

Every expected due time below was worked out by hand from the calendar and the zone's
published transitions (2026: Berlin 29 Mar / 25 Oct, New York 8 Mar / 1 Nov, Lord Howe
5 Apr / 4 Oct with a half-hour change); the comment on each row shows the sum.
"""

import copy
import dataclasses
import pickle
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows import business_time
from workflows.business_time import (
    BusinessCalendar,
    add_business_time,
    business_time_between,
    is_open,
    next_opening,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")


def at(zone, *fields, fold=0):
    return datetime(*fields, tzinfo=zone, fold=fold)


def utc(*fields):
    return datetime(*fields, tzinfo=UTC)


def hours(value):
    return timedelta(hours=value)


def every_day(*intervals):
    return {weekday: intervals for weekday in range(7)}


WEEKDAYS_9_TO_17 = {weekday: ((time(9), time(17)),) for weekday in range(5)}

BERLIN_OFFICE = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_TO_17, holiday_country="DE")
BAVARIA_OFFICE = BusinessCalendar("Europe/Berlin", WEEKDAYS_9_TO_17, holiday_country="DE",
                                  holiday_subdivision="BY")
BERLIN_SPLIT_SHIFTS = BusinessCalendar(
    "Europe/Berlin", {weekday: ((time(9), time(12)), (time(13), time(17)))
                      for weekday in range(5)})
BERLIN_AFTERNOON_OFF = dataclasses.replace(
    BERLIN_OFFICE, closures=((at(BERLIN, 2026, 6, 10, 12), at(BERLIN, 2026, 6, 10, 18)),))
BERLIN_LATE_START = dataclasses.replace(
    BERLIN_OFFICE, closures=((at(BERLIN, 2026, 6, 10, 8), at(BERLIN, 2026, 6, 10, 11)),))
BERLIN_SHUTDOWN = dataclasses.replace(
    BERLIN_OFFICE, closures=((at(BERLIN, 2026, 12, 21), at(BERLIN, 2027, 1, 4)),))
BERLIN_SEVEN_DAYS = BusinessCalendar("Europe/Berlin", every_day((time(9), time(17))))
# Crosses 02:00-03:00: the hours the clock skips or repeats.
BERLIN_NIGHT_DESK = BusinessCalendar("Europe/Berlin", every_day((time(0), time(6))))
# Opens inside the skipped hour on the spring-forward Sunday.
BERLIN_GAP_SHIFT = BusinessCalendar("Europe/Berlin", {6: ((time(2, 30), time(4)),)})
NEW_YORK_OFFICE = BusinessCalendar("America/New_York", WEEKDAYS_9_TO_17, holiday_country="US")
NEW_YORK_NIGHT_DESK = BusinessCalendar("America/New_York", every_day((time(0), time(4))))
NEW_YORK_24X7 = BusinessCalendar.always_open("America/New_York")
UTC_24X7 = BusinessCalendar.always_open()
UTC_OFFICE = BusinessCalendar("UTC", WEEKDAYS_9_TO_17)
KOLKATA_OFFICE = BusinessCalendar(
    "Asia/Kolkata", {weekday: ((time(9, 30), time(18, 30)),) for weekday in range(5)})
LORD_HOWE_NIGHT_DESK = BusinessCalendar("Australia/Lord_Howe", every_day((time(1), time(3))))
LATE_SHIFT_TO_MIDNIGHT = BusinessCalendar("Europe/Berlin", {0: ((time(22), time(0)),)})

DUE_TIMES = [
    # Berlin office, Mon-Fri 09:00-17:00, German public holidays.
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 9, 30), hours(3),
                 at(BERLIN, 2026, 6, 8, 12, 30), id="within-one-day"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 9), hours(8),
                 at(BERLIN, 2026, 6, 8, 17), id="due-at-closing-not-next-opening"),
    # Mon 15-17 (2h) + Tue 09-11.
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 15), hours(4),
                 at(BERLIN, 2026, 6, 9, 11), id="over-a-night"),
    # Fri 15-17 (2h) + Mon 09-11.
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 12, 15), hours(4),
                 at(BERLIN, 2026, 6, 15, 11), id="over-a-weekend"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 13, 10), hours(1),
                 at(BERLIN, 2026, 6, 15, 10), id="start-on-a-saturday"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 7), hours(1),
                 at(BERLIN, 2026, 6, 8, 10), id="start-before-opening"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 18, 30), hours(1),
                 at(BERLIN, 2026, 6, 9, 10), id="start-after-closing"),
    # Thu 24 Dec is a working day: 16-17 (1h); Fri 25 and Sat 26 are holidays; Mon 09-12.
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 12, 24, 16), hours(4),
                 at(BERLIN, 2026, 12, 28, 12), id="christmas-in-germany"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 12, 25, 10), hours(1),
                 at(BERLIN, 2026, 12, 28, 10), id="start-on-a-holiday"),
    # Epiphany (Tue 6 Jan) is a holiday in Bavaria only.
    pytest.param(BAVARIA_OFFICE, at(BERLIN, 2026, 1, 5, 16), hours(2),
                 at(BERLIN, 2026, 1, 7, 10), id="subdivision-holiday-bavaria"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 1, 5, 16), hours(2),
                 at(BERLIN, 2026, 1, 6, 10), id="subdivision-holiday-not-nationwide"),
    # Corpus Christi (Thu 4 Jun) in Bavaria.
    pytest.param(BAVARIA_OFFICE, at(BERLIN, 2026, 6, 3, 16), hours(2),
                 at(BERLIN, 2026, 6, 5, 10), id="subdivision-holiday-corpus-christi"),
    # Wed 15-17 (2h); Thanksgiving Thu 26 Nov; Fri 09-11 (not a federal holiday).
    pytest.param(NEW_YORK_OFFICE, at(NEW_YORK, 2026, 11, 25, 15), hours(4),
                 at(NEW_YORK, 2026, 11, 27, 11), id="us-thanksgiving"),
    # Independence Day is a Saturday: observed on Fri 3 Jul.
    pytest.param(NEW_YORK_OFFICE, at(NEW_YORK, 2026, 7, 2, 16), hours(2),
                 at(NEW_YORK, 2026, 7, 6, 10), id="us-observed-holiday"),
    # Wed 10-12 (2h), closed from 12:00; Thu 09-11.
    pytest.param(BERLIN_AFTERNOON_OFF, at(BERLIN, 2026, 6, 10, 10), hours(4),
                 at(BERLIN, 2026, 6, 11, 11), id="closure-afternoon-off"),
    pytest.param(BERLIN_LATE_START, at(BERLIN, 2026, 6, 10, 9), hours(1),
                 at(BERLIN, 2026, 6, 10, 12), id="closure-late-start"),
    # Fri 16-17 (1h), shut 21 Dec - 4 Jan, Mon 4 Jan 09-10.
    pytest.param(BERLIN_SHUTDOWN, at(BERLIN, 2026, 12, 18, 16), hours(2),
                 at(BERLIN, 2027, 1, 4, 10), id="closure-company-shutdown"),
    # 09-12 and 13-17: Mon 11-12 (1h) + 13-14.
    pytest.param(BERLIN_SPLIT_SHIFTS, at(BERLIN, 2026, 6, 8, 11), hours(2),
                 at(BERLIN, 2026, 6, 8, 14), id="split-shift-over-lunch"),
    pytest.param(BERLIN_SPLIT_SHIFTS, at(BERLIN, 2026, 6, 8, 12, 30), hours(1),
                 at(BERLIN, 2026, 6, 8, 14), id="split-shift-start-at-lunch"),
    # Mon 10-12 (2h) + 13-17 (4h): exactly the rest of the day.
    pytest.param(BERLIN_SPLIT_SHIFTS, at(BERLIN, 2026, 6, 8, 10), hours(6),
                 at(BERLIN, 2026, 6, 8, 17), id="split-shift-rest-of-day"),
    # Mon 16-17 (1h) + Tue 09-11.
    pytest.param(BERLIN_SPLIT_SHIFTS, at(BERLIN, 2026, 6, 8, 16), hours(3),
                 at(BERLIN, 2026, 6, 9, 11), id="split-shift-over-a-night"),
    # 400h = 16 days 16 hours.
    pytest.param(UTC_24X7, utc(2026, 6, 13, 10), hours(400), utc(2026, 6, 30, 2),
                 id="24x7-utc"),
    # A 24x7 clock is elapsed time: 24h after Sat noon EST is Sun 13:00 EDT.
    pytest.param(NEW_YORK_24X7, at(NEW_YORK, 2026, 3, 7, 12), hours(24),
                 at(NEW_YORK, 2026, 3, 8, 13), id="24x7-new-york-spring-forward"),
    pytest.param(NEW_YORK_24X7, at(NEW_YORK, 2026, 10, 31, 12), hours(24),
                 at(NEW_YORK, 2026, 11, 1, 11), id="24x7-new-york-fall-back"),
    # 400 business hours = 50 working days = ten full weeks, Mon 5 Jan - Fri 13 Mar.
    pytest.param(UTC_OFFICE, utc(2026, 1, 5, 9), hours(400), utc(2026, 3, 13, 17),
                 id="400-business-hours"),
    # Office hours do not cross 02:00-03:00: the change night changes nothing.
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 3, 27, 16), hours(2),
                 at(BERLIN, 2026, 3, 30, 10), id="berlin-spring-forward-office"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 10, 23, 16), hours(2),
                 at(BERLIN, 2026, 10, 26, 10), id="berlin-fall-back-office"),
    pytest.param(BERLIN_SEVEN_DAYS, at(BERLIN, 2026, 3, 29, 9), hours(8),
                 at(BERLIN, 2026, 3, 29, 17), id="berlin-spring-forward-sunday-is-8h"),
    pytest.param(BERLIN_SEVEN_DAYS, at(BERLIN, 2026, 10, 25, 9), hours(8),
                 at(BERLIN, 2026, 10, 25, 17), id="berlin-fall-back-sunday-is-8h"),
    # Sat 16-17 CET (1h) + Sun 09-10 CEST.
    pytest.param(BERLIN_SEVEN_DAYS, at(BERLIN, 2026, 3, 28, 16), hours(2),
                 at(BERLIN, 2026, 3, 29, 10), id="berlin-spring-forward-overnight"),
    # 00:00-06:00 on 29 Mar lasts 5 real hours (23:00Z-04:00Z).
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 3, 29, 0), hours(5),
                 at(BERLIN, 2026, 3, 29, 6), id="berlin-spring-forward-night-is-5h"),
    # 5h that night + 1h from Mon 00:00 CEST.
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 3, 29, 0), hours(6),
                 at(BERLIN, 2026, 3, 30, 1), id="berlin-spring-forward-night-overflows"),
    # 01:30 CET + 1h of real time is 03:30 CEST: the skipped hour costs nothing.
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 3, 29, 1, 30), hours(1),
                 at(BERLIN, 2026, 3, 29, 3, 30), id="berlin-spring-forward-across-gap"),
    # 00:00-06:00 on 25 Oct lasts 7 real hours (22:00Z-05:00Z).
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 10, 25, 0), hours(7),
                 at(BERLIN, 2026, 10, 25, 6), id="berlin-fall-back-night-is-7h"),
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 10, 25, 0), hours(6),
                 at(BERLIN, 2026, 10, 25, 5), id="berlin-fall-back-night-6h"),
    # The first 02:30 (CEST) + 1h is the second 02:30 (CET).
    pytest.param(BERLIN_NIGHT_DESK, utc(2026, 10, 25, 0, 30), hours(1),
                 at(BERLIN, 2026, 10, 25, 2, 30, fold=1), id="berlin-fall-back-repeated-hour"),
    # Opening at 02:30 does not happen on 29 Mar: the shift starts at the jump (03:00 CEST).
    pytest.param(BERLIN_GAP_SHIFT, utc(2026, 3, 29, 0), timedelta(minutes=30),
                 at(BERLIN, 2026, 3, 29, 3, 30), id="berlin-opening-in-skipped-hour"),
    pytest.param(BERLIN_GAP_SHIFT, at(BERLIN, 2026, 3, 22, 0), timedelta(minutes=30),
                 at(BERLIN, 2026, 3, 22, 3), id="berlin-opening-on-an-ordinary-sunday"),
    # Fri 15-17 EST (2h) + Mon 09-11 EDT.
    pytest.param(NEW_YORK_OFFICE, at(NEW_YORK, 2026, 3, 6, 15), hours(4),
                 at(NEW_YORK, 2026, 3, 9, 11), id="new-york-spring-forward-office"),
    pytest.param(NEW_YORK_OFFICE, at(NEW_YORK, 2026, 10, 30, 15), hours(4),
                 at(NEW_YORK, 2026, 11, 2, 11), id="new-york-fall-back-office"),
    # 00:00-04:00 on 8 Mar is 3 real hours, on 1 Nov 5.
    pytest.param(NEW_YORK_NIGHT_DESK, at(NEW_YORK, 2026, 3, 8, 0), hours(3),
                 at(NEW_YORK, 2026, 3, 8, 4), id="new-york-spring-forward-night-is-3h"),
    pytest.param(NEW_YORK_NIGHT_DESK, at(NEW_YORK, 2026, 3, 8, 1), hours(1.5),
                 at(NEW_YORK, 2026, 3, 8, 3, 30), id="new-york-spring-forward-across-gap"),
    pytest.param(NEW_YORK_NIGHT_DESK, at(NEW_YORK, 2026, 11, 1, 0), hours(5),
                 at(NEW_YORK, 2026, 11, 1, 4), id="new-york-fall-back-night-is-5h"),
    pytest.param(NEW_YORK_NIGHT_DESK, utc(2026, 11, 1, 5, 30), hours(1),
                 at(NEW_YORK, 2026, 11, 1, 1, 30, fold=1), id="new-york-fall-back-repeated-hour"),
    # UTC in, compared in local time: Fri 13:00Z is 15:00 CEST.
    pytest.param(BERLIN_OFFICE, utc(2026, 6, 12, 13), hours(4),
                 at(BERLIN, 2026, 6, 15, 11), id="utc-input-berlin"),
    pytest.param(NEW_YORK_OFFICE, utc(2026, 3, 6, 20), hours(4),
                 at(NEW_YORK, 2026, 3, 9, 11), id="utc-input-new-york"),
    # Kolkata is UTC+05:30; the office is 09:30-18:30.
    pytest.param(KOLKATA_OFFICE, utc(2026, 6, 8, 3, 30), hours(1),
                 at(KOLKATA, 2026, 6, 8, 10, 30), id="kolkata-before-opening"),
    # 12:00Z is 17:30 IST: 1h today + 1h tomorrow.
    pytest.param(KOLKATA_OFFICE, utc(2026, 6, 8, 12), hours(2),
                 at(KOLKATA, 2026, 6, 9, 10, 30), id="kolkata-over-a-night"),
    pytest.param(KOLKATA_OFFICE, utc(2026, 6, 12, 12), hours(2),
                 at(KOLKATA, 2026, 6, 15, 10, 30), id="kolkata-over-a-weekend"),
    # 18:45Z Monday is already 00:15 IST Tuesday.
    pytest.param(KOLKATA_OFFICE, utc(2026, 6, 8, 18, 45), hours(1),
                 at(KOLKATA, 2026, 6, 9, 10, 30), id="kolkata-local-date-differs-from-utc"),
    # Lord Howe springs forward half an hour (02:00 -> 02:30): 01:00-03:00 lasts 1.5h.
    pytest.param(LORD_HOWE_NIGHT_DESK, at(LORD_HOWE, 2026, 10, 4, 1), hours(1.5),
                 at(LORD_HOWE, 2026, 10, 4, 3), id="lord-howe-spring-forward-night-is-1.5h"),
    pytest.param(LORD_HOWE_NIGHT_DESK, at(LORD_HOWE, 2026, 10, 4, 1), hours(2),
                 at(LORD_HOWE, 2026, 10, 5, 1, 30), id="lord-howe-spring-forward-overflows"),
    # ... and falls back half an hour (02:00 -> 01:30): 01:00-03:00 lasts 2.5h.
    pytest.param(LORD_HOWE_NIGHT_DESK, at(LORD_HOWE, 2026, 4, 5, 1), hours(2.5),
                 at(LORD_HOWE, 2026, 4, 5, 3), id="lord-howe-fall-back-night-is-2.5h"),
    # The first 01:45 (+11:00) + 1h is 02:15 (+10:30).
    pytest.param(LORD_HOWE_NIGHT_DESK, utc(2026, 4, 4, 14, 45), hours(1),
                 at(LORD_HOWE, 2026, 4, 5, 2, 15), id="lord-howe-fall-back-repeated-half-hour"),
    # Monday 22:00-24:00.
    pytest.param(LATE_SHIFT_TO_MIDNIGHT, at(BERLIN, 2026, 6, 8, 23), hours(1),
                 at(BERLIN, 2026, 6, 9, 0), id="interval-until-midnight"),
    pytest.param(LATE_SHIFT_TO_MIDNIGHT, at(BERLIN, 2026, 6, 8, 23), hours(2),
                 at(BERLIN, 2026, 6, 15, 23), id="interval-until-midnight-next-week"),
]


@pytest.mark.parametrize(("calendar", "start", "duration", "expected"), DUE_TIMES)
def test_due_time_matches_reference_table(calendar, start, duration, expected):
    due = add_business_time(calendar, start, duration)

    # Compared in UTC: an aware time in a repeated hour never equals one in another zone.
    assert due == expected.astimezone(UTC)
    assert due.tzinfo is UTC


@pytest.mark.parametrize(("calendar", "start", "duration", "expected"), DUE_TIMES)
def test_reference_due_times_use_exactly_their_duration(calendar, start, duration, expected):
    assert business_time_between(calendar, start, expected) == duration


@pytest.mark.parametrize(("calendar", "start", "end", "expected"), [
    # Fri 1h + Mon-Thu 21-24 Dec 32h + Mon 28 Dec 3h (25 Dec is a holiday).
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 12, 18, 16), at(BERLIN, 2026, 12, 28, 12),
                 hours(36), id="over-christmas"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 13, 8), at(BERLIN, 2026, 6, 14, 20),
                 timedelta(0), id="a-weekend"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 10), at(BERLIN, 2026, 6, 8, 10),
                 timedelta(0), id="empty"),
    pytest.param(BERLIN_SPLIT_SHIFTS, at(BERLIN, 2026, 6, 8, 11, 15), at(BERLIN, 2026, 6, 8, 13, 5),
                 timedelta(minutes=50), id="across-lunch"),
    # 6h + 5h + 6h around the spring-forward night, 6h + 7h + 6h around fall-back.
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 3, 28), at(BERLIN, 2026, 3, 31),
                 hours(17), id="berlin-spring-forward-nights"),
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 10, 24), at(BERLIN, 2026, 10, 27),
                 hours(19), id="berlin-fall-back-nights"),
    # 2h + 1.5h + 2h.
    pytest.param(LORD_HOWE_NIGHT_DESK, at(LORD_HOWE, 2026, 10, 3), at(LORD_HOWE, 2026, 10, 6),
                 hours(5.5), id="lord-howe-spring-forward-nights"),
    pytest.param(NEW_YORK_24X7, at(NEW_YORK, 2026, 3, 8), at(NEW_YORK, 2026, 3, 9),
                 hours(23), id="24x7-spring-forward-day"),
    pytest.param(NEW_YORK_24X7, at(NEW_YORK, 2026, 11, 1), at(NEW_YORK, 2026, 11, 2),
                 hours(25), id="24x7-fall-back-day"),
])
def test_business_time_between_matches_reference_table(calendar, start, end, expected):
    assert business_time_between(calendar, start, end) == expected


def test_paused_clock_resumes_with_the_time_it_had_left():
    target = hours(8)
    opened = at(BERLIN, 2026, 6, 8, 10)       # Monday
    paused = at(BERLIN, 2026, 6, 8, 14)       # 4h used
    resumed = at(BERLIN, 2026, 6, 10, 11)     # Wednesday

    remaining = target - business_time_between(BERLIN_OFFICE, opened, paused)

    assert add_business_time(BERLIN_OFFICE, resumed, remaining) == at(BERLIN, 2026, 6, 10, 15)


def test_zero_duration_leaves_the_start_unchanged_even_when_closed():
    saturday = at(BERLIN, 2026, 6, 13, 10)

    due = add_business_time(BERLIN_OFFICE, saturday, timedelta(0))

    assert due == saturday
    assert due.tzinfo is UTC


@pytest.mark.parametrize(("calendar", "instant", "expected"), [
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 9), True, id="opening-instant"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 16, 59, 59), True, id="last-second"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 17), False, id="closing-instant"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 13, 12), False, id="saturday"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 12, 25, 12), False, id="holiday"),
    pytest.param(BERLIN_AFTERNOON_OFF, at(BERLIN, 2026, 6, 10, 11, 59), True,
                 id="before-closure"),
    pytest.param(BERLIN_AFTERNOON_OFF, at(BERLIN, 2026, 6, 10, 12), False, id="in-closure"),
    pytest.param(BERLIN_SPLIT_SHIFTS, at(BERLIN, 2026, 6, 8, 12, 30), False, id="lunch"),
    pytest.param(BERLIN_GAP_SHIFT, utc(2026, 3, 29, 0, 59), False, id="before-the-jump"),
    pytest.param(BERLIN_GAP_SHIFT, utc(2026, 3, 29, 1), True, id="at-the-jump"),
    pytest.param(BERLIN_NIGHT_DESK, utc(2026, 10, 25, 1, 30), True, id="repeated-hour"),
    pytest.param(LATE_SHIFT_TO_MIDNIGHT, at(BERLIN, 2026, 6, 8, 23, 59), True,
                 id="before-midnight"),
    pytest.param(LATE_SHIFT_TO_MIDNIGHT, at(BERLIN, 2026, 6, 9, 0), False, id="midnight"),
    pytest.param(UTC_24X7, utc(2026, 12, 25, 0), True, id="24x7"),
    pytest.param(KOLKATA_OFFICE, utc(2026, 6, 8, 4), True, id="kolkata-09:30-ist"),
])
def test_is_open(calendar, instant, expected):
    assert is_open(calendar, instant) is expected


@pytest.mark.parametrize(("calendar", "instant", "expected"), [
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 8, 11), at(BERLIN, 2026, 6, 8, 11),
                 id="already-open"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 6, 12, 18), at(BERLIN, 2026, 6, 15, 9),
                 id="friday-evening"),
    pytest.param(BERLIN_OFFICE, at(BERLIN, 2026, 12, 24, 17, 30), at(BERLIN, 2026, 12, 28, 9),
                 id="christmas"),
    pytest.param(BERLIN_AFTERNOON_OFF, at(BERLIN, 2026, 6, 10, 13), at(BERLIN, 2026, 6, 11, 9),
                 id="afternoon-off"),
    pytest.param(BERLIN_LATE_START, at(BERLIN, 2026, 6, 10, 8, 30), at(BERLIN, 2026, 6, 10, 11),
                 id="closure-ends-mid-morning"),
    pytest.param(BERLIN_SHUTDOWN, at(BERLIN, 2026, 12, 18, 17), at(BERLIN, 2027, 1, 4, 9),
                 id="company-shutdown"),
    pytest.param(BERLIN_GAP_SHIFT, utc(2026, 3, 29, 0), utc(2026, 3, 29, 1),
                 id="opening-in-skipped-hour"),
])
def test_next_opening(calendar, instant, expected):
    opening = next_opening(calendar, instant)

    assert opening == expected
    assert opening.tzinfo is UTC


@pytest.mark.parametrize(("changes", "message"), [
    pytest.param({"time_zone": "Europe/Atlantis"}, "Unknown time zone", id="unknown-zone"),
    pytest.param({"time_zone": "../etc/passwd"}, "Unknown time zone", id="bad-zone-key"),
    pytest.param({"working_hours": {0: ((time(17), time(9)),)}}, "end before they start",
                 id="inverted-interval"),
    pytest.param({"working_hours": {0: ((time(9), time(9)),)}}, "end before they start",
                 id="empty-interval"),
    pytest.param({"working_hours": {0: ((time(9), time(13)), (time(12), time(17)))}},
                 "overlap or are out of order", id="overlapping-intervals"),
    pytest.param({"working_hours": {0: ((time(13), time(17)), (time(9), time(12)))}},
                 "overlap or are out of order", id="intervals-out-of-order"),
    pytest.param({"working_hours": {0: ((time(22), time(0)), (time(23), time(23, 30)))}},
                 "overlap or are out of order", id="interval-after-midnight-end"),
    pytest.param({"working_hours": {7: ((time(9), time(17)),)}}, "not one of 0",
                 id="weekday-out-of-range"),
    pytest.param({"working_hours": {0: (("09:00", "17:00"),)}}, "datetime.time",
                 id="strings-for-times"),
    pytest.param({"working_hours": {0: ((time(9, tzinfo=UTC), time(17)),)}}, "no tzinfo",
                 id="aware-working-hours"),
    pytest.param({"working_hours": {}}, "at least one weekday", id="never-open"),
    pytest.param({"holiday_country": "XX"}, "Unknown holidays", id="unknown-country"),
    pytest.param({"holiday_subdivision": "XX"}, "Unknown holidays", id="unknown-subdivision"),
    pytest.param({"holiday_country": None, "holiday_subdivision": "BY"}, "needs a holiday_country",
                 id="subdivision-without-country"),
    pytest.param({"closures": ((datetime(2026, 6, 10, 12), at(BERLIN, 2026, 6, 10, 18)),)},
                 "aware datetimes", id="naive-closure"),
    pytest.param({"closures": ((at(BERLIN, 2026, 6, 10, 18), at(BERLIN, 2026, 6, 10, 12)),)},
                 "ends before it starts", id="inverted-closure"),
])
def test_invalid_calendar_is_refused_with_a_clear_message(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(BERLIN_OFFICE, **changes)


def test_naive_datetimes_are_refused():
    naive = datetime(2026, 6, 8, 10)
    aware = at(BERLIN, 2026, 6, 8, 10)

    with pytest.raises(ValueError, match="start must be an aware datetime"):
        add_business_time(BERLIN_OFFICE, naive, hours(1))
    with pytest.raises(ValueError, match="end must be an aware datetime"):
        business_time_between(BERLIN_OFFICE, aware, naive)
    with pytest.raises(ValueError, match="at must be an aware datetime"):
        is_open(BERLIN_OFFICE, naive)
    with pytest.raises(ValueError, match="at must be an aware datetime"):
        next_opening(BERLIN_OFFICE, naive)


def test_negative_duration_and_reversed_span_are_refused():
    start = at(BERLIN, 2026, 6, 8, 10)

    with pytest.raises(ValueError, match="must not be negative"):
        add_business_time(BERLIN_OFFICE, start, -hours(1))
    with pytest.raises(ValueError, match="is before the start"):
        business_time_between(BERLIN_OFFICE, start, start - hours(1))


def test_calendar_is_immutable_equal_by_value_and_hashable():
    hours_by_weekday = {0: [(time(9), time(17))]}
    calendar = BusinessCalendar("Europe/Berlin", hours_by_weekday)

    hours_by_weekday[0].append((time(18), time(20)))
    hours_by_weekday[1] = [(time(9), time(17))]

    assert dict(calendar.working_hours) == {0: ((time(9), time(17)),)}
    assert calendar == BusinessCalendar("Europe/Berlin", {0: ((time(9), time(17)),)})
    assert hash(calendar) == hash(BusinessCalendar("Europe/Berlin", {0: ((time(9), time(17)),)}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        calendar.time_zone = "UTC"


def test_calendar_survives_pickling_and_copying():
    for clone in (pickle.loads(pickle.dumps(BERLIN_SHUTDOWN)), copy.deepcopy(BERLIN_SHUTDOWN)):
        assert clone == BERLIN_SHUTDOWN
        assert next_opening(clone, at(BERLIN, 2026, 12, 18, 17)) == at(BERLIN, 2027, 1, 4, 9)


def test_always_open_is_open_every_day_and_hour():
    calendar = BusinessCalendar.always_open("Asia/Kolkata")

    assert calendar.working_hours == {weekday: ((time(0), time(0)),) for weekday in range(7)}
    assert business_time_between(calendar, utc(2026, 1, 1), utc(2027, 1, 1)) == timedelta(days=365)


def test_holidays_are_looked_up_once_per_year():
    business_time._holiday_dates.cache_clear()

    # Two calendar years of business time, asked for twice.
    for _ in range(2):
        add_business_time(BAVARIA_OFFICE, at(BERLIN, 2026, 6, 1, 9), hours(8 * 300))

    assert business_time._holiday_dates.cache_info().misses == 2


def test_long_durations_are_arithmetic_per_day_not_per_minute():
    start = at(BERLIN, 2026, 1, 5, 9)
    ten_years_of_office_hours = hours(8 * 250 * 10)

    due = add_business_time(BERLIN_OFFICE, start, ten_years_of_office_hours)

    assert business_time_between(BERLIN_OFFICE, start, due) == ten_years_of_office_hours


@pytest.mark.parametrize(("calendar", "start"), [
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 3, 26), id="berlin-spring-forward"),
    pytest.param(BERLIN_NIGHT_DESK, at(BERLIN, 2026, 10, 22), id="berlin-fall-back"),
    pytest.param(LORD_HOWE_NIGHT_DESK, at(LORD_HOWE, 2026, 10, 1), id="lord-howe-spring-forward"),
    pytest.param(LORD_HOWE_NIGHT_DESK, at(LORD_HOWE, 2026, 4, 2), id="lord-howe-fall-back"),
    pytest.param(BERLIN_SPLIT_SHIFTS, at(BERLIN, 2026, 3, 26), id="berlin-split-shifts"),
])
def test_elapsed_time_agrees_with_is_open_minute_by_minute(calendar, start):
    minute = timedelta(minutes=1)
    end = start + timedelta(days=7)
    instant, open_minutes = start.astimezone(UTC), 0
    while instant < end:
        open_minutes += is_open(calendar, instant)
        instant += minute

    assert business_time_between(calendar, start, end) == open_minutes * minute


# Properties over a spread of calendars, with starts clustered around clock changes.

CALENDARS = [BERLIN_OFFICE, BAVARIA_OFFICE, BERLIN_SPLIT_SHIFTS, BERLIN_AFTERNOON_OFF,
             BERLIN_SHUTDOWN, BERLIN_NIGHT_DESK, BERLIN_GAP_SHIFT, NEW_YORK_OFFICE,
             NEW_YORK_NIGHT_DESK, NEW_YORK_24X7, KOLKATA_OFFICE, LORD_HOWE_NIGHT_DESK,
             LATE_SHIFT_TO_MIDNIGHT]
CLOCK_CHANGES = [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 3, 8, 7),
                 utc(2026, 11, 1, 6), utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30)]

calendars = st.sampled_from(CALENDARS)
instants = st.one_of(
    st.datetimes(min_value=datetime(2025, 6, 1), max_value=datetime(2027, 6, 1),
                 timezones=st.just(UTC)),
    st.builds(lambda change, shift: change + shift, st.sampled_from(CLOCK_CHANGES),
              st.timedeltas(min_value=-timedelta(days=3), max_value=timedelta(days=3))),
)
durations = st.timedeltas(min_value=timedelta(0), max_value=hours(300))


@settings(deadline=None)
@given(calendar=calendars, start=instants, duration=durations)
def test_elapsed_business_time_to_the_due_time_is_the_duration(calendar, start, duration):
    due = add_business_time(calendar, start, duration)

    assert due >= start
    assert business_time_between(calendar, start, due) == duration
    if duration:
        # The clock runs out during business time, not after it.
        assert is_open(calendar, due - timedelta(microseconds=1))


@settings(deadline=None)
@given(calendar=calendars, start=instants, shorter=durations, longer=durations)
def test_due_time_is_monotonic_in_the_duration(calendar, start, shorter, longer):
    shorter, longer = sorted((shorter, longer))

    assert add_business_time(calendar, start, shorter) <= add_business_time(calendar, start, longer)


@settings(deadline=None)
@given(calendar=calendars, start=instants, first=durations, second=durations)
def test_adding_in_two_steps_is_adding_the_sum(calendar, start, first, second):
    in_two_steps = add_business_time(calendar, add_business_time(calendar, start, first), second)

    assert in_two_steps == add_business_time(calendar, start, first + second)


@settings(deadline=None)
@given(calendar=calendars, start=instants, first=durations, second=durations)
def test_elapsed_time_adds_up_over_a_pause(calendar, start, first, second):
    middle, end = start + first, start + first + second

    assert (business_time_between(calendar, start, middle)
            + business_time_between(calendar, middle, end)
            == business_time_between(calendar, start, end))


@settings(deadline=None)
@given(calendar=calendars, instant=instants)
def test_next_opening_is_open_and_nothing_before_it_is(calendar, instant):
    opening = next_opening(calendar, instant)

    assert opening >= instant
    assert is_open(calendar, opening)
    assert business_time_between(calendar, instant, opening) == timedelta(0)
