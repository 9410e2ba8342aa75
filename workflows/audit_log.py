"""Reading the audit trail: the audit log's filters and its keyset pages.

The log is read newest first, one page at a time by id (``before``: the last id of the
previous page), never by offset: a page costs the same on the first day and after years
of history. Each filter has an index that serves it in id order (``AuditEvent.Meta``):
``(verb, id)``, ``(actor_label, id)``, ``(object_type, object_id, id)``, ``(case, id)``;
a period is served by ``occurred_at``. The domain adds filters of its own (the use case)
through ``workflows.hooks.register_audit_filter``; the engine never imports it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from workflows import hooks, verbs
from workflows.models import AuditEvent

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class LogFilter:
    actor: str = ""  # an actor label: a username, "ai:<slug>", "system"
    verb: str = ""
    object_type: str = ""
    object_id: str = ""
    case_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None  # excluded
    # The domain's filters by name (``hooks.audit_filters``), with their values.
    extra: dict = field(default_factory=dict)

    def as_data(self) -> dict:
        """What an audit event of an export keeps of the filter."""
        data = {name: value for name, value in (
            ("actor", self.actor), ("verb", self.verb), ("object_type", self.object_type),
            ("object_id", self.object_id), ("case", self.case_id),
            ("since", self.since and self.since.isoformat()),
            ("until", self.until and self.until.isoformat())) if value}
        return {**data, **self.extra}

    @property
    def query(self) -> str:
        """The filter as a page's query string, for links to further pages."""
        values = {"actor": self.actor, "verb": self.verb, "object_type": self.object_type,
                  "object_id": self.object_id, "case": self.case_id or "",
                  "since": self.since.isoformat() if self.since else "",
                  "until": self.until.isoformat() if self.until else "", **self.extra}
        return urlencode({name: value for name, value in values.items() if value})


def parse_instant(value: str, *, name: str, errors: dict, end: bool = False) -> datetime | None:
    """A date (its start; with ``end``, the next day's start) or a date and time."""
    if not value:
        return None
    try:
        # A date first: parse_datetime reads a bare date as its midnight.
        day = parse_date(value)
        moment = None if day else parse_datetime(value)
    except ValueError:
        moment = day = None
    if moment is None and day is None:
        errors[name] = [f"Give a date (2026-12-01) or a date and time "
                        f"(2026-12-01T09:00:00Z), not {value!r}."]
        return None
    if day is not None:
        moment = datetime.combine(day + timedelta(days=1 if end else 0), time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def parse_filter(params: Mapping[str, str]) -> LogFilter:
    """The filter a page's or the API's query asks for; ``ValidationError`` naming each
    field that is not understood."""
    unstorable = {name: ["Null characters are not allowed."]  # PostgreSQL's text cannot
                  for name, value in params.items() if "\x00" in value}  # hold them
    if unstorable:
        raise ValidationError(unstorable)
    errors: dict[str, list[str]] = {}
    verb = params.get("verb", "").strip()
    if verb and verb not in verbs.known():
        errors["verb"] = [f"No audit event is called {verb!r}: choose one from the list."]
    object_type = params.get("object_type", "").strip()
    object_id = params.get("object_id", "").strip()
    if object_id and not object_type:
        errors["object_type"] = ["Say what kind of object the id is of (case, queue, "
                                 "use_case, ...)."]
    case_id = None
    if params.get("case", "").strip():
        try:
            case_id = int(params["case"])
        except ValueError:
            errors["case"] = [f"A case number is a whole number, not {params['case']!r}."]
    since = parse_instant(params.get("since", "").strip(), name="since", errors=errors)
    until = parse_instant(params.get("until", "").strip(), name="until", errors=errors, end=True)
    if since and until and until <= since:
        errors["until"] = ["The period ends before it starts."]
    extra = {}
    for audit_filter in hooks.audit_filters():
        value = params.get(audit_filter.name, "").strip()
        if not value:
            continue
        if audit_filter.condition(value=value) is None:
            errors[audit_filter.name] = [f"No {audit_filter.label.lower()} is called {value!r}."]
        extra[audit_filter.name] = value
    if errors:
        raise ValidationError(errors)
    return LogFilter(actor=params.get("actor", "").strip(), verb=verb, object_type=object_type,
                     object_id=object_id, case_id=case_id, since=since, until=until,
                     extra=extra)


def events(log_filter: LogFilter) -> QuerySet[AuditEvent]:
    """The events the filter selects, newest first."""
    found = AuditEvent.objects.all()
    if log_filter.actor:
        found = found.filter(actor_label=log_filter.actor)
    if log_filter.verb:
        found = found.filter(verb=log_filter.verb)
    if log_filter.object_type:
        found = found.filter(object_type=log_filter.object_type)
    if log_filter.object_id:
        found = found.filter(object_id=log_filter.object_id)
    if log_filter.case_id is not None:
        found = found.filter(case_id=log_filter.case_id)
    if log_filter.since:
        found = found.filter(occurred_at__gte=log_filter.since)
    if log_filter.until:
        found = found.filter(occurred_at__lt=log_filter.until)
    by_name = {audit_filter.name: audit_filter for audit_filter in hooks.audit_filters()}
    for name, value in log_filter.extra.items():
        found = found.filter(by_name[name].condition(value=value) or Q(pk__in=[]))
    return found.order_by("-id")


@dataclass(frozen=True)
class LogLine:
    """One event as a person reads it."""

    event: AuditEvent
    wording: str
    sealed: bool

    @property
    def id(self) -> int:
        return self.event.id


@dataclass(frozen=True)
class LogPage:
    lines: list[LogLine]
    next_before: int | None  # the ``before`` of the next (older) page; None: the last page


def page(log_filter: LogFilter, *, before: int | None = None, size: int = PAGE_SIZE) -> LogPage:
    """One page of the log, newest first, strictly older than event ``before``."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    found = events(log_filter)
    if before is not None:
        found = found.filter(id__lt=before)
    rows = list(found.select_related("seal")[:size + 1])
    more = len(rows) > size
    rows = rows[:size]
    lines = [LogLine(event=event, wording=verbs.wording(event.verb),
                     sealed=hasattr(event, "seal")) for event in rows]
    return LogPage(lines=lines, next_before=rows[-1].id if more else None)
