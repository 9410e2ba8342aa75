"""A backtest asked for in a request is done by a real Celery worker through Redis."""

import pytest

from exceptions_app.models import Backtest, BacktestStatus
from exceptions_app.services import backtests
from tests.exceptions_app.quality_support import (
    known_history,
    lowered_threshold_draft,
    quality_use_case,
    queue_people,
)
from tests.factories import make_manager
from tests.workflows.celery_support import celery_stack, publishing_to, wait_until


@pytest.fixture
def stack(transactional_db, tmp_path):
    yield from celery_stack(tmp_path, sweep_interval=60.0)


@pytest.mark.postgres
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_requested_backtest_is_judged_by_a_worker(stack):
    process = stack.start("worker", "backtests")
    use_case = quality_use_case()
    known_history(use_case, *queue_people(use_case))
    draft = lowered_threshold_draft(use_case)

    with publishing_to(stack.redis.url):
        backtest = backtests.request_backtest(policy=draft, actor=make_manager(), last=100)

    try:
        wait_until(lambda: Backtest.objects.get(pk=backtest.pk).is_finished, timeout=60,
                   what="the worker finished the backtest")
    except AssertionError:
        pytest.fail(process.logs())
    done = Backtest.objects.get(pk=backtest.pk)
    assert done.status == BacktestStatus.DONE, done.error
    assert (done.processed, done.result["changes"][0]["count"]) == (12, 2)
