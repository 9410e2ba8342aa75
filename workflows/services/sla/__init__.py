"""SLA clocks: due times in business time, stored on the case (I6).

A case has two clocks. The *response* clock runs from opening until the first claim;
the *resolution* clock runs until the case closes, paused while it waits for
information. Each has a warning (``warning_fraction`` of its target) and a deadline:

- ``response_warn_at`` / ``response_due_at`` and ``warn_at`` / ``due_at`` are the
  instants, computed with ``business_time`` over the policy's calendar;
- ``sla_next_check_at`` is the earliest of them still ahead: the only column the sweeper
  reads (``case_sla_check_idx``). Paused and closed cases have none.

Where the terms come from. A queue's current ``SlaPolicy`` version gives, per priority,
the two targets (the ``SlaTarget`` with the highest ``min_priority`` not above the
case's), a calendar (none: 24x7) and the warning fraction. A queue without a policy
uses its own wall-clock ``response_target`` / ``resolution_target`` and
``DEFAULT_WARNING_FRACTION``. A case keeps the version it opened under
(``case.sla_policy``): publishing a new version changes new cases only, until a
manager re-applies it to the open ones (``reapply_policy``, audited).

Levels. Breaching a deadline escalates the case one level (``sweeper`` calls
``escalation.escalate``). The response clock belongs to level 0 only. ``escalate``
chooses how long the case may stay at its new level (the chain's ``time_limit``, the
queue's target without a chain, none past the chain's end) and calls ``on_escalated``,
which sets the resolution clock for the level in business time, with its warning. A
deadline at or before the moment the case reached its level has been dealt with (it is
what escalated it, or the chain ended) and is no longer *live*; that is how these
functions tell a current deadline from a spent one without another column.

Every function here only sets fields on the case it is given; the caller saves, in
its transaction. ``now`` is always injectable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Max, Prefetch

from workflows import actors, selectors
from workflows.business_time import BusinessCalendar, add_business_time, business_time_between
from workflows.models import (
    OPEN_STATES,
    RUNNING_STATES,
    AuditEvent,
    Calendar,
    CalendarClosure,
    Case,
    CaseState,
    Escalation,
    EscalationLevel,
    Queue,
    SlaPolicy,
    SlaTarget,
)
from workflows.services import audit
from workflows.services.errors import CaseConflict
from workflows.verbs import AuditVerb

logger = logging.getLogger("backstop.sla")

DEFAULT_WARNING_FRACTION = 0.75
# Closures that ended longer ago than this cannot affect a clock that is still running.
CLOSURE_LOOKBACK = timedelta(days=366)
# A nudge's ETA lies a little after the check, so that the task never finds it not due.
NUDGE_MARGIN = timedelta(milliseconds=100)
REAPPLY_CHUNK = 500
_ZERO = timedelta(0)
_ALWAYS_OPEN = BusinessCalendar.always_open()


# --- Terms ------------------------------------------------------------------------------


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


def rules_for(case: Case, *, now: datetime) -> Rules:
    """The rules of one case (a handful of queries): for single-case services."""
    return TermsBook(now=now).load_cases([case]).rules(case)


# --- Clock arithmetic (pure: sets fields, never saves) ----------------------------------


def _add(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    return add_business_time(calendar, start, max(duration, _ZERO))


def response_running(case: Case) -> bool:
    """The response clock stops at the first response (a person's own claim or transition,
    ``transitions.responded``), and belongs to level 0 only."""
    return (case.escalation_level == 0 and case.first_claimed_at is None
            and case.response_due_at is not None)


def _live(instant: datetime | None, case: Case, rules: Rules) -> bool:
    """A resolution-clock instant still matters at the case's level.

    At level 0 every one does. At a higher level, one at or before the moment the case
    reached the level is spent: it is what escalated it (or it was warned for then).
    """
    if instant is None:
        return False
    if case.escalation_level == 0 or rules.escalated_at is None:
        return True
    return instant > rules.escalated_at


def deadline_live(case: Case, rules: Rules) -> bool:
    return _live(case.due_at, case, rules)


def warning_live(case: Case, rules: Rules) -> bool:
    return _live(case.warn_at, case, rules)


def resolution_target(case: Case, rules: Rules) -> timedelta | None:
    """The full length of the resolution clock at the case's level."""
    if case.escalation_level == 0:
        return rules.terms.resolution_target
    return rules.level_limit


