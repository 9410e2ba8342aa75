"""The resolution webhook to the AI system (I5): written with the resolution through the
engine's resolved hook, signed with the AI system's own secret, relayed by the outbox."""

from types import SimpleNamespace

import pytest

from exceptions_app.models import AiSystem
from tests.exceptions_app.factories import make_decision_case
from tests.workflows.celery_support import (
    CeleryProcess,
    RedisServer,
    process_env,
    publishing_to,
    require_redis_server,
    wait_until,
)
from tests.workflows.webhook_support import SECRET
from workflows.models import (
    Channel,
    Notification,
    OutboxMessage,
    OutboxStatus,
    Verdict,
)
from workflows.services import claiming, outbox, transitions


@pytest.fixture(autouse=True)
def webhooks_may_reach_this_host(settings):
    """The receivers here listen on 127.0.0.1 over plain http: allowed in these tests only."""
    settings.ALLOW_HTTP_CALLBACKS = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


def _resolve(case, user, **kwargs):
    claiming.claim(case_id=case.pk, user=user)
    return transitions.resolve(case_id=case.pk, user=user, **kwargs)


@pytest.mark.django_db
def test_resolving_a_case_writes_exactly_one_webhook_to_the_ai_system(
        invoice_use_case, member, receiver, nudges):
    system = AiSystem.objects.create(slug="invoice-bot", name="Invoice bot",
                                     owner=member, callback_url=receiver.url,
                                     signing_secret=SECRET)
    decision = make_decision_case(invoice_use_case, ai_system=system)

    case = _resolve(decision.case, member, verdict=Verdict.CORRECTED,
                    output={"action": "hold", "amount": 4100.0}, reason_code="wrong-amount",
                    notes="The PO says 4,100.")

    message = OutboxMessage.objects.get()
    assert (message.channel, message.recipient, message.dedup_key, message.case_id) == (
        Channel.WEBHOOK, receiver.url, f"resolution:{case.pk}:webhook", case.pk)
    assert message.payload["type"] == "decision.resolved"
    assert message.payload["data"] == {
        "decision_id": decision.pk, "external_id": "inv-1", "use_case": "invoices",
        "verdict": "corrected", "output": {"action": "hold", "amount": 4100.0},
        "reason_code": "wrong-amount", "notes": "The PO says 4,100.",
        "resolved_at": message.payload["timestamp"], "reviewer": "member", "approver": None,
        "position": 1}

    # Relayed, it reaches the AI system signed with its own secret.
    assert outbox.relay_due() == 1
    [request] = receiver.requests
    assert request["verified"] is True
    assert request["body"]["data"]["external_id"] == "inv-1"
    assert request["headers"]["webhook-id"] == str(message.pk)


@pytest.mark.django_db
def test_an_accepted_resolution_sends_the_ai_output(invoice_use_case, member, nudges):
    system = AiSystem.objects.create(slug="invoice-bot", name="Invoice bot", owner=member,
                                     callback_url="https://ai.example.com/hooks")
    decision = make_decision_case(invoice_use_case, ai_system=system)

    _resolve(decision.case, member, verdict=Verdict.ACCEPTED, output=None, reason_code="")

    assert OutboxMessage.objects.get().payload["data"]["output"] == decision.output


@pytest.mark.django_db
def test_a_four_eyes_case_sends_its_webhook_once_approved(invoice_use_case, member,
                                                          second_member, nudges):
    system = AiSystem.objects.create(slug="invoice-bot", name="Invoice bot", owner=member,
                                     callback_url="https://ai.example.com/hooks")
    decision = make_decision_case(invoice_use_case, ai_system=system, four_eyes=True)
    _resolve(decision.case, member, verdict=Verdict.REJECTED, output=None,
             reason_code="policy")
    assert not OutboxMessage.objects.exists()  # not final yet

    transitions.approve(case_id=decision.case_id, user=second_member)

    data = OutboxMessage.objects.get().payload["data"]
    assert (data["verdict"], data["output"], data["reviewer"], data["approver"]) == (
        "rejected", None, "member", "second")


@pytest.mark.django_db
def test_no_webhook_without_a_callback_url(invoice_use_case, member, nudges):
    decision = make_decision_case(invoice_use_case)  # the factory's system has none

    _resolve(decision.case, member, verdict=Verdict.ACCEPTED, output=None, reason_code="")

    assert not OutboxMessage.objects.exists()


@pytest.fixture
def stack(transactional_db, tmp_path):
    """A private Redis and one worker on the test database; no beat, so only the
    on-commit nudge can make the worker deliver."""
    require_redis_server()
    server = RedisServer(tmp_path).start()
    env = process_env(redis_url=server.url, workdir=tmp_path, sweep_interval=60.0)
    worker = CeleryProcess("worker", env=env, workdir=tmp_path, name="outbox-worker").start()
    try:
        yield SimpleNamespace(redis=server, worker=worker)
    finally:
        worker.stop()
        server.stop()


@pytest.mark.postgres
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_resolution_reaches_the_ai_system_through_a_real_worker(
        invoice_use_case, member, receiver, stack):
    system = AiSystem.objects.create(slug="invoice-bot", name="Invoice bot", owner=member,
                                     callback_url=receiver.url, signing_secret=SECRET)
    decision = make_decision_case(invoice_use_case, ai_system=system)

    with publishing_to(stack.redis.url):
        # Each commits; its on_commit nudge goes to the worker through Redis.
        _resolve(decision.case, member, verdict=Verdict.ACCEPTED, output=None,
                 reason_code="")
        [notice] = outbox.notify_users(users=[member], text="Your case was resolved",
                                       dedup_prefix="resolved:1", email=False)

    try:
        wait_until(lambda: not OutboxMessage.objects.filter(
            status=OutboxStatus.PENDING).exists(), timeout=60, what="the outbox delivered")
    except AssertionError:
        pytest.fail(stack.worker.logs())
    message = OutboxMessage.objects.get(channel=Channel.WEBHOOK)
    assert message.status == OutboxStatus.DELIVERED
    [request] = receiver.requests
    assert request["verified"] is True
    assert request["headers"]["webhook-id"] == str(message.pk)
    assert request["body"]["data"]["decision_id"] == decision.pk
    assert Notification.objects.get().message_id == notice.pk
