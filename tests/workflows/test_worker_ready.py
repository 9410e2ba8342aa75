"""manage.py worker_ready: exit 0 when the named worker answers through the broker, 1
when it does not or the broker is unreachable (a supervisor's readiness probe)."""

import socket

import pytest
from django.core.management import CommandError, call_command

from tests.workflows.celery_support import celery_stack, publishing_to

pytestmark = [pytest.mark.postgres, pytest.mark.celery_worker,
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(transactional_db, tmp_path):
    yield from celery_stack(tmp_path, sweep_interval=60.0)


def test_a_running_worker_is_ready_and_one_that_is_not_running_is_not(stack, capsys):
    stack.start("worker", "probed")
    host = socket.gethostname()

    with publishing_to(stack.redis.url):
        call_command("worker_ready", name=f"probed@{host}", timeout=5)
        with pytest.raises(CommandError, match="No answer from the worker"):
            call_command("worker_ready", name=f"absent@{host}", timeout=1)

    assert f"probed@{host} is ready." in capsys.readouterr().out


def test_an_unreachable_broker_is_not_ready(stack):
    stack.redis.stop()

    with (publishing_to(stack.redis.url),
          pytest.raises(CommandError, match="The broker could not be reached")):
        call_command("worker_ready", timeout=1)