def next_check_at(case: Case, rules: Rules, *, now: datetime,
                  handled: bool = False) -> datetime | None:
    """When the sweeper must next look at the case; None when no clock runs.

    ``handled``: the sweeper has just dealt with everything due at ``now``, so only later
    instants count. Otherwise (a clock was just changed) a deadline already passed is
    due now, and a warning is due if it is not in the past (one set to ``now`` is).
    """
    if case.state not in RUNNING_STATES:
        return None
    warnings, deadlines = [], []
    if response_running(case):
        warnings.append(case.response_warn_at)
        deadlines.append(case.response_due_at)
    if warning_live(case, rules):
        warnings.append(case.warn_at)
    if deadline_live(case, rules):
        deadlines.append(case.due_at)
    if handled:
        pending = [instant for instant in (*warnings, *deadlines)
                   if instant is not None and instant > now]
    else:
        pending = ([instant for instant in warnings if instant is not None and instant >= now]
                   + [max(instant, now) for instant in deadlines if instant is not None])
    return min(pending, default=None)


def _start(case: Case, terms: SlaTerms, *, now: datetime) -> None:
    calendar, fraction = terms.calendar, terms.warning_fraction
    case.sla_policy = terms.policy
    case.response_due_at = _add(calendar, now, terms.response_target)
    case.response_warn_at = _add(calendar, now, terms.response_target * fraction)
    case.due_at = _add(calendar, now, terms.resolution_target)
    case.warn_at = _add(calendar, now, terms.resolution_target * fraction)
    case.sla_remaining = None
    case.sla_next_check_at = min(case.response_warn_at, case.warn_at, case.response_due_at,
                                 case.due_at)


def _used(calendar: BusinessCalendar, *, due: datetime, target: timedelta,
          now: datetime) -> timedelta:
    """Business time a clock of ``target`` due at ``due`` has used by ``now``."""
    if due > now:
        return target - business_time_between(calendar, now, due)
    return target + business_time_between(calendar, due, now)


def _rescaled(*, used: timedelta, target: timedelta, fraction: float,
              calendar: BusinessCalendar, now: datetime) -> tuple[datetime, datetime]:
    """Deadline and warning of a clock of ``target`` that has used ``used`` by ``now``.

    Time used stays used; an instant already passed becomes ``now`` (due at once).
    """
    return (_add(calendar, now, target - used),
            _add(calendar, now, target * fraction - used))


def _resume_from_remaining(case: Case, rules: Rules, *, now: datetime) -> None:
    remaining = case.sla_remaining
    case.sla_remaining = None
    if remaining is None:
        return  # no deadline was running when it paused: none runs now
    calendar, target = rules.terms.calendar, resolution_target(case, rules)
    case.due_at = _add(calendar, now, remaining)
    if target is not None:
        # Warn when the fraction of the full target is used: (1 - fraction) before due.
        case.warn_at = _add(calendar, now, remaining - target * (1 - rules.terms.warning_fraction))


# --- Services: the clock follows the case -------------------------------------------------


def start_clocks(cases: Sequence[Case], *, now: datetime,
                 books: Mapping[int, TermsBook]) -> None:
    """Set the clocks of new, unsaved cases from their queues' current policies.

    ``books``: a ``TermsBook`` holding the current terms of each case's queue, by queue
    id (``cases.new_cases`` keeps them cached). Terms are built once per (queue,
    priority); each case's due times are added to its opening time under them.
    """
    for case in cases:
        book = books[case.queue.pk]
        policy = book.current_policy[case.queue.pk]
        terms = book.terms(queue_id=case.queue.pk, policy_id=policy.pk if policy else None,
                           priority=case.priority)
        _start(case, terms, now=now)


def pause(case: Case, *, now: datetime, rules: Rules | None = None) -> None:
    """The case waits for information: keep the business time left, stop checking."""
    rules = rules or rules_for(case, now=now)
    if deadline_live(case, rules):
        case.sla_remaining = (business_time_between(rules.terms.calendar, now, case.due_at)
                              if case.due_at > now else _ZERO)
    else:
        case.sla_remaining = None
    case.sla_next_check_at = None


