"""The SLA sweeper (``workflows/services/sweeper.py``), one step at a time with an injected
``now``: one warning and one escalation per (case, level), however often and however
many sweepers look (I2), poison rows set aside, work bounded by the cases due."""

import contextlib
import logging
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.concurrency import run_concurrently
from tests.factories import QueueFactory
from tests.workflows.sla_support import berlin, office_calendar, open_case, publish, utc
from workflows import tasks
from workflows.models import (
    Case,
    CaseState,
    Escalation,
    EscalationLevel,
    OutboxMessage,
    Process,
    SlaWarning,
)
from workflows.services import claiming, sweeper, transitions

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
T = utc(2026, 3, 2, 10, 0)
# The short policy below: warnings at half the target.
RESPONSE_WARN, RESPONSE_DUE = T + 5 * MINUTE, T + 10 * MINUTE
WARN, DUE = T + 30 * MINUTE, T + HOUR


@pytest.fixture(autouse=True)
def no_nudges(settings):
    settings.SLA_NUDGES_ENABLED = False


@pytest.fixture
def short_policy(queue):
    return publish(queue, response=10 * MINUTE, resolution=HOUR, fraction=0.5)


def warning_messages(warning: SlaWarning) -> list[tuple[str, str]]:
    return sorted(OutboxMessage.objects.filter(dedup_key__startswith=f"sla-warning:{warning.pk}:")
                  .values_list("channel", "recipient"))


# -- one case, step by step ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_sweep_gives_one_warning_then_one_escalation(queue, member, short_policy):
    case = open_case(queue, now=T)

    warned = sweeper.sweep(now=RESPONSE_WARN)

    assert (warned.checked, warned.warnings, warned.escalations) == (1, 1, 0)
    warning = SlaWarning.objects.get()
    assert (warning.case, warning.clock, warning.level) == (case, "response", 0)
    assert warning_messages(warning) == sorted([("email", member.email),
                                                ("in_app", str(member.pk))])
    assert Case.objects.get(pk=case.pk).sla_next_check_at == RESPONSE_DUE
    assert sweeper.sweep(now=RESPONSE_WARN + MINUTE).checked == 0  # nothing due meanwhile

    breached = sweeper.sweep(now=RESPONSE_DUE)

    assert (breached.warnings, breached.escalations) == (0, 1)
    escalation = Escalation.objects.get()
    assert (escalation.case, escalation.level, escalation.cause) == (case, 1, "response_breach")
    assert escalation.due_at == RESPONSE_DUE
    case.refresh_from_db()
    assert (case.state, case.escalation_level) == (CaseState.ESCALATED, 1)
    # No chain for this queue: its resolution target again, from the escalation on.
    assert case.due_at == RESPONSE_DUE + queue.resolution_target
    assert case.sla_next_check_at == RESPONSE_DUE + queue.resolution_target / 2
    assert SlaWarning.objects.count() == 1


@pytest.mark.django_db
def test_a_sweep_run_again_at_the_same_moment_changes_nothing(queue, member, short_policy):
    open_case(queue, now=T)
    sweeper.sweep(now=RESPONSE_WARN)
    sweeper.sweep(now=RESPONSE_DUE)
    messages, cases = OutboxMessage.objects.count(), list(Case.objects.values())

    again = [sweeper.sweep(now=RESPONSE_DUE) for _ in range(3)]

    assert [result.checked for result in again] == [0, 0, 0]
    assert (Escalation.objects.count(), SlaWarning.objects.count()) == (1, 1)
    assert OutboxMessage.objects.count() == messages
    assert list(Case.objects.values()) == cases


@pytest.mark.django_db
def test_a_nudge_repeated_changes_nothing_twice(queue, member, short_policy):
    case = open_case(queue, now=T)

    results = [sweeper.check_case(case_id=case.pk, now=RESPONSE_DUE) for _ in range(4)]

    assert [r.escalations for r in results] == [1, 0, 0, 0]
    assert Escalation.objects.filter(case=case).count() == 1
    # Both clocks were past their warning; the response clock breached, so only the
    # resolution clock's warning is not given yet (it is not due at 10 minutes).
    assert SlaWarning.objects.count() == 0


@pytest.mark.django_db
def test_a_check_that_is_not_due_does_nothing(queue, short_policy):
    case = open_case(queue, now=T)

    result = sweeper.check_case(case_id=case.pk, now=RESPONSE_WARN - MINUTE)

    assert (result.checked, result.skipped) == (0, 1)
    assert sweeper.check_case(case_id=10**9, now=T).checked == 0  # gone: nothing


