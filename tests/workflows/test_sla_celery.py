"""The clock path through real Celery processes: a worker (and beat) against their own
Redis and the test's PostgreSQL database, not eager mode."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from tests.workflows.celery_support import celery_stack, publishing_to, wait_until
from tests.workflows.sla_support import publish
from workflows.models import Escalation, SlaWarning
from workflows.services.cases import NewCase, open_cases

pytestmark = [pytest.mark.postgres, pytest.mark.celery_worker,
              pytest.mark.django_db(transaction=True)]

SWEEP_INTERVAL = 2.0
SECOND = timedelta(seconds=1)


@pytest.fixture
def stack(transactional_db, tmp_path):
    yield from celery_stack(tmp_path, sweep_interval=SWEEP_INTERVAL)


def open_batch(queue, count: int):
    with transaction.atomic():  # the nudges go out when this commits
        return open_cases(specs=[NewCase(queue=queue, title=f"case {n}") for n in range(count)],
                          actor_label="test", now=timezone.now())


def wait_for_escalations(count: int, *, timeout: float, processes) -> None:
    try:
        wait_until(lambda: Escalation.objects.count() >= count, timeout=timeout,
                   interval=0.25, what=f"{count} escalations")
    except AssertionError:
        pytest.fail("\n\n".join(process.logs() for process in processes))


def test_a_real_worker_warns_and_escalates_each_case_once_on_its_nudges(stack, queue, member):
    publish(queue, response=6 * SECOND, resolution=timedelta(minutes=10), fraction=0.5)
    worker = stack.start("worker", "nudged")  # no beat: the nudges alone

    with publishing_to(stack.redis.url):
        cases = open_batch(queue, 10)

    wait_for_escalations(10, timeout=40, processes=[worker])
    time.sleep(2)  # a double would show up now
    assert Counter(Escalation.objects.values_list("case_id", "level")) == {
        (case.pk, 1): 1 for case in cases}
    assert Counter(SlaWarning.objects.values_list("case_id", "clock")) == {
        (case.pk, "response"): 1 for case in cases}
    lags = [(escalation.created_at - escalation.due_at).total_seconds()
            for escalation in Escalation.objects.all()]
    # No beat runs: only the nudges can have done it, on time but for the worker's own
    # throughput (three processes, ten escalations at the same instant, a shared host).
    assert max(lags) < 10, lags


def test_beat_alone_catches_every_check_whose_nudge_never_came(stack, queue, member,
                                                               settings):
    settings.SLA_NUDGES_ENABLED = False  # as if every nudge was lost
    publish(queue, response=4 * SECOND, resolution=timedelta(minutes=10), fraction=0.5)
    worker = stack.start("worker", "swept", SLA_NUDGES_ENABLED="false")
    beat = stack.start("beat", "beat")

    cases = open_batch(queue, 10)

    wait_for_escalations(10, timeout=40, processes=[worker, beat])
    time.sleep(SWEEP_INTERVAL + 1)  # another sweep or two: they must change nothing
    assert Counter(Escalation.objects.values_list("case_id", "level")) == {
        (case.pk, 1): 1 for case in cases}
    lags = [(escalation.created_at - escalation.due_at).total_seconds()
            for escalation in Escalation.objects.all()]
    assert max(lags) < SWEEP_INTERVAL + 5, lags