def resume(case: Case, *, now: datetime, rules: Rules | None = None) -> None:
    """The information arrived: the deadline is ``now`` plus the business time left."""
    rules = rules or rules_for(case, now=now)
    _resume_from_remaining(case, rules, now=now)
    _set_next_check(case, rules, now=now)


def on_priority_change(case: Case, *, old_priority: int, now: datetime) -> None:
    """Targets follow the new priority (``case.priority``); business time already used
    stays used. Only level 0 has priority targets: once escalated, the chain governs.
    """
    book = TermsBook(now=now).load_cases([case])
    rules = book.rules(case)
    if case.escalation_level == 0:
        old = book.terms(queue_id=case.queue_id, policy_id=case.sla_policy_id,
                         priority=old_priority)
        _retarget(case, old=old, new=rules.terms, now=now)
    _set_next_check(case, rules, now=now)


def on_reassign(case: Case, *, now: datetime, resumed: bool = False,
                rules: Rules | None = None) -> None:
    """A new assignee: a paused clock runs again, restarted in full if the policy says so.

    ``resumed``: the case was waiting (reassigning takes it out of ``waiting``).
    """
    rules = rules or rules_for(case, now=now)
    if resumed:
        _resume_from_remaining(case, rules, now=now)
    target = resolution_target(case, rules)
    if rules.terms.restart_on_reassign and target is not None:
        calendar = rules.terms.calendar
        case.due_at = _add(calendar, now, target)
        case.warn_at = _add(calendar, now, target * rules.terms.warning_fraction)
        case.sla_remaining = None
    _set_next_check(case, rules, now=now)


def on_escalated(case: Case, *, time_limit: timedelta, now: datetime,
                 rules: Rules | None = None) -> None:
    """The case reached its level at ``now`` with ``time_limit`` to stay there: set the
    level's deadline and warning in business time on the policy's calendar.

    ``escalation.escalate`` chooses the limit (the chain's level, the queue's target
    without a chain) and calls this in its transaction. Idempotent for one ``now``.
    """
    rules = rules or rules_for(case, now=now)
    rules = Rules(terms=rules.terms, level_limit=time_limit, escalated_at=now)
    calendar = rules.terms.calendar
    case.sla_remaining = None
    case.due_at = _add(calendar, now, time_limit)
    case.warn_at = _add(calendar, now, time_limit * rules.terms.warning_fraction)
    _set_next_check(case, rules, now=now)


def _retarget(case: Case, *, old: SlaTerms, new: SlaTerms, now: datetime) -> None:
    """Move a level-0 case from ``old`` terms to ``new`` keeping the time it has used."""
    if response_running(case):
        used = _used(old.calendar, due=case.response_due_at, target=old.response_target,
                     now=now)
        case.response_due_at, case.response_warn_at = _rescaled(
            used=used, target=new.response_target, fraction=new.warning_fraction,
            calendar=new.calendar, now=now)
    if case.state == CaseState.WAITING:
        if case.sla_remaining is not None:
            case.sla_remaining = max(
                _ZERO, case.sla_remaining + new.resolution_target - old.resolution_target)
    elif case.due_at is not None:
        used = _used(old.calendar, due=case.due_at, target=old.resolution_target, now=now)
        case.due_at, case.warn_at = _rescaled(
            used=used, target=new.resolution_target, fraction=new.warning_fraction,
            calendar=new.calendar, now=now)


def _set_next_check(case: Case, rules: Rules, *, now: datetime) -> None:
    case.sla_next_check_at = next_check_at(case, rules, now=now)
    nudge([case], now=now)


# --- Policies ---------------------------------------------------------------------------