@pytest.mark.django_db
def test_a_case_resolved_before_its_deadline_gets_neither_warning_nor_escalation(
        queue, member, short_policy):
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T + MINUTE)
    transitions.resolve(case_id=case.pk, user=member, verdict="accepted", output=None,
                        reason_code="", now=T + 2 * MINUTE)

    result = sweeper.sweep(now=T + 2 * HOUR)

    assert result.checked == 0
    assert not Escalation.objects.exists() and not SlaWarning.objects.exists()


@pytest.mark.django_db
def test_a_claimed_case_has_no_response_clock_left(queue, member, second_member,
                                                   short_policy):
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T + MINUTE)

    at_response_warning = sweeper.sweep(now=RESPONSE_WARN)
    at_response_deadline = sweeper.sweep(now=RESPONSE_DUE)

    assert (at_response_warning.checked, at_response_warning.warnings) == (1, 0)
    assert at_response_deadline.checked == 0
    assert Case.objects.get(pk=case.pk).sla_next_check_at == WARN

    assert sweeper.sweep(now=WARN).warnings == 1
    warning = SlaWarning.objects.get()
    assert warning.clock == "resolution"
    # The assignee is told, not the rest of the queue.
    assert {recipient for _, recipient in warning_messages(warning)} == {
        member.email, str(member.pk)}

    assert sweeper.sweep(now=DUE).escalations == 1
    assert Escalation.objects.get().cause == "resolution_breach"


@pytest.mark.django_db
def test_a_case_waiting_for_information_is_not_swept(queue, member, short_policy):
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T)
    transitions.request_info(case_id=case.pk, user=member, reason="Scan", now=T + MINUTE)

    assert sweeper.sweep(now=T + 5 * HOUR).checked == 0
    assert not Escalation.objects.exists()


@pytest.mark.django_db
def test_an_unassigned_case_warns_every_member_of_its_queue(queue, member, second_member,
                                                            short_policy):
    open_case(queue, now=T)

    sweeper.sweep(now=RESPONSE_WARN)

    warning = SlaWarning.objects.get()
    assert {recipient for channel, recipient in warning_messages(warning)
            if channel == "in_app"} == {str(member.pk), str(second_member.pk)}


@pytest.mark.django_db
def test_a_late_sweep_escalates_without_warning_first(queue, member, short_policy):
    open_case(queue, now=T)

    result = sweeper.sweep(now=RESPONSE_DUE + MINUTE)  # the sweeper was down for a while

    assert (result.warnings, result.escalations) == (0, 1)


# -- levels ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_level_of_the_chain_gets_its_deadline_in_business_time(queue):
    process = Process.objects.create(slug="invoices", name="Invoices")
    queue.process = process
    queue.save()
    EscalationLevel.objects.create(process=process, level=1, time_limit=4 * HOUR)
    EscalationLevel.objects.create(process=process, level=2, time_limit=HOUR)
    publish(queue, response=30 * MINUTE, resolution=8 * HOUR, calendar=office_calendar())
    case = open_case(queue, now=berlin(2026, 1, 9, 16, 0))  # Friday 16:00

    sweeper.sweep(now=berlin(2026, 1, 9, 16, 30))  # the response deadline

    case.refresh_from_db()
    assert case.escalation_level == 1
    # Four business hours from Friday 16:30: half an hour Friday, 3.5 h on Monday.
    assert case.due_at == berlin(2026, 1, 12, 12, 30)
    assert case.warn_at == berlin(2026, 1, 12, 11, 30)
    assert sweeper.sweep(now=berlin(2026, 1, 10, 12, 0)).checked == 0  # Saturday

    assert sweeper.sweep(now=berlin(2026, 1, 12, 11, 30)).warnings == 1
    assert SlaWarning.objects.get().level == 1
    assert sweeper.sweep(now=berlin(2026, 1, 12, 12, 30)).escalations == 1
    assert list(Escalation.objects.values_list("level", "cause")) == [
        (1, "response_breach"), (2, "resolution_breach")]


# -- poison rows and declined escalations -------------------------------------------------


