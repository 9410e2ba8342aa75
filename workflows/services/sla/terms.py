"""SLA terms: which targets, calendar and warning fraction a case runs under.

One case (``rules_for``) or a batch in a fixed number of queries (``TermsBook``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Prefetch

from workflows.business_time import BusinessCalendar
from workflows.models import (
    Calendar,
    CalendarClosure,
    Case,
    Escalation,
    EscalationLevel,
    Queue,
    SlaPolicy,
    SlaTarget,
)
from workflows.process_cache import ProcessCache

DEFAULT_WARNING_FRACTION = 0.75
# Closures that ended longer ago than this cannot affect a clock that is still running.
CLOSURE_LOOKBACK = timedelta(days=366)
_ZERO = timedelta(0)
_ALWAYS_OPEN = BusinessCalendar.always_open()


@dataclass(frozen=True)
class SlaTerms:
    """The SLA a case runs under at level 0."""

    policy: SlaPolicy | None
    calendar: BusinessCalendar
    response_target: timedelta
    resolution_target: timedelta
    warning_fraction: float
    restart_on_reassign: bool = False


@dataclass(frozen=True)
class Rules:
    """Everything that decides one case's clocks at its current level."""

    terms: SlaTerms
    # The chain's time limit at the case's level (level >= 1), if the chain has one.
    level_limit: timedelta | None = None
    # When the case reached its level (level >= 1), from its ``Escalation`` row.
    escalated_at: datetime | None = None


def business_calendar(calendar: Calendar | None,
                      closures: Iterable[CalendarClosure] = ()) -> BusinessCalendar:
    """The engine's calendar for a stored one (None: 24x7 UTC)."""
    if calendar is None:
        return _ALWAYS_OPEN
    return BusinessCalendar(
        time_zone=calendar.time_zone,
        working_hours=_working_hours(calendar.working_hours),
        holiday_country=calendar.holiday_country or None,
        holiday_subdivision=calendar.holiday_subdivision or None,
        closures=tuple((closure.starts_at, closure.ends_at) for closure in closures))


def _working_hours(stored: Mapping) -> dict[int, tuple[tuple[time, time], ...]]:
    """``{"0": [["09:00", "17:00"]]}`` -> ``{0: ((09:00, 17:00),)}``; "24:00" is midnight."""
    def wall(text: str) -> time:
        return time(0) if text in ("24:00", "24:00:00") else time.fromisoformat(text)
    return {int(day): tuple((wall(start), wall(end)) for start, end in intervals)
            for day, intervals in (stored or {}).items() if intervals}