def publish_sla_policy(*, queue: Queue, targets: Sequence[Mapping], calendar: Calendar | None,
                       warning_fraction: float, actor, now: datetime,
                       restart_on_reassign: bool = False) -> SlaPolicy:
    """Write the queue's next SLA policy version and make it current (audited).

    ``targets``: ``{"min_priority", "response_target", "resolution_target"}`` each; one
    must start at priority 0 so that every case has one. Cases already open keep the
    version they started under until ``reapply_policy``. ``actor`` must be a manager
    (``PermissionDenied``); ``None`` is the system itself (seeding), audited as such.
    """
    _require_manager(actor, "publish an SLA policy")
    cleaned = _clean_targets(targets)
    if not 0 < warning_fraction < 1:
        raise ValidationError({"warning_fraction": [
            f"Warn at a fraction of the target between 0 and 1 (e.g. 0.75), not "
            f"{warning_fraction}."]})
    with transaction.atomic():
        # Versions of one queue are numbered one after another: serialize on the queue.
        Queue.objects.select_for_update().filter(pk=queue.pk).first()
        previous = SlaPolicy.objects.filter(queue=queue).aggregate(last=Max("version"))["last"]
        SlaPolicy.objects.filter(queue=queue, is_current=True).update(is_current=False)
        policy = SlaPolicy.objects.create(
            queue=queue, version=(previous or 0) + 1, is_current=True, calendar=calendar,
            warning_fraction=warning_fraction, restart_on_reassign=restart_on_reassign,
            created_by=actors.person(actor))
        SlaTarget.objects.bulk_create(SlaTarget(policy=policy, **target) for target in cleaned)
        audit.record(actor=actor, verb=AuditVerb.SLA_POLICY_PUBLISHED, object_type="sla_policy",
                     object_id=policy.pk, now=now,
                     data={"queue": queue.slug, "version": policy.version,
                           "previous_version": previous,
                           "calendar": calendar.name if calendar else None,
                           "warning_fraction": warning_fraction,
                           "restart_on_reassign": restart_on_reassign,
                           "targets": [{"min_priority": target["min_priority"],
                                        "response_target": str(target["response_target"]),
                                        "resolution_target": str(target["resolution_target"])}
                                       for target in cleaned]})
    return policy


def _require_manager(actor, action: str) -> None:
    actors.require(actor)
    if not actors.is_system(actor) and not selectors.is_manager(actor):
        raise PermissionDenied(f"Only managers may {action}.")


def _clean_targets(targets: Sequence[Mapping]) -> list[dict]:
    cleaned, seen = [], set()
    for target in targets:
        row = {"min_priority": int(target.get("min_priority", 0)),
               "response_target": target.get("response_target"),
               "resolution_target": target.get("resolution_target")}
        for field in ("response_target", "resolution_target"):
            if not isinstance(row[field], timedelta) or row[field] <= _ZERO:
                raise ValidationError({"targets": [
                    f"Give each target a positive {field.replace('_', ' ')} (priority "
                    f"{row['min_priority']})."]})
        if row["min_priority"] in seen:
            raise ValidationError({"targets": [
                f"Priority {row['min_priority']} has two targets: keep one."]})
        seen.add(row["min_priority"])
        cleaned.append(row)
    if 0 not in seen:
        raise ValidationError({"targets": [
            "Add a target for priority 0 so that every case has one."]})
    return sorted(cleaned, key=lambda row: row["min_priority"])


def reapply_policy(*, queue: Queue, actor, now: datetime,
                   expected_version: int | None = None) -> int:
    """Move the queue's open cases to its current policy version; answer how many moved.

    Explicit and audited: one ``case.sla_reapplied`` event per case (its own history
    says why its due time moved, before and after) and one ``sla_policy.reapplied``
    summary on the policy. Business time already used stays used. Cases run in chunks,
    each its own transaction with its rows locked, so a long re-application neither
    blocks reviewers for long nor loses a concurrent change; run again, it continues.
    ``actor``: a manager, or ``None`` for the system. ``expected_version``: the version
    the manager means; if another is current by now, nothing moves (``CaseConflict``).
    """
    _require_manager(actor, "re-apply an SLA policy to open cases")
    policy = SlaPolicy.objects.filter(queue=queue, is_current=True).first()
    if policy is None:
        raise CaseConflict("This queue has no SLA policy to re-apply; publish one first.")
    if expected_version is not None and policy.version != expected_version:
        raise CaseConflict(
            f"The queue's current SLA policy is version {policy.version}, not "
            f"{expected_version}: read it, then re-apply the version you mean.")
    moved = 0
    last_id = 0
    while True:
        with transaction.atomic():
            chunk = list(Case.objects.filter(queue=queue, state__in=OPEN_STATES, pk__gt=last_id)
                         .exclude(sla_policy=policy).select_related("queue", "sla_policy")
                         .order_by("pk").select_for_update(of=("self",))[:REAPPLY_CHUNK])
            if not chunk:
                break
            last_id = chunk[-1].pk
            moved += _reapply_chunk(chunk, policy=policy, actor=actor, now=now)
    audit.record(actor=actor, verb=AuditVerb.SLA_POLICY_REAPPLIED, object_type="sla_policy",
                 object_id=policy.pk, now=now,
                 data={"queue": queue.slug, "version": policy.version, "cases": moved})
    return moved


