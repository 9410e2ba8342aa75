"""SLA clocks on cases (``workflows/services/sla.py``): due times in business time from the
queue's policy version, paused while waiting, following priority and reassignment, and
re-applied to open cases only when a manager says so. ``now`` is injected everywhere."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import QueueFactory
from tests.workflows.sla_support import (
    berlin,
    office_calendar,
    open_case,
    publish,
    utc,
)
from workflows.models import AuditEvent, Case, CaseState
from workflows.services import claiming, sla, sweeper, transitions
from workflows.services.cases import NewCase, _current_terms, open_cases

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
T = utc(2026, 3, 2, 10, 0)  # a Monday; 24x7 unless a test gives a calendar


@pytest.fixture(autouse=True)
def no_nudges(settings):
    settings.SLA_NUDGES_ENABLED = False


# -- opening ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_policy_a_case_runs_on_the_queues_wall_clock_targets(queue):
    case = open_case(queue, now=T)

    assert case.sla_policy is None
    assert case.response_due_at == T + queue.response_target
    assert case.response_warn_at == T + queue.response_target * 0.75
    assert case.due_at == T + queue.resolution_target
    assert case.warn_at == T + queue.resolution_target * 0.75
    assert case.sla_next_check_at == case.response_warn_at


@pytest.mark.django_db
def test_due_times_count_only_business_hours(queue):
    policy = publish(queue, response=2 * HOUR, resolution=8 * HOUR, calendar=office_calendar())

    # Friday 16:00 in Berlin: one working hour left that day, then Monday.
    case = open_case(queue, now=berlin(2026, 1, 9, 16, 0))

    assert case.sla_policy == policy
    assert case.response_warn_at == berlin(2026, 1, 12, 9, 30)
    assert case.response_due_at == berlin(2026, 1, 12, 10, 0)
    assert case.warn_at == berlin(2026, 1, 12, 14, 0)
    assert case.due_at == berlin(2026, 1, 12, 16, 0)
    assert case.sla_next_check_at == berlin(2026, 1, 12, 9, 30)


@pytest.mark.django_db
def test_public_holidays_are_not_business_time(queue):
    publish(queue, resolution=8 * HOUR, calendar=office_calendar())

    # Maundy Thursday 16:00: Good Friday, the weekend and Easter Monday are closed.
    case = open_case(queue, now=berlin(2026, 4, 2, 16, 0))

    assert case.due_at == berlin(2026, 4, 7, 16, 0)


@pytest.mark.django_db
def test_a_calendar_closure_is_not_business_time(queue):
    offsite = (berlin(2026, 1, 12, 9, 0), berlin(2026, 1, 12, 12, 0))
    publish(queue, resolution=8 * HOUR, calendar=office_calendar(closures=[offsite]))

    case = open_case(queue, now=berlin(2026, 1, 9, 16, 0))

    # 1 h on Friday, Monday 12:00-17:00, then 2 h on Tuesday.
    assert case.due_at == berlin(2026, 1, 13, 11, 0)


@pytest.mark.django_db
def test_the_highest_target_not_above_the_priority_applies(queue):
    publish(queue, response=HOUR, resolution=8 * HOUR,
            more=[(80, 15 * MINUTE, 2 * HOUR), (60, 30 * MINUTE, 4 * HOUR)])

    urgent = open_case(queue, now=T, priority=90)
    high = open_case(queue, now=T, priority=60)
    normal = open_case(queue, now=T, priority=59)

    assert (urgent.response_due_at, urgent.due_at) == (T + 15 * MINUTE, T + 2 * HOUR)
    assert (high.response_due_at, high.due_at) == (T + 30 * MINUTE, T + 4 * HOUR)
    assert (normal.response_due_at, normal.due_at) == (T + HOUR, T + 8 * HOUR)


@pytest.mark.django_db
def test_opening_a_batch_takes_the_same_queries_whatever_its_size(queue):
    other = QueueFactory(slug="other")
    publish(queue, calendar=office_calendar(closures=[(berlin(2026, 3, 3, 9),
                                                        berlin(2026, 3, 3, 10))]),
            more=[(80, 15 * MINUTE, 2 * HOUR)])
    publish(other, calendar=office_calendar("Other office"))

    def reads_for(size: int) -> list[str]:
        specs = [NewCase(queue=(queue, other)[n % 2], title=f"case {n}", priority=n % 100)
                 for n in range(size)]
        _current_terms.clear()  # read the terms, not the cache
        with CaptureQueriesContext(connection) as captured:
            open_cases(specs=specs, actor_label="test", now=T)
        # SQLite splits bulk inserts into chunks of 999 parameters; the rest is fixed.
        return [query["sql"] for query in captured if not query["sql"].startswith("INSERT")]

    small, large = reads_for(4), reads_for(300)
    assert len(small) == len(large) == 2  # the current policies' targets, their closures


@pytest.mark.django_db
def test_cases_opened_together_have_the_clocks_each_would_have_alone(queue):
    other = QueueFactory(slug="other")
    publish(queue, calendar=office_calendar(), more=[(80, 15 * MINUTE, 2 * HOUR)])
    publish(other, calendar=office_calendar("Other office"), response=2 * HOUR)
    now = berlin(2026, 3, 3, 16, 30)  # business time runs out within the hour
    specs = [NewCase(queue=(queue, other)[n % 2], title=f"case {n}", priority=(50, 90)[n % 3 > 0])
             for n in range(12)]
    clocks = ("sla_policy_id", "response_due_at", "response_warn_at", "due_at", "warn_at",
              "sla_remaining", "sla_next_check_at")

    together = open_cases(specs=specs, actor_label="test", now=now)
    alone = [open_cases(specs=[spec], actor_label="test", now=now)[0] for spec in specs]

    assert len({case.due_at for case in together}) > 1
    assert ([[getattr(case, name) for name in clocks] for case in together]
            == [[getattr(case, name) for name in clocks] for case in alone])


# -- waiting pauses the clock -----------------------------------------------------------


@pytest.mark.django_db
def test_waiting_pauses_the_resolution_clock_and_resume_restarts_it_with_what_was_left(
        queue, member):
    publish(queue, resolution=8 * HOUR, calendar=office_calendar())
    case = open_case(queue, now=berlin(2026, 1, 9, 16, 0))  # due Monday 16:00
    claiming.claim(case_id=case.pk, user=member, now=berlin(2026, 1, 9, 16, 10))

    transitions.request_info(case_id=case.pk, user=member, reason="Need the PO scan",
                             now=berlin(2026, 1, 9, 16, 30))
    case.refresh_from_db()
    assert case.state == CaseState.WAITING
    assert case.sla_remaining == timedelta(hours=7, minutes=30)  # 0.5 h Friday + 7 h Monday
    assert case.sla_next_check_at is None

    transitions.resume(case_id=case.pk, user=member, now=berlin(2026, 1, 14, 10, 0))
    case.refresh_from_db()
    # Wednesday 10:00 plus 7.5 business hours; the warning when 6 of 8 hours are used.
    assert case.due_at == berlin(2026, 1, 15, 9, 30)
    assert case.warn_at == berlin(2026, 1, 14, 15, 30)
    assert case.sla_remaining is None
    assert case.sla_next_check_at == case.warn_at  # the response clock stopped at the claim


@pytest.mark.django_db
def test_a_case_resumed_after_its_deadline_had_passed_is_due_at_once(queue, member):
    publish(queue, resolution=HOUR)
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T)
    transitions.request_info(case_id=case.pk, user=member, reason="Scan", now=T + 2 * HOUR)
    transitions.resume(case_id=case.pk, user=member, now=T + 3 * HOUR)

    case.refresh_from_db()
    assert case.due_at == T + 3 * HOUR
    assert case.sla_next_check_at == T + 3 * HOUR


# -- priority --------------------------------------------------------------------------


@pytest.mark.django_db
def test_raising_the_priority_shortens_the_clock_keeping_the_time_used(queue, member,
                                                                       manager):
    publish(queue, response=HOUR, resolution=8 * HOUR, more=[(80, 15 * MINUTE, 2 * HOUR)])
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T + 10 * MINUTE)

    transitions.change_priority(case_id=case.pk, user=manager, priority=90, now=T + HOUR)

    case.refresh_from_db()
    assert case.priority == 90
    assert case.due_at == T + 2 * HOUR  # 1 h used of the new 2 h
    assert case.warn_at == T + 90 * MINUTE
    assert case.sla_next_check_at == T + 90 * MINUTE
    event = AuditEvent.objects.filter(case=case, verb="case.priority_changed").get()
    assert (event.data["priority_from"], event.data["priority_to"]) == (50, 90)


@pytest.mark.django_db
def test_a_priority_whose_target_is_already_used_up_makes_the_case_due_now(queue, manager):
    publish(queue, response=HOUR, resolution=8 * HOUR, more=[(80, 15 * MINUTE, 2 * HOUR)])
    case = open_case(queue, now=T)

    transitions.change_priority(case_id=case.pk, user=manager, priority=80, now=T + 30 * MINUTE)

    case.refresh_from_db()
    assert case.response_due_at == T + 30 * MINUTE  # 30 min used of 15: due now
    assert case.due_at == T + 2 * HOUR
    assert case.sla_next_check_at == T + 30 * MINUTE


@pytest.mark.django_db
def test_lowering_the_priority_of_a_waiting_case_adds_to_the_time_left(queue, member,
                                                                       manager):
    publish(queue, resolution=8 * HOUR, more=[(80, 15 * MINUTE, 2 * HOUR)])
    case = open_case(queue, now=T, priority=90)
    claiming.claim(case_id=case.pk, user=member, now=T)
    transitions.request_info(case_id=case.pk, user=member, reason="Scan", now=T + HOUR)

    transitions.change_priority(case_id=case.pk, user=manager, priority=10, now=T + 2 * HOUR)

    case.refresh_from_db()
    assert case.sla_remaining == 7 * HOUR  # 1 h used of 8
    assert case.sla_next_check_at is None  # still paused


@pytest.mark.django_db
def test_only_a_manager_changes_a_priority(queue, member):
    case = open_case(queue, now=T)
    with pytest.raises(transitions.PermissionDenied):
        transitions.change_priority(case_id=case.pk, user=member, priority=90, now=T)


# -- reassignment ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("restart", "due"), [(False, T + 8 * HOUR), (True, T + 11 * HOUR)])
def test_reassigning_restarts_the_clock_only_where_the_policy_says_so(queue, member,
                                                                      second_member, manager,
                                                                      restart, due):
    publish(queue, resolution=8 * HOUR, restart_on_reassign=restart)
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T)

    transitions.reassign(case_id=case.pk, user=manager, to_user=second_member,
                         now=T + 3 * HOUR)

    case.refresh_from_db()
    assert case.due_at == due


@pytest.mark.django_db
def test_reassigning_a_waiting_case_runs_its_clock_again_from_what_was_left(
        queue, member, second_member, manager):
    publish(queue, resolution=8 * HOUR)
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T)
    transitions.request_info(case_id=case.pk, user=member, reason="Scan", now=T + HOUR)

    transitions.reassign(case_id=case.pk, user=manager, to_user=second_member,
                         now=T + 5 * HOUR)

    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED
    assert case.due_at == T + 12 * HOUR
    assert case.sla_remaining is None
    assert case.sla_next_check_at == T + 10 * HOUR  # the warning: 1 h used, 5 h more


# -- policy versions --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_policy_version_changes_new_cases_only(queue, manager):
    first = publish(queue, response=HOUR, resolution=8 * HOUR, actor=manager)
    before = open_case(queue, now=T)

    second = publish(queue, response=30 * MINUTE, resolution=4 * HOUR, actor=manager,
                     now=T + HOUR)
    after = open_case(queue, now=T + HOUR)

    before.refresh_from_db()
    first.refresh_from_db()
    assert (first.version, second.version) == (1, 2)
    assert not first.is_current and second.is_current
    assert before.sla_policy == first and before.due_at == T + 8 * HOUR
    assert after.sla_policy == second and after.due_at == T + 5 * HOUR
    published = AuditEvent.objects.filter(verb="sla_policy.published", object_id=second.pk)
    assert published.get().data["previous_version"] == 1


@pytest.mark.django_db
def test_reapplying_a_policy_moves_open_cases_to_it_keeping_their_time_used(queue, member,
                                                                            manager):
    publish(queue, response=HOUR, resolution=8 * HOUR, actor=manager)
    old_open = open_case(queue, now=T)
    claiming.claim(case_id=old_open.pk, user=member, now=T)
    old_closed = open_case(queue, now=T)
    Case.objects.filter(pk=old_closed.pk).update(state=CaseState.CANCELLED, closed_at=T)
    current = publish(queue, response=30 * MINUTE, resolution=4 * HOUR, actor=manager,
                      now=T + HOUR)
    already_current = open_case(queue, now=T + HOUR)

    moved = sla.reapply_policy(queue=queue, actor=manager, now=T + 2 * HOUR)

    assert moved == 1
    old_open.refresh_from_db()
    assert old_open.sla_policy == current
    assert old_open.due_at == T + 4 * HOUR  # 2 h used of the new 4 h
    assert old_open.warn_at == T + 3 * HOUR
    assert old_open.sla_next_check_at == T + 3 * HOUR
    assert Case.objects.get(pk=old_closed.pk).due_at == T + 8 * HOUR
    assert Case.objects.get(pk=already_current.pk).due_at == T + 5 * HOUR
    event = AuditEvent.objects.get(verb="case.sla_reapplied")
    assert event.case_id == old_open.pk and event.actor == manager
    assert event.data["before"]["policy_version"] == 1
    assert event.data["after"]["policy_version"] == 2
    summary = AuditEvent.objects.get(verb="sla_policy.reapplied")
    assert summary.data["cases"] == 1


@pytest.mark.django_db
def test_reapplying_twice_moves_nothing_the_second_time(queue, manager):
    publish(queue, actor=manager)
    open_case(queue, now=T)
    publish(queue, resolution=4 * HOUR, actor=manager, now=T)

    assert sla.reapply_policy(queue=queue, actor=manager, now=T + HOUR) == 1
    assert sla.reapply_policy(queue=queue, actor=manager, now=T + HOUR) == 0


@pytest.mark.django_db
def test_a_waiting_case_keeps_waiting_when_a_policy_is_reapplied(queue, member, manager):
    publish(queue, resolution=8 * HOUR, actor=manager)
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T)
    transitions.request_info(case_id=case.pk, user=member, reason="Scan", now=T + HOUR)
    publish(queue, resolution=4 * HOUR, actor=manager, now=T + HOUR)

    sla.reapply_policy(queue=queue, actor=manager, now=T + 2 * HOUR)

    case.refresh_from_db()
    assert case.sla_remaining == 3 * HOUR
    assert case.sla_next_check_at is None


@pytest.mark.django_db
@pytest.mark.parametrize(("rows", "fraction", "field"), [
    ([{"min_priority": 50, "response_target": HOUR, "resolution_target": HOUR}], 0.75,
     "targets"),
    ([{"min_priority": 0, "response_target": timedelta(0), "resolution_target": HOUR}], 0.75,
     "targets"),
    ([{"min_priority": 0, "response_target": HOUR, "resolution_target": HOUR}], 1.0,
     "warning_fraction"),
])
def test_a_policy_that_leaves_cases_without_a_target_is_refused(queue, manager, rows,
                                                                fraction, field):
    with pytest.raises(ValidationError) as refused:
        sla.publish_sla_policy(queue=queue, targets=rows, calendar=None,
                               warning_fraction=fraction, actor=manager, now=T)
    assert field in refused.value.message_dict
    assert not queue.sla_policies.exists()


# -- nudges ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_check_within_the_horizon_is_nudged_after_commit(queue, settings, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    settings.SLA_NUDGES_ENABLED = True
    sent = []
    monkeypatch.setattr("workflows.tasks.check_case_clock.apply_async",
                        lambda args, eta, retry: sent.append((args, eta)))
    publish(queue, response=2 * MINUTE, resolution=HOUR)
    far = QueueFactory(slug="far")  # wall-clock 1 h: its first check is 45 min away

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        soon = open_case(queue, now=T)
        open_case(far, now=T)
    assert sent == []  # nothing before commit

    for callback in callbacks:
        callback()
    assert sent == [((soon.pk,), soon.sla_next_check_at + sla.NUDGE_MARGIN)]


@pytest.mark.django_db
def test_a_broker_that_is_down_costs_the_nudge_and_nothing_else(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr("workflows.tasks.check_case_clock.apply_async", down)

    assert sla.send_nudges([(1, T), (2, T)]) == 0


def test_a_nudge_never_reaches_beyond_the_brokers_visibility_timeout(settings):
    settings.SLA_NUDGE_HORIZON = timedelta(hours=3)
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

    assert sla.nudge_horizon() == timedelta(minutes=30)


@pytest.mark.django_db
def test_only_a_manager_publishes_or_reapplies_a_policy(queue, member):
    with pytest.raises(PermissionDenied):
        publish(queue, actor=member)
    publish(queue)  # the system itself (seeding)
    with pytest.raises(PermissionDenied):
        sla.reapply_policy(queue=queue, actor=member, now=T)
    assert queue.sla_policies.count() == 1


# -- a closure added or removed moves the running clocks ------------------------------------

MONDAY_NOON = berlin(2026, 3, 2, 12, 0)
TUESDAY = (berlin(2026, 3, 3, 0, 0), berlin(2026, 3, 4, 0, 0))


@pytest.mark.django_db
def test_a_closure_moves_a_deadline_inside_it_keeping_the_business_time_left(queue, manager):
    calendar = office_calendar()
    publish(queue, response=HOUR, resolution=8 * HOUR, calendar=calendar)
    with time_machine.travel(MONDAY_NOON, tick=False):
        case = open_case(queue, now=timezone.now())
        elsewhere = open_case(QueueFactory(slug="elsewhere"), now=timezone.now())  # 24x7
    assert case.due_at == berlin(2026, 3, 3, 12, 0)  # tomorrow 12:00

    with time_machine.travel(berlin(2026, 3, 2, 12, 30), tick=False):
        closure = sla.add_closure(calendar=calendar, starts_at=TUESDAY[0], ends_at=TUESDAY[1],
                                  reason="Strike", actor=manager, now=timezone.now())

    case.refresh_from_db()
    # Tuesday closed: the 3.5 business hours left on Tuesday morning come on Wednesday.
    assert case.due_at == berlin(2026, 3, 4, 12, 0)
    assert case.warn_at == berlin(2026, 3, 4, 10, 0)
    # The response clock ends today, before the closure: it stays.
    assert (case.response_warn_at, case.response_due_at) == (
        berlin(2026, 3, 2, 12, 45), berlin(2026, 3, 2, 13, 0))
    assert case.sla_next_check_at == berlin(2026, 3, 2, 12, 45)
    assert Case.objects.get(pk=elsewhere.pk).due_at == elsewhere.due_at
    event = AuditEvent.objects.get(verb="case.sla_calendar_changed")
    assert (event.case_id, event.actor, event.data["change"]) == (case.pk, manager, "added")
    assert event.data["before"]["due_at"] == "2026-03-03T11:00:00Z"  # 12:00 in Berlin
    assert event.data["after"]["due_at"] == "2026-03-04T11:00:00Z"
    assert AuditEvent.objects.get(verb="calendar.clocks_moved").data["cases"] == 1

    with time_machine.travel(berlin(2026, 3, 2, 14, 0), tick=False):
        sla.remove_closure(calendar=calendar, closure_id=closure.pk, actor=manager,
                           now=timezone.now())

    case.refresh_from_db()
    assert case.due_at == berlin(2026, 3, 3, 12, 0)  # Tuesday is a working day again
    assert AuditEvent.objects.filter(verb="case.sla_calendar_changed").count() == 2


@pytest.mark.django_db
def test_a_waiting_case_keeps_its_paused_time_and_takes_the_closure_when_it_resumes(
        queue, member, manager):
    calendar = office_calendar()
    publish(queue, resolution=8 * HOUR, calendar=calendar)
    case = open_case(queue, now=MONDAY_NOON)  # due Tuesday 12:00
    claiming.claim(case_id=case.pk, user=member, now=MONDAY_NOON)
    transitions.request_info(case_id=case.pk, user=member, reason="Scan",
                             now=berlin(2026, 3, 2, 13, 0))
    case.refresh_from_db()
    assert case.sla_remaining == 7 * HOUR  # 4 h today, 3 h tomorrow

    with time_machine.travel(berlin(2026, 3, 2, 13, 30), tick=False):
        sla.add_closure(calendar=calendar, starts_at=TUESDAY[0], ends_at=TUESDAY[1],
                        actor=manager, now=timezone.now())

    waiting = Case.objects.get(pk=case.pk)
    assert (waiting.sla_remaining, waiting.sla_next_check_at) == (7 * HOUR, None)
    assert not AuditEvent.objects.filter(verb="case.sla_calendar_changed").exists()

    transitions.resume(case_id=case.pk, user=member, now=berlin(2026, 3, 2, 14, 0))

    # 3 h today, Tuesday closed, 4 h on Wednesday.
    assert Case.objects.get(pk=case.pk).due_at == berlin(2026, 3, 4, 13, 0)


@pytest.mark.django_db
def test_a_case_already_breached_stays_breached_when_a_closure_is_added(queue, manager):
    calendar = office_calendar()
    publish(queue, resolution=8 * HOUR, calendar=calendar)
    breached = open_case(queue, now=berlin(2026, 2, 27, 9, 0))  # due Friday 17:00
    now = berlin(2026, 3, 2, 12, 30)  # Monday: the sweeper has not looked yet

    with time_machine.travel(now, tick=False):
        # Closed from now to Wednesday: its deadline passed before; nothing to keep.
        sla.add_closure(calendar=calendar, starts_at=now, ends_at=TUESDAY[1],
                        actor=manager, now=timezone.now())

    breached.refresh_from_db()
    assert breached.due_at == berlin(2026, 2, 27, 17, 0)
    assert breached.sla_next_check_at <= now
    assert sweeper.sweep(now=now).escalations == 1