class TermsBook:
    """The SLA terms of a batch of cases, loaded in a fixed number of queries.

    Policies (with calendar, targets and recent closures), queues, the escalation chains'
    levels and when cases reached their level: each one query for the whole batch,
    whatever its size. Calendars are built once per batch.
    """

    def __init__(self, *, now: datetime):
        self.now = now
        self.queues: dict[int, Queue] = {}
        self.policies: dict[int, SlaPolicy] = {}
        self.current_policy: dict[int, SlaPolicy | None] = {}
        self.limits: dict[tuple[int, int], timedelta] = {}
        self.escalated: dict[tuple[int, int], datetime] = {}
        self._calendars: dict[int, BusinessCalendar] = {}
        self._terms: dict[tuple[int, int | None, int], SlaTerms] = {}

    # loading

    def _policies(self, **filters) -> list[SlaPolicy]:
        closures = CalendarClosure.objects.filter(
            ends_at__gt=self.now - CLOSURE_LOOKBACK).order_by("starts_at")
        policies = list(SlaPolicy.objects.filter(**filters).select_related("calendar")
                        .prefetch_related(
                            Prefetch("targets", queryset=SlaTarget.objects.order_by(
                                "-min_priority")),
                            Prefetch("calendar__closures", queryset=closures,
                                     to_attr="recent_closures")))
        self.policies.update((policy.pk, policy) for policy in policies)
        return policies

    def load_queues(self, queues: Iterable[Queue]) -> TermsBook:
        """The given queues and their current policies (for new cases).

        One query (targets joined to their policies and calendars), and one more for
        the closures when a policy has a calendar.
        """
        missing = {queue.pk: queue for queue in queues if queue.pk not in self.current_policy}
        if not missing:
            return self
        self.queues.update(missing)
        for queue_id in missing:
            self.current_policy[queue_id] = None
        by_policy: dict[int, list[SlaTarget]] = {}
        for target in (SlaTarget.objects.filter(policy__queue_id__in=list(missing),
                                                policy__is_current=True)
                       .select_related("policy__calendar").order_by("-min_priority")):
            by_policy.setdefault(target.policy_id, []).append(target)
            self.current_policy[target.policy.queue_id] = target.policy
        calendars = {}
        for policy_id, targets in by_policy.items():
            policy = targets[0].policy
            policy._prefetched_objects_cache = {"targets": targets}
            self.policies[policy_id] = policy
            if policy.calendar is not None:
                calendars.setdefault(policy.calendar_id, []).append(policy.calendar)
        if calendars:
            closures: dict[int, list[CalendarClosure]] = {pk: [] for pk in calendars}
            for closure in CalendarClosure.objects.filter(
                    calendar_id__in=list(calendars),
                    ends_at__gt=self.now - CLOSURE_LOOKBACK).order_by("starts_at"):
                closures[closure.calendar_id].append(closure)
            for calendar_id, instances in calendars.items():
                for calendar in instances:
                    calendar.recent_closures = closures[calendar_id]
        return self

    def load_cases(self, cases: Sequence, *, levels: bool = True) -> TermsBook:
        """What the given cases (or ``(id, queue_id, sla_policy_id, escalation_level)``
        rows) need: their queues, their policy versions, chain levels, level starts."""
        rows = [_row(case) for case in cases]
        queue_ids = {queue_id for _, queue_id, _, _ in rows} - set(self.queues)
        if queue_ids:
            self.queues.update((queue.pk, queue)
                               for queue in Queue.objects.filter(pk__in=queue_ids))
        policy_ids = {policy_id for _, _, policy_id, _ in rows
                      if policy_id is not None} - set(self.policies)
        if policy_ids:
            self._policies(pk__in=policy_ids)
        if not levels:
            return self
        processes = {self.queues[queue_id].process_id for _, queue_id, _, _ in rows
                     if self.queues[queue_id].process_id is not None}
        if processes:
            self.limits.update(
                ((process_id, level), limit) for process_id, level, limit
                in EscalationLevel.objects.filter(process_id__in=processes)
                .values_list("process_id", "level", "time_limit"))
        escalated = [pk for pk, _, _, level in rows if level > 0]
        if escalated:
            self.escalated.update(
                ((case_id, level), created_at) for case_id, level, created_at
                in Escalation.objects.filter(case_id__in=escalated)
                .values_list("case_id", "level", "created_at"))
        return self

    # answers

    def calendar(self, policy: SlaPolicy | None) -> BusinessCalendar:
        if policy is None or policy.calendar_id is None:
            return _ALWAYS_OPEN
        if policy.calendar_id not in self._calendars:
            closures = getattr(policy.calendar, "recent_closures", None)
            if closures is None:
                closures = policy.calendar.closures.filter(
                    ends_at__gt=self.now - CLOSURE_LOOKBACK)
            self._calendars[policy.calendar_id] = business_calendar(policy.calendar, closures)
        return self._calendars[policy.calendar_id]

    def terms(self, *, queue_id: int, policy_id: int | None, priority: int) -> SlaTerms:
        key = (queue_id, policy_id, priority)
        if key not in self._terms:
            self._terms[key] = self._build_terms(queue_id, policy_id, priority)
        return self._terms[key]

    def _build_terms(self, queue_id: int, policy_id: int | None, priority: int) -> SlaTerms:
        queue = self.queues[queue_id]
        policy = self.policies.get(policy_id) if policy_id is not None else None
        if policy is None:
            return SlaTerms(policy=None, calendar=_ALWAYS_OPEN,
                            response_target=queue.response_target,
                            resolution_target=queue.resolution_target,
                            warning_fraction=DEFAULT_WARNING_FRACTION)
        target = next((target for target in policy.targets.all()
                       if target.min_priority <= priority), None)
        # publish_sla_policy always writes a target for priority 0; a hand-made policy
        # without one falls back to the queue's own targets for low priorities.
        return SlaTerms(
            policy=policy, calendar=self.calendar(policy),
            response_target=target.response_target if target else queue.response_target,
            resolution_target=(target.resolution_target if target
                               else queue.resolution_target),
            warning_fraction=policy.warning_fraction,
            restart_on_reassign=policy.restart_on_reassign)

    def level_limit(self, *, queue_id: int, level: int) -> timedelta | None:
        """How long a case may stay at ``level`` (>= 1); None past the chain's end.

        The same rule as ``escalation.escalate``: a gap in the numbering repeats the
        level below it; a process without levels (or a queue without a process) gives
        the queue's resolution target again.
        """
        if level < 1:
            return None
        queue = self.queues[queue_id]
        chain = sorted(((number, limit) for (process_id, number), limit in self.limits.items()
                        if process_id == queue.process_id), key=lambda item: item[0])
        if queue.process_id is None or not chain:
            return queue.resolution_target
        if level > chain[-1][0]:
            return None
        below = [limit for number, limit in chain if number <= level]
        return below[-1] if below else chain[0][1]

    def rules(self, case: Case, *, escalated_at: datetime | None = None) -> Rules:
        """The rules for the case as it is now (its level may be newer than the batch)."""
        terms = self.terms(queue_id=case.queue_id, policy_id=case.sla_policy_id,
                           priority=case.priority)
        level = case.escalation_level
        if level < 1:
            return Rules(terms=terms)
        if escalated_at is None:
            key = (case.pk, level)
            if key not in self.escalated:
                found = (Escalation.objects.filter(case_id=case.pk, level=level)
                         .values_list("created_at", flat=True).first())
                if found is not None:
                    self.escalated[key] = found
            escalated_at = self.escalated.get(key)
        return Rules(terms=terms, level_limit=self.level_limit(queue_id=case.queue_id,
                                                               level=level),
                     escalated_at=escalated_at)