def _reapply_chunk(chunk: list[Case], *, policy: SlaPolicy, actor, now: datetime) -> int:
    book = TermsBook(now=now).load_cases(chunk)
    book.load_queues([chunk[0].queue])  # loads ``policy`` as the queue's current one
    fields = ["sla_policy", "response_due_at", "response_warn_at", "due_at", "warn_at",
              "sla_remaining", "sla_next_check_at", "version"]
    events = []
    for case in chunk:
        old = book.terms(queue_id=case.queue_id, policy_id=case.sla_policy_id,
                         priority=case.priority)
        before = {"policy_version": old.policy.version if old.policy else None,
                  "response_due_at": case.response_due_at, "due_at": case.due_at,
                  "sla_remaining": str(case.sla_remaining) if case.sla_remaining else None}
        case.sla_policy = policy
        rules = book.rules(case)
        if case.escalation_level == 0:
            _retarget(case, old=old, new=rules.terms, now=now)
        if case.state in RUNNING_STATES:
            case.sla_next_check_at = next_check_at(case, rules, now=now)
        case.bump_version()  # the rows are locked: nobody else writes them meanwhile
        events.append(audit.build(
            verb=AuditVerb.CASE_SLA_REAPPLIED, object_type="case", object_id=case.pk, case=case,
            actor=actor, now=now,
            data={"before": before,
                  "after": {"policy_version": policy.version,
                            "response_due_at": case.response_due_at, "due_at": case.due_at,
                            "sla_remaining": (str(case.sla_remaining) if case.sla_remaining
                                              else None)},
                  "version": case.version}))
    Case.objects.bulk_update(chunk, fields)
    AuditEvent.objects.bulk_create(events)
    nudge(chunk, now=now)
    return len(chunk)


# --- Calendars: custom closures -----------------------------------------------------------


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


# --- Nudges: short-ETA tasks, sent after commit (the row stays the truth) ----------------


def nudge_horizon() -> timedelta:
    """How far ahead a check may be nudged: well inside the broker's visibility timeout.

    A worker holds an ETA task unacknowledged until it runs; past the visibility timeout
    Redis would hand it to a second worker. Tasks a dead worker held come back only
    after that timeout: the sweep, not the nudge, is what loses nothing."""
    horizon = getattr(settings, "SLA_NUDGE_HORIZON", timedelta(minutes=5))
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    if "visibility_timeout" in options:
        horizon = min(horizon, timedelta(seconds=options["visibility_timeout"] / 2))
    return horizon


def nudge(cases: Iterable[Case], *, now: datetime) -> None:
    """After commit, schedule ``check_case_clock`` for the cases whose next check is near."""
    if not getattr(settings, "SLA_NUDGES_ENABLED", True):
        return
    horizon = now + nudge_horizon()
    due = [(case.pk, case.sla_next_check_at) for case in cases
           if case.pk is not None and case.sla_next_check_at is not None
           and case.sla_next_check_at <= horizon]
    if due:
        transaction.on_commit(lambda: send_nudges(due), robust=True)


def send_nudges(due: Sequence[tuple[int, datetime]]) -> int:
    """Publish the nudges; a broker that is down loses them, and the sweep catches up."""
    from workflows.tasks import check_case_clock

    sent = 0
    try:
        for case_id, check_at in due:
            check_case_clock.apply_async((case_id,), eta=check_at + NUDGE_MARGIN, retry=False)
            sent += 1
    except Exception:  # the broker is unreachable: nudges are an optimisation only (I6)
        logger.warning("Could not nudge %d SLA checks; the sweep will take them.",
                       len(due) - sent, exc_info=True)
    return sent


def uses_row_locks() -> bool:
    return connection.features.has_select_for_update_skip_locked
