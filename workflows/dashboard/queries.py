"""The pieces of the dashboard's queries: open cases, their SLA status and next
deadline, whether a resolved case met its SLA, a duration in seconds."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Case as SqlCase
from django.db.models import (
    Exists,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    When,
)

from workflows.models import (
    OPEN_STATES,
    Case,
    Escalation,
    EscalationCause,
)
from workflows.services.sla.status import SlaStatus, status_expression

# SLA status of an open case, as ``sla_status`` annotates it (higher is worse): the one
# definition in ``workflows.services.sla.status``.
ON_TRACK, AT_RISK, BREACHED = SlaStatus.ON_TRACK, SlaStatus.AT_RISK, SlaStatus.BREACHED

BREACH_CAUSES = (EscalationCause.RESPONSE_BREACH, EscalationCause.RESOLUTION_BREACH)


def open_cases() -> QuerySet[Case]:
    """Every open case: as many rows as there is open work, however long the history."""
    return Case.objects.filter(state__in=OPEN_STATES)


def sla_status(now: datetime) -> SqlCase:
    """``BREACHED``, ``AT_RISK`` or ``ON_TRACK`` for an open case, in SQL (first match wins):
    ``sla.status_expression``, the SQL form of the rule the case page and sweeper use."""
    return status_expression(now)


def next_deadline() -> SqlCase:
    """The deadline a person should look at first: the first response while it runs and
    comes before the resolution deadline, else the resolution deadline."""
    response_first = (Q(first_claimed_at__isnull=True, escalation_level=0,
                        response_due_at__isnull=False)
                      & (Q(due_at__isnull=True) | Q(response_due_at__lt=F("due_at"))))
    return SqlCase(When(response_first, then=F("response_due_at")), default=F("due_at"))


def sla_met() -> Q:
    """A resolved case met its SLA: resolved by the deadline in force and never escalated
    for a missed deadline (the unique (case, level) index answers the EXISTS, asked only
    of escalated cases)."""
    breach = Escalation.objects.filter(case=OuterRef("pk"), cause__in=BREACH_CAUSES)
    return (Q(due_at__isnull=False, closed_at__lte=F("due_at"))
            & (Q(escalation_level=0) | ~Exists(breach)))


class Seconds(Func):
    """``end - start`` in seconds, as a float.

    ``date_part`` rather than ``EXTRACT``: PostgreSQL's EXTRACT answers ``numeric``, whose
    logarithms cost eight times as much over a month of cases (4.2 s against 0.56 s).
    """

    output_field = FloatField()
    arity = 2

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, arg_joiner=" - ",
                              template="date_part('epoch', %(expressions)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, arg_joiner=") - julianday(",
                              template="((julianday(%(expressions)s)) * 86400.0)", **extra)
