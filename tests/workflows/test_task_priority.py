"""Notices never hold up the periodic jobs: on Redis, the e-mail and in-app nudges wait
behind sealing, the sweeps and the relays however many are queued (workflows/tasks.py).

What a worker takes next is what ``BRPOP`` over the queue's priority lists answers
first, in the order kombu's Redis transport asks for them; the test asks the same way.
"""

import json

import pytest
import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

from tests.workflows.celery_support import RedisServer, publishing_to, require_redis_server
from workflows import tasks

pytestmark = pytest.mark.celery_worker  # a redis-server of its own: the slow tier


@pytest.fixture
def broker(tmp_path):
    require_redis_server()
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def next_task(client: redis.Redis, queue: str = "celery") -> str:
    # The lists kombu keeps per priority step, highest first (step 0 is the bare name).
    keys = [queue, *(f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS[1:])]
    _, message = client.brpop(keys, timeout=1)
    return json.loads(message)["headers"]["task"]


def test_periodic_jobs_are_taken_before_a_backlog_of_notices(broker):
    with publishing_to(broker.url):
        for _ in range(50):
            tasks.deliver_outbox_messages.apply_async(args=[["a", "b"]])
        tasks.deliver_outbox_message.apply_async(args=["c"])
        tasks.seal_audit_chain.apply_async()
        tasks.sweep_sla_clocks.apply_async()
        tasks.relay_outbox.apply_async()

    client = broker.client()
    taken = [next_task(client) for _ in range(4)]

    assert taken == ["workflows.tasks.seal_audit_chain", "workflows.tasks.sweep_sla_clocks",
                     "workflows.tasks.relay_outbox", "workflows.tasks.deliver_outbox_messages"]
