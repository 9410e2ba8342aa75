"""SLA status has one definition (``workflows.services.sla.status``): the Python form and
the SQL form answer alike on the same cases, and a deadline is reached at its instant on
the dashboard, on the case page and in the sweeper."""

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
import time_machine

from tests.factories import CaseFactory, QueueFactory, UserFactory
from workflows import dashboard
from workflows.models import Case, CaseState, Escalation
from workflows.services import sla, sweeper
from workflows.services.sla import SlaStatus
from workflows.templatetags.casework import due

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
PAUSED_AT = NOW - timedelta(hours=1)
# Before, at and after the reference instant (now, or when a waiting case paused).
OFFSETS = (None, -TICK, timedelta(0), TICK)


def _grid(queue) -> list[Case]:
    reviewer = UserFactory()
    cases = []
    states = (CaseState.OPEN, CaseState.ASSIGNED, CaseState.PENDING_APPROVAL,
              CaseState.ESCALATED, CaseState.WAITING)
    for state, due_at, warn_at, response_warn_at, claimed, level in product(
            states, OFFSETS, OFFSETS, OFFSETS, (False, True), (0, 1)):
        reference = PAUSED_AT if state == CaseState.WAITING else NOW
        cases.append(CaseFactory.build(
            queue=queue, state=state, created_at=NOW - timedelta(days=1),
            escalation_level=level, first_claimed_at=PAUSED_AT if claimed else None,
            assignee=None if state in (CaseState.OPEN, CaseState.ESCALATED) else reviewer,
            waiting_since=PAUSED_AT if state == CaseState.WAITING else None,
            due_at=None if due_at is None else reference + due_at,
            warn_at=None if warn_at is None else reference + warn_at,
            response_warn_at=None if response_warn_at is None else reference + response_warn_at,
            response_due_at=NOW + timedelta(hours=1)))
    return Case.objects.bulk_create(cases)


def test_python_and_sql_give_every_case_the_same_sla_status_boundaries_included():
    queue = QueueFactory()
    cases = _grid(queue)

    in_sql = dict(Case.objects.filter(queue=queue)
                  .annotate(status=sla.status_expression(NOW)).values_list("pk", "status"))

    in_python = {case.pk: sla.case_status(case, now=NOW) for case in cases}
    assert in_sql == in_python
    assert set(in_python.values()) == set(SlaStatus)  # the grid reaches every answer


def test_the_case_lists_sla_filter_picks_exactly_the_cases_of_each_status():
    queue = QueueFactory()
    cases = _grid(queue)
    in_python = {case.pk: sla.case_status(case, now=NOW) for case in cases}

    for status in (SlaStatus.BREACHED, SlaStatus.AT_RISK):
        picked = set(sla.having_status(Case.objects.filter(queue=queue), status, now=NOW)
                     .values_list("pk", flat=True))
        assert picked == {pk for pk, answer in in_python.items() if answer == status}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"due_at": NOW}, SlaStatus.BREACHED),
    ({"due_at": NOW + TICK}, SlaStatus.ON_TRACK),
    ({"due_at": NOW + TICK, "warn_at": NOW}, SlaStatus.AT_RISK),
    ({"due_at": NOW + TICK, "warn_at": NOW + TICK}, SlaStatus.ON_TRACK),
    ({"due_at": NOW + TICK, "response_warn_at": NOW}, SlaStatus.AT_RISK),
    ({"due_at": NOW + TICK, "response_warn_at": NOW, "escalation_level": 1}, SlaStatus.ON_TRACK),
    ({"state": CaseState.WAITING, "waiting_since": PAUSED_AT, "due_at": PAUSED_AT},
     SlaStatus.BREACHED),
    ({"state": CaseState.WAITING, "waiting_since": PAUSED_AT, "due_at": PAUSED_AT + TICK,
      "warn_at": PAUSED_AT}, SlaStatus.AT_RISK),
    ({"state": CaseState.WAITING, "waiting_since": PAUSED_AT, "due_at": NOW - TICK},
     SlaStatus.ON_TRACK),
    ({"state": CaseState.RESOLVED, "due_at": NOW - TICK, "closed_at": NOW}, SlaStatus.ON_TRACK),
])
def test_a_deadline_or_warning_is_reached_at_its_instant(fields, expected):
    values = {"state": CaseState.OPEN, "warn_at": None, "response_warn_at": None, **fields}
    case = CaseFactory(**values)

    assert sla.case_status(case, now=NOW) == expected
    assert (Case.objects.filter(pk=case.pk).annotate(status=sla.status_expression(NOW))
            .get().status) == expected


def test_the_dashboard_counts_a_case_due_this_instant_as_breached_and_overdue():
    queue = QueueFactory()
    due_now = CaseFactory(queue=queue, state=CaseState.OPEN, due_at=NOW, warn_at=None,
                          response_warn_at=None)
    at_risk = CaseFactory(queue=queue, state=CaseState.OPEN, due_at=NOW + TICK, warn_at=NOW,
                          response_warn_at=None)

    live, _ = dashboard.live_by_queue(queue_ids=[queue.pk], now=NOW)
    urgent = dashboard.urgent_cases(queue_ids=[queue.pk], now=NOW)

    assert (live[queue.pk].breached, live[queue.pk].at_risk) == (1, 1)
    assert [(row.case.pk, row.status, row.overdue) for row in urgent] == [
        (due_now.pk, SlaStatus.BREACHED, True), (at_risk.pk, SlaStatus.AT_RISK, False)]


def test_the_case_page_countdown_says_overdue_at_the_deadline_instant():
    with time_machine.travel(NOW, tick=False):
        at_deadline, before = due(NOW), due(NOW + timedelta(minutes=5))

    assert 'class="due due--overdue"' in at_deadline and ">due now</time>" in at_deadline
    assert 'class="due due--soon"' in before and ">in 5 min</time>" in before


def test_the_sweeper_escalates_a_case_at_its_deadline_instant_and_not_a_tick_before():
    queue, reviewer = QueueFactory(), UserFactory()
    on_time = CaseFactory(queue=queue, state=CaseState.ASSIGNED, assignee=reviewer,
                          due_at=NOW + TICK,
                          warn_at=None, response_warn_at=None, response_due_at=None,
                          first_claimed_at=PAUSED_AT, sla_next_check_at=NOW + TICK)
    due_now = CaseFactory(queue=queue, state=CaseState.ASSIGNED, assignee=reviewer,
                          due_at=NOW, warn_at=None,
                          response_warn_at=None, response_due_at=None,
                          first_claimed_at=PAUSED_AT, sla_next_check_at=NOW)

    sweeper.check_case(case_id=on_time.pk, now=NOW)
    sweeper.check_case(case_id=due_now.pk, now=NOW)

    assert list(Escalation.objects.values_list("case_id", "level")) == [(due_now.pk, 1)]