@pytest.mark.django_db
def test_a_poison_row_is_set_aside_and_the_others_are_escalated(queue, short_policy,
                                                                monkeypatch, caplog):
    cases = [open_case(queue, now=T) for _ in range(3)]
    poisoned = cases[1].pk
    real_escalate = sweeper.escalation.escalate

    def escalate(**kwargs):
        if kwargs["case_id"] == poisoned:
            raise ValueError("a row this code cannot handle")
        return real_escalate(**kwargs)

    monkeypatch.setattr(sweeper.escalation, "escalate", escalate)

    with caplog.at_level(logging.ERROR, logger="backstop.sla"):
        result = sweeper.sweep(now=RESPONSE_DUE)

    assert (result.escalations, result.deferred) == (2, 1)
    assert sorted(Escalation.objects.values_list("case_id", flat=True)) == sorted(
        case.pk for case in cases if case.pk != poisoned)
    set_aside = Case.objects.get(pk=poisoned)
    assert set_aside.sla_next_check_at == RESPONSE_DUE + sweeper.POISON_DELAY
    assert set_aside.escalation_level == 0
    assert f"SLA check of case {poisoned} failed" in caplog.text

    monkeypatch.setattr(sweeper.escalation, "escalate", real_escalate)
    assert sweeper.sweep(now=RESPONSE_DUE + sweeper.POISON_DELAY).escalations == 1


@pytest.mark.django_db
def test_a_declined_escalation_is_looked_at_again_not_forgotten(queue, short_policy,
                                                                monkeypatch):
    case = open_case(queue, now=T)
    monkeypatch.setattr(sweeper.escalation, "escalate", lambda **kwargs: None)

    assert sweeper.sweep(now=RESPONSE_DUE).escalations == 0

    assert Case.objects.get(pk=case.pk).sla_next_check_at == (
        RESPONSE_DUE + sweeper.RETRY_DELAY)


# -- batches and queries -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sweep_reads_batch_after_batch_until_nothing_is_due(queue, short_policy):
    for _ in range(5):
        open_case(queue, now=T)

    result = sweeper.sweep(now=RESPONSE_DUE, batch_size=2)

    assert (result.batches, result.escalations, result.more) == (3, 5, False)


@pytest.mark.django_db
def test_a_nudge_takes_the_cases_due_with_it_and_their_own_nudges_find_them_done(
        queue, short_policy):
    burst = [open_case(queue, now=T) for _ in range(4)]

    first = sweeper.check_case(case_id=burst[0].pk, now=RESPONSE_DUE)
    later = [sweeper.check_case(case_id=case.pk, now=RESPONSE_DUE) for case in burst[1:]]

    assert first.escalations == 4
    assert [(result.checked, result.escalations) for result in later] == [(0, 0)] * 3
    assert Escalation.objects.count() == 4

    # A nudge whose own case is done still takes what came due since.
    for _ in range(2):
        open_case(queue, now=T)
    assert sweeper.check_case(case_id=burst[0].pk, now=RESPONSE_DUE).escalations == 2


@pytest.mark.django_db
def test_a_beat_sweep_with_more_than_a_batch_due_asks_helpers_to_share_it(
        queue, short_policy, monkeypatch):
    for _ in range(5):
        open_case(queue, now=T)
    asked = []
    monkeypatch.setattr(tasks.sweep_sla_clocks, "apply_async",
                        lambda **options: asked.append(options["kwargs"]))

    result = tasks.sweep_sla_clocks(batch_size=2)

    # Five due in batches of two: two more sweeps would share them; they do not ask again.
    assert asked == [{"batch_size": 2, "share": False}] * 2
    assert result["escalations"] == 5
    assert tasks.sweep_sla_clocks(batch_size=2, share=False)["checked"] == 0
    assert sweeper.helpers_wanted(batch_size=2) == 0


@pytest.mark.django_db
def test_a_sweep_stops_at_its_batch_limit_and_says_more_is_due(queue, short_policy):
    for _ in range(5):
        open_case(queue, now=T)

    result = sweeper.sweep(now=RESPONSE_DUE, batch_size=2, max_batches=2)

    assert (result.escalations, result.more) == (4, True)
    assert sweeper.sweep(now=RESPONSE_DUE).escalations == 1


