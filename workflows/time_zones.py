"""Which time zone a person's pages show times in.

In order: the zone they chose on their profile (``User.time_zone``); else their
browser's, which ``static/js/time-zone.js`` puts in the ``COOKIE`` cookie; else the
office's: the zone most business calendars use, else ``settings.TIME_ZONE``, read at
sign-in and kept in the session (pages have no query to spare for it). The API speaks
ISO 8601 in UTC whatever the person's zone, so only pages are converted
(``workflows.middleware.PersonTimeZoneMiddleware``).
"""

from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.db.models import Count

from workflows.models import Calendar

COOKIE = "backstop_tz"
SESSION_KEY = "office_time_zone"


@cache
def known_zones() -> frozenset[str]:
    """The IANA zone names this machine knows (``Europe/Berlin``), read once."""
    return frozenset(available_timezones())


def is_known(name: str) -> bool:
    return name in known_zones()


def office_time_zone() -> str:
    """The zone most business calendars use (ties: by name), else ``settings.TIME_ZONE``.
    One query."""
    row = (Calendar.objects.values("time_zone").annotate(calendars=Count("id"))
           .order_by("-calendars", "time_zone").first())
    return row["time_zone"] if row and is_known(row["time_zone"]) else settings.TIME_ZONE


def browser_time_zone(request) -> str:
    """The zone the person's browser reported, if it is one we know; else ""."""
    name = request.COOKIES.get(COOKIE, "")
    return name if is_known(name) else ""


def zone_name_for(request) -> str:
    """The zone this request's pages show times in (see the module's docstring).

    Signed-out pages (sign-in, errors) show no times of the office's: they ask the
    database nothing and fall back on ``settings.TIME_ZONE``.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return browser_time_zone(request) or settings.TIME_ZONE
    if user.time_zone and is_known(user.time_zone):
        return user.time_zone
    return browser_time_zone(request) or _session_office_zone(request)


def remember_office_time_zone(sender, *, request, **kwargs) -> None:
    """At sign-in (``user_logged_in``): the office's zone, for this session's pages."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = office_time_zone()


def _session_office_zone(request) -> str:
    zone = request.session.get(SESSION_KEY, "")
    if not is_known(zone):  # a session from before sign-in kept it
        zone = request.session[SESSION_KEY] = office_time_zone()
    return zone


def zone_for(request) -> ZoneInfo:
    return ZoneInfo(zone_name_for(request))
