"""Clock arithmetic: pure functions that set a case's SLA fields and never save."""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.business_time import BusinessCalendar, add_business_time, business_time_between
from workflows.models import RUNNING_STATES, Case, CaseState
from workflows.services.sla.terms import _ZERO, Rules, SlaTerms


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