@pytest.mark.django_db
def test_a_sweeps_queries_grow_with_the_cases_due_not_with_the_cases_open(
        queue, member, short_policy, django_assert_max_num_queries):
    quiet = QueueFactory(slug="quiet")
    publish(quiet, response=HOUR, resolution=8 * HOUR)

    def sweep_queries(*, open_elsewhere: int) -> int:
        with transaction.atomic():
            for _ in range(3):
                open_case(queue, now=T)  # breach due at RESPONSE_DUE
            for _ in range(2):
                claiming.claim(case_id=open_case(queue, now=T).pk, user=member, now=T)
            for n in range(open_elsewhere):  # not due for hours, or closed
                other = open_case(quiet, now=T)
                if n % 3 == 0:
                    Case.objects.filter(pk=other.pk).update(state=CaseState.CANCELLED)
            with CaptureQueriesContext(connection) as captured:
                result = sweeper.sweep(now=RESPONSE_DUE)
            assert (result.checked, result.escalations) == (5, 3)
            transaction.set_rollback(True)
        return len(captured)

    assert sweep_queries(open_elsewhere=0) == sweep_queries(open_elsewhere=300)
    with django_assert_max_num_queries(5 + 5 * 40):
        for _ in range(3):
            open_case(queue, now=T)
        sweeper.sweep(now=RESPONSE_DUE)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_sweep_reads_the_partial_index():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = sweeper.due_cases(now=T).values_list("id")[:500].explain()

    assert "case_sla_check_idx" in plan


# -- concurrency (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_sweeps_at_once_give_one_warning_and_one_escalation_per_case_and_level(
        queue, member, second_member):
    publish(queue, response=10 * MINUTE, resolution=HOUR, fraction=0.5)
    breaching = [open_case(queue, now=T) for _ in range(40)]
    warning = [open_case(queue, now=T + 5 * MINUTE) for _ in range(40)]

    results = run_concurrently(*[lambda: sweeper.sweep(now=RESPONSE_DUE, batch_size=16)] * 4)

    assert sum(result.escalations for result in results) == 40
    assert sum(result.warnings for result in results) == 40
    assert Counter(Escalation.objects.values_list("case_id", "level")) == {
        (case.pk, 1): 1 for case in breaching}
    assert Counter(SlaWarning.objects.values_list("case_id", "clock", "level")) == {
        (case.pk, "response", 0): 1 for case in warning}
    # Two members, in-app and e-mail each: four notices per warning, once.
    assert OutboxMessage.objects.filter(dedup_key__startswith="sla-warning:").count() == 160


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_nudge_delivered_five_times_at_once_escalates_once(queue, member, short_policy):
    case = open_case(queue, now=T)

    results = run_concurrently(
        *[lambda: sweeper.check_case(case_id=case.pk, now=RESPONSE_DUE)] * 5)

    assert sum(result.escalations for result in results) == 1
    assert Escalation.objects.filter(case=case).count() == 1
    assert Case.objects.get(pk=case.pk).escalation_level == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deliveries", [2, 3, 5])
def test_the_nudge_task_redelivered_at_once_warns_and_escalates_once(queue, member,
                                                                     deliveries):
    publish(queue, response=10 * MINUTE, resolution=HOUR, fraction=0.5)
    now = timezone.now()
    warned = open_case(queue, now=now - 6 * MINUTE)  # its response warning is due
    breached = open_case(queue, now=now - 11 * MINUTE)  # its response deadline passed

    for case in (warned, breached):
        run_concurrently(*[lambda case=case: tasks.check_case_clock(case.pk)] * deliveries)

    assert SlaWarning.objects.filter(case=warned).count() == 1
    assert OutboxMessage.objects.filter(dedup_key__startswith="sla-warning:").count() == 2
    assert Escalation.objects.filter(case=breached).count() == 1
    assert Case.objects.get(pk=breached.pk).escalation_level == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sweep_racing_a_resolution_never_escalates_a_resolved_case(queue, member,
                                                                     short_policy):
    cases = [open_case(queue, now=T) for _ in range(20)]
    for case in cases:
        claiming.claim(case_id=case.pk, user=member, now=T)

    def work(index):
        if index == 0:
            return sweeper.sweep(now=DUE)
        for case in cases:
            # Refused when the sweep escalated it first: no longer the member's to resolve.
            with contextlib.suppress(transitions.CaseConflict, transitions.TransitionNotAllowed):
                transitions.resolve(case_id=case.pk, user=member, verdict="accepted",
                                    output=None, reason_code="", now=DUE)
        return None

    run_concurrently(work, times=2)

    outcomes = Counter()
    for case in Case.objects.filter(pk__in=[c.pk for c in cases]):
        escalations = Escalation.objects.filter(case=case).count()
        outcomes[case.state] += 1
        assert (case.state, escalations) in {(CaseState.RESOLVED, 0), (CaseState.ESCALATED, 1)}
    assert sum(outcomes.values()) == 20