def _row(case) -> tuple[int, int, int | None, int]:
    if isinstance(case, Case):
        return case.pk, case.queue_id, case.sla_policy_id, case.escalation_level
    return tuple(case)


# The terms single cases run under, by (queue, policy version): a person's transition
# (request info, resume, reassign, a new priority) reads them for one case, and loading
# them is five queries and a calendar built anew each time. Kept in each process
# (``workflows.process_cache``: any ORM write to these models drops them, in every
# process where the cache is shared, so for a minute there; else for its short TTL). A
# book holds only the calendar closures near the time it was loaded for.
_case_terms = ProcessCache("sla-case-terms", shared_ttl=60.0)
_case_terms.watch(SlaPolicy, SlaTarget, Calendar, CalendarClosure, Queue, EscalationLevel)
BOOK_SPAN = timedelta(hours=1)


def book_for(case: Case, *, now: datetime) -> TermsBook:
    """A book holding the terms of ``case``'s queue and policy version and its queue's
    escalation chain, from this process's cache when fresh. Nothing case-specific is
    put in it (when the case reached its level is read by ``rules_for``)."""
    key = (case.queue_id, case.sla_policy_id)
    book = _case_terms.lookup([key]).get(key)
    if book is None or abs(book.now - now) >= BOOK_SPAN:
        # Loaded as a level-0 row: the chain's limits, no case's escalation.
        book = TermsBook(now=now).load_cases([(None, case.queue_id, case.sla_policy_id, 0)])
        _case_terms.store(key, book)
    return book


def rules_for(case: Case, *, now: datetime) -> Rules:
    """The rules of one case, for single-case services: no query while this process
    holds its terms, one for when an escalated case reached its level."""
    escalated_at = None
    if case.escalation_level > 0:
        escalated_at = (Escalation.objects.filter(case_id=case.pk, level=case.escalation_level)
                        .values_list("created_at", flat=True).first())
    return book_for(case, now=now).rules(case, escalated_at=escalated_at)
