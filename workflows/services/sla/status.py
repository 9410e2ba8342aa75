"""SLA status of an open case, written once: in Python and as a SQL expression.

The rule (one reading everywhere: the dashboard, the case page, the sweeper):

- an instant is **reached at** itself: a deadline due at 10:00 is overdue at 10:00:00
  exactly, and a warning at 10:00 is in force from 10:00 (``reached``);
- **breached**: a running case whose resolution deadline is reached; a case waiting for
  information (its clock stopped) whose deadline was reached when it paused
  (``due_at <= waiting_since``);
- **at risk**: not breached, but a warning is reached: the resolution warning, or, while
  nobody has claimed the case yet at level 0, the first-response warning; for a waiting
  case, a warning reached when it paused;
- **on track**: anything else.

``THRESHOLDS`` is that rule as data, first match wins. ``case_status`` answers it for a case
in Python; ``status_expression`` is the same table as a SQL ``CASE`` for querysets
(``tests/workflows/test_sla_status.py`` holds the two to the same answers, boundary
instants included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case as SqlCase
from django.db.models import F, IntegerChoices, IntegerField, Q, Value, When

from workflows.models import RUNNING_STATES, CaseState


class SlaStatus(IntegerChoices):
    """Higher is worse: the dashboard orders by it."""

    ON_TRACK = 0, "On track"
    AT_RISK = 1, "At risk"
    BREACHED = 2, "Breached"


def reached(instant: datetime | None, now: datetime) -> bool:
    """A deadline or warning is reached at its instant (None: never)."""
    return instant is not None and instant <= now


def reached_q(field: str, now: datetime) -> Q:
    """``reached`` as a condition on a case's instant field."""
    return Q(**{f"{field}__lte": now})


@dataclass(frozen=True)
class Threshold:
    """``status`` holds when a case in one of ``states`` has reached its ``instant``
    field by ``reference`` (a field of the case; None: now); ``unclaimed``: only while
    the first response runs (level 0, nobody has claimed the case)."""

    status: SlaStatus
    states: tuple[str, ...]
    instant: str
    reference: str | None = None
    unclaimed: bool = False

    def holds(self, case, now: datetime) -> bool:
        if case.state not in self.states:
            return False
        if self.unclaimed and not (case.first_claimed_at is None
                                   and case.escalation_level == 0):
            return False
        by = now if self.reference is None else getattr(case, self.reference)
        return by is not None and reached(getattr(case, self.instant), by)

    def q(self, now: datetime) -> Q:
        by = now if self.reference is None else F(self.reference)
        condition = Q(state__in=self.states) & Q(**{f"{self.instant}__lte": by})
        if self.unclaimed:
            condition &= Q(first_claimed_at__isnull=True, escalation_level=0)
        return condition


_RUNNING = tuple(str(state) for state in RUNNING_STATES)
_WAITING = (str(CaseState.WAITING),)

THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(SlaStatus.BREACHED, _RUNNING, "due_at"),
    Threshold(SlaStatus.BREACHED, _WAITING, "due_at", reference="waiting_since"),
    Threshold(SlaStatus.AT_RISK, _RUNNING, "warn_at"),
    Threshold(SlaStatus.AT_RISK, _RUNNING, "response_warn_at", unclaimed=True),
    Threshold(SlaStatus.AT_RISK, _WAITING, "warn_at", reference="waiting_since"),
)


def case_status(case, *, now: datetime) -> SlaStatus:
    """The SLA status of a case (``ON_TRACK`` for a closed one)."""
    for threshold in THRESHOLDS:
        if threshold.holds(case, now):
            return threshold.status
    return SlaStatus.ON_TRACK


def status_expression(now: datetime) -> SqlCase:
    """``case_status`` in SQL, for ``annotate``/``alias`` on cases (first match wins)."""
    return SqlCase(*(When(threshold.q(now), then=Value(int(threshold.status)))
                     for threshold in THRESHOLDS),
                   default=Value(int(SlaStatus.ON_TRACK)), output_field=IntegerField())


# A case can only hold each status once one of these instants is reached: conditions the
# partial indexes on open cases can serve, ahead of the exact expression.
_REACHED_FIRST = {
    SlaStatus.BREACHED: ("due_at",),
    SlaStatus.AT_RISK: ("warn_at", "response_warn_at"),
}


def having_status(cases, status: SlaStatus, *, now: datetime):
    """The open ``cases`` whose SLA status is ``status`` now (breached or at risk):
    ``status_expression`` decides, so the list and the dashboard never disagree."""
    reached_one = Q()
    for field in _REACHED_FIRST[status]:
        reached_one |= reached_q(field, now)
    return (cases.filter(reached_one, state__in=[str(s) for s in RUNNING_STATES + _WAITING])
            .alias(sla_status=status_expression(now)).filter(sla_status=int(status)))
