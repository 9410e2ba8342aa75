"""The clock follows the case: what each case service calls when the case changes.

Every function only sets fields on the case it is given; the caller saves, in its
transaction. ``now`` is always injectable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from workflows.business_time import business_time_between
from workflows.models import Case
from workflows.services.sla.clocks import (
    _add,
    _resume_from_remaining,
    _retarget,
    _start,
    deadline_live,
    next_check_at,
    resolution_target,
)
from workflows.services.sla.nudges import nudge
from workflows.services.sla.terms import _ZERO, Rules, TermsBook, book_for, rules_for


def start_clocks(cases: Sequence[Case], *, now: datetime,
                 books: Mapping[int, TermsBook]) -> None:
    """Set the clocks of new, unsaved cases from their queues' current policies.

    ``books``: a ``TermsBook`` holding the current terms of each case's queue, by queue
    id (``cases.new_cases`` keeps them cached). Terms are built once per (queue,
    priority); each case's due times are added to its opening time under them.
    """
    # Cases opened together under the same terms get the same clocks: work them out for
    # the first and copy them to the others (the business-time sums are the cost).
    started: dict[int, Case] = {}
    for case in cases:
        book = books[case.queue.pk]
        policy = book.current_policy[case.queue.pk]
        terms = book.terms(queue_id=case.queue.pk, policy_id=policy.pk if policy else None,
                           priority=case.priority)
        first = started.get(id(terms))
        if first is None:
            _start(case, terms, now=now)
            started[id(terms)] = case
        else:
            _copy_clocks(first, case)


_CLOCK_FIELDS = ("sla_policy", "response_due_at", "response_warn_at", "due_at", "warn_at",
                 "sla_remaining", "sla_next_check_at")


def _copy_clocks(source: Case, case: Case) -> None:
    """``_start``'s fields of ``source``, set on ``case`` (started alike)."""
    for name in _CLOCK_FIELDS:
        setattr(case, name, getattr(source, name))


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
    book = book_for(case, now=now)
    rules = rules_for(case, now=now)
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


def _set_next_check(case: Case, rules: Rules, *, now: datetime) -> None:
    case.sla_next_check_at = next_check_at(case, rules, now=now)
    nudge([case], now=now)
