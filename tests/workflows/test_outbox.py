"""The outbox (I5): side effects written with their transaction, relayed with retries.

Webhooks go to a real HTTP server on 127.0.0.1 (``receiver``), which can be told to
fail its first requests; it verifies each signature the way an AI system would,
with the ``standardwebhooks`` package.
"""

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from tests.concurrency import run_concurrently
from tests.factories import UserFactory
from tests.workflows.webhook_support import SECRET, Receiver
from workflows import hooks
from workflows.models import (
    Channel,
    DeliveryAttempt,
    Notification,
    OutboxMessage,
    OutboxStatus,
)
from workflows.services import outbox
from workflows.tasks import deliver_outbox_message, relay_outbox, relay_webhooks


@pytest.fixture(autouse=True)
def webhooks_may_reach_this_host(settings):
    """The receivers here listen on 127.0.0.1 over plain http: allowed in these tests
    only (the product refuses both; tests/workflows/test_webhook_addresses.py)."""
    settings.ALLOW_HTTP_CALLBACKS = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def flaky_receiver():
    with Receiver(fail_first=2) as running:
        yield running


@pytest.fixture
def secret_for_tests():
    """Sign webhooks to the test receiver with SECRET (the domain's provider needs a case)."""
    def provider(*, message):
        return SECRET if message.recipient.startswith("http://127.0.0.1:") else None

    hooks.register_webhook_secret_provider(provider)
    yield
    hooks._webhook_secret_providers.remove(provider)


def webhook(url, *, key="hook-1", payload=None, now=None):
    return outbox.enqueue(channel=Channel.WEBHOOK, recipient=url, dedup_key=key,
                          payload=payload or {"type": "test.ping", "data": {"n": 1}}, now=now)


# --- Writing: in the caller's transaction, once per key ---------------------------------

class Boom(Exception):
    pass


@pytest.mark.django_db
def test_enqueue_in_a_rolled_back_transaction_leaves_no_row_and_nudges_nothing(
        django_capture_on_commit_callbacks, nudges):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, \
            pytest.raises(Boom), transaction.atomic():
        outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com", dedup_key="k",
                       payload={"text": "hello"})
        raise Boom

    assert not OutboxMessage.objects.exists()
    assert callbacks == []
    assert nudges == []


@pytest.mark.django_db(transaction=True)
def test_only_a_committed_enqueue_nudges_the_relay(nudges):
    with pytest.raises(Boom), transaction.atomic():
        outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com", dedup_key="lost",
                       payload={"text": "never sent"})
        raise Boom
    assert nudges == []

    with transaction.atomic():
        message = outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com",
                                 dedup_key="kept", payload={"text": "sent"})
        assert nudges == []  # not before commit

    assert nudges == [message.pk]
    assert list(OutboxMessage.objects.values_list("dedup_key", flat=True)) == ["kept"]
    assert mail.outbox == []  # the nudge only asks; the relay sends


@pytest.mark.django_db
def test_the_same_dedup_key_twice_writes_one_row(django_capture_on_commit_callbacks, nudges):
    with django_capture_on_commit_callbacks(execute=True):
        first = outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com",
                               dedup_key="escalation:7:1:email:3", payload={"text": "one"})
        second = outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com",
                                dedup_key="escalation:7:1:email:3", payload={"text": "two"})

    assert second.pk == first.pk
    assert OutboxMessage.objects.get().payload == {"text": "one"}
    assert nudges == [first.pk]


@pytest.mark.django_db
def test_a_key_written_before_answers_that_row_and_keeps_the_callers_transaction(nudges):
    with transaction.atomic():
        first = outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com",
                               dedup_key="dup", payload={"text": "one"})

        # The insert itself finds the key taken (ON CONFLICT): no error to recover from.
        again = outbox.write([
            outbox.message(channel=Channel.IN_APP, recipient="7", dedup_key="new",
                           payload={"text": "new"}),
            outbox.message(channel=Channel.EMAIL, recipient="a@example.com",
                           dedup_key="dup", payload={"text": "two"})])

        UserFactory(username="still-writable")  # the transaction is still usable

    assert again[1].pk == first.pk and again[1].payload == {"text": "one"}
    assert again[0].dedup_key == "new" and again[0].payload == {"text": "new"}
    assert OutboxMessage.objects.count() == 2
    assert nudges == []  # nothing committed in a TestCase; and never twice


@pytest.mark.django_db
def test_payload_is_stored_as_json(nudges):
    now = timezone.now()
    message = outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com", dedup_key="k",
                             payload={"text": "hi", "at": now}, now=now)
    message.refresh_from_db()
    assert message.payload["at"] == DjangoJSONEncoder().default(now)  # ISO 8601, ms
    assert message.next_attempt_at == now and message.status == OutboxStatus.PENDING


@pytest.mark.django_db
def test_an_unknown_channel_is_refused(nudges):
    with pytest.raises(ValueError, match="Unknown outbox channel"):
        outbox.enqueue(channel="pigeon", recipient="x", dedup_key="k", payload={})


# --- Channels ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_email_goes_through_the_mail_backend_with_a_stable_message_id(nudges):
    message = outbox.enqueue(channel=Channel.EMAIL, recipient="ana@example.com",
                             dedup_key="k", subject="Case 7 escalated",
                             payload={"text": "Case 7 escalated to you."})

    assert outbox.deliver(message_id=message.pk) is True

    [sent] = mail.outbox
    assert sent.to == ["ana@example.com"]
    assert sent.subject == "Case 7 escalated"
    assert sent.body == "Case 7 escalated to you."
    assert sent.extra_headers["Message-ID"] == f"<{message.pk}@backstop>"
    message.refresh_from_db()
    assert message.status == OutboxStatus.DELIVERED and message.delivered_at is not None
    assert list(message.delivery_attempts.values_list("succeeded", flat=True)) == [True]


@pytest.mark.django_db
def test_in_app_delivery_creates_exactly_one_notification(nudges):
    user = UserFactory()
    [message] = outbox.notify_users(users=[user], text="Case 7 was escalated to you.",
                                    dedup_prefix="escalation:7:1", email=False)
    now = timezone.now()

    assert outbox.deliver(message_id=message.pk, now=now) is True
    assert outbox.deliver(message_id=message.pk, now=now) is False  # already delivered
    # A worker that died after creating it and before recording: once its lease is
    # over, the retry finds the notification already there.
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxStatus.PENDING)
    assert outbox.deliver(message_id=message.pk, now=now + outbox.delivery_lease()) is True

    notification = Notification.objects.get()
    assert (notification.user, notification.message_id, notification.text) == (
        user, message.pk, "Case 7 was escalated to you.")
    assert notification.read_at is None


@pytest.mark.django_db
def test_a_webhook_is_signed_per_standard_webhooks(receiver, secret_for_tests, nudges):
    message = webhook(receiver.url, payload={"type": "decision.resolved", "data": {"id": 4}})

    assert outbox.deliver(message_id=message.pk) is True

    [request] = receiver.requests
    assert request["verified"] is True
    assert request["headers"]["webhook-id"] == str(message.pk)
    assert request["headers"]["content-type"] == "application/json"
    assert request["body"] == {"type": "decision.resolved", "data": {"id": 4}}
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.succeeded, attempt.status_code) == (True, 200)


def test_a_plain_secret_signs_with_its_bytes():
    headers = outbox.webhook_headers(message_id="m-1", body='{"a":1}',
                                     signing_secrets=["plain secret"])
    assert Webhook(b"plain secret").verify('{"a":1}', headers) == {"a": 1}


def test_generated_secrets_are_standard_webhooks_secrets():
    secret = outbox.generate_signing_secret()
    assert secret.startswith("whsec_")
    headers = outbox.webhook_headers(message_id="m-1", body="{}", signing_secrets=[secret])
    assert Webhook(secret).verify("{}", headers) == {}


# --- Retries -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_failing_webhook_is_retried_with_backoff_and_every_attempt_is_recorded(
        flaky_receiver, secret_for_tests, nudges):
    t0 = timezone.now()
    message = webhook(flaky_receiver.url, now=t0)

    assert outbox.deliver(message_id=message.pk, now=t0) is False
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
    assert "HTTP 500" in message.last_error
    first_wait = message.next_attempt_at - t0
    assert timedelta(seconds=10) <= first_wait <= timedelta(seconds=12.5)
    # Not due yet: neither a task nor the sweep sends it again.
    assert outbox.deliver(message_id=message.pk, now=t0 + timedelta(seconds=9)) is False
    assert outbox.relay_due(now=t0 + timedelta(seconds=9)) == 0

    t1 = message.next_attempt_at
    assert outbox.relay_due(now=t1) == 0
    message.refresh_from_db()
    assert message.attempts == 2
    assert timedelta(seconds=30) <= message.next_attempt_at - t1 <= timedelta(seconds=37.5)

    t2 = message.next_attempt_at
    assert outbox.relay_due(now=t2) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (
        OutboxStatus.DELIVERED, 3, "")

    attempts = list(message.delivery_attempts.order_by("attempted_at"))
    assert [(a.attempted_at, a.succeeded, a.status_code) for a in attempts] == [
        (t0, False, 500), (t1, False, 500), (t2, True, 200)]
    # The log says what happened, never echoes what the receiver said.
    assert attempts[0].error.startswith("HTTP 500")
    assert "down for maintenance" not in attempts[0].error
    # The receiver saw the same id each time, every one signed: it keeps one.
    assert {r["headers"]["webhook-id"] for r in flaky_receiver.requests} == {str(message.pk)}
    assert all(r["verified"] for r in flaky_receiver.requests)
    assert len(flaky_receiver.requests) == 3


@pytest.mark.django_db
def test_after_the_last_attempt_the_message_is_failed_for_good(settings, nudges):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    # Nothing listens on this port: every attempt is a connection error.
    with Receiver() as gone:
        url = gone.url
    message = webhook(url)
    hooks.register_webhook_secret_provider(_any_secret)
    now = timezone.now()
    try:
        for _ in range(5):
            outbox.relay_due(now=now)
            message.refresh_from_db()
            now = max(now, message.next_attempt_at)
    finally:
        hooks._webhook_secret_providers.remove(_any_secret)

    assert (message.status, message.attempts) == (OutboxStatus.FAILED, 3)
    assert "ConnectError" in message.last_error
    assert message.delivery_attempts.filter(succeeded=False).count() == 3
    assert outbox.relay_due(now=now + timedelta(days=2)) == 0  # never tried again


def _any_secret(*, message):
    return SECRET


@pytest.mark.django_db
def test_a_webhook_without_a_signing_secret_is_not_sent(receiver, nudges):
    message = webhook(receiver.url)

    assert outbox.deliver(message_id=message.pk) is False

    message.refresh_from_db()
    assert "No signing secret" in message.last_error
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_message_whose_worker_died_comes_back_after_its_lease(nudges):
    message = outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com", dedup_key="k",
                             payload={"text": "hi"})
    now = timezone.now()
    assert outbox._claim(message_id=message.pk, now=now) is not None  # and then it died

    assert outbox.relay_due(now=now + timedelta(seconds=30)) == 0
    assert outbox.relay_due(now=now + outbox.delivery_lease()) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.DELIVERED, 2)
    assert len(mail.outbox) == 1


# --- The sweep -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_poison_message_does_not_block_the_others(nudges):
    now = timezone.now()
    poison = outbox.enqueue(channel=Channel.IN_APP, recipient="not-a-user-id",
                            dedup_key="poison", payload={"text": "?"}, now=now)
    good = [outbox.enqueue(channel=Channel.EMAIL, recipient=f"u{n}@example.com",
                           dedup_key=f"good-{n}", payload={"text": "hi"}, now=now)
            for n in range(3)]

    assert outbox.relay_due(now=now) == 3

    poison.refresh_from_db()
    assert poison.status == OutboxStatus.PENDING and poison.next_attempt_at > now
    assert "ValueError" in poison.last_error
    assert all(m.status == OutboxStatus.DELIVERED
               for m in OutboxMessage.objects.filter(pk__in=[g.pk for g in good]))
    assert outbox.relay_due(now=now) == 0  # the poison waits for its next attempt


@pytest.mark.django_db
def test_the_sweep_takes_a_bounded_batch_oldest_due_first(nudges):
    now = timezone.now()
    for n in range(5):
        outbox.enqueue(channel=Channel.EMAIL, recipient=f"u{n}@example.com",
                       dedup_key=f"k{n}", payload={"text": str(n)},
                       now=now - timedelta(seconds=10 - n))

    assert outbox.relay_due(now=now, batch_size=2) == 2
    assert [m.body for m in mail.outbox] == ["0", "1"]
    assert outbox.relay_due(now=now, batch_size=10) == 3


@pytest.mark.django_db
def test_the_sweep_reads_the_pending_index_only(nudges, django_assert_max_num_queries):
    now = timezone.now()
    outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com", dedup_key="k",
                   payload={"text": "hi"}, now=now)
    # One select of due ids, then per message: claim, read, record (atomic), update.
    with django_assert_max_num_queries(8):
        assert outbox.relay_due(now=now) == 1


# --- Concurrency (PostgreSQL, real threads) ---------------------------------------------------

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [2, 5])
def test_the_delivery_task_run_concurrently_delivers_once(workers, receiver, secret_for_tests,
                                                          nudges):
    message = webhook(receiver.url)

    results = run_concurrently(*[lambda: deliver_outbox_message(str(message.pk))] * workers)

    assert sorted(results) == [False] * (workers - 1) + [True]
    assert len(receiver.requests) == 1
    attempt = DeliveryAttempt.objects.get(message=message.pk)
    assert attempt.succeeded is True
    assert OutboxMessage.objects.get().status == OutboxStatus.DELIVERED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_in_app_deliveries_make_one_notification(nudges):
    user = UserFactory()
    [message] = outbox.notify_users(users=[user], text="hello", dedup_prefix="p", email=False)

    results = run_concurrently(*[lambda: deliver_outbox_message(str(message.pk))] * 4)

    assert results.count(True) == 1
    assert Notification.objects.filter(user=user).count() == 1
    assert DeliveryAttempt.objects.filter(message=message.pk).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_key_write_one_row(nudges):
    def write():
        with transaction.atomic():
            return outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com",
                                  dedup_key="same", payload={"text": "hi"}).pk

    results = run_concurrently(*[write] * 5)

    assert len(set(results)) == 1
    assert OutboxMessage.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_deliver_each_message_once(nudges):
    for n in range(30):
        outbox.enqueue(channel=Channel.EMAIL, recipient=f"u{n}@example.com",
                       dedup_key=f"k{n}", payload={"text": str(n)})

    results = run_concurrently(*[outbox.relay_due] * 3)

    assert sum(results) == 30
    assert len(mail.outbox) == 30
    assert DeliveryAttempt.objects.count() == 30


# --- The resolution webhook to the AI system ---------------------------------------------------

# --- Slow and greedy receivers: a deadline per attempt, a cap on the answer ---------------------

class SlowReceiver:
    """A receiver in a thread that answers badly, one of three ways (``mode``):

    - ``drip_body``: the status and headers at once, then a byte of body every ``pace`` s;
    - ``drip_headers``: the status line, then a byte of headers every ``pace`` s;
    - ``huge``: ``status`` and a body of ``size`` bytes, as fast as the socket takes it.

    Once ``mend()`` is called it answers 200 at once. Counts the bytes it managed to send.
    """

    def __init__(self, *, mode: str, pace: float = 0.5, size: int = 50 * 1024 * 1024,
                 status: int = 200):
        self.mode, self.pace, self.size, self.status = mode, pace, size, status
        self.requests: list[dict] = []
        self.sent = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    receiver.requests.append(
                        {name.lower(): value for name, value in self.headers.items()})
                    mode = receiver.mode
                with contextlib.suppress(OSError):  # the client hung up, as it should
                    getattr(self, f"answer_{mode}")()
                self.close_connection = True

            def answer_mended(self):
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def answer_drip_body(self):
                self.send_response(200)
                self.send_header("content-length", "1000")
                self.end_headers()
                self.wfile.flush()
                for _ in range(1000):
                    time.sleep(receiver.pace)
                    self.wfile.write(b"x")
                    self.wfile.flush()

            def answer_drip_headers(self):
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                self.wfile.flush()
                for _ in range(1000):
                    time.sleep(receiver.pace)
                    self.wfile.write(b"x-slow: y\r\n"[:1])
                    self.wfile.flush()

            def answer_huge(self):
                self.send_response(receiver.status)
                self.send_header("content-length", str(receiver.size))
                self.end_headers()
                chunk = b"<html>" + b"x" * 65530
                while receiver.sent < receiver.size:
                    self.wfile.write(chunk)
                    receiver.sent += len(chunk)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/backstop"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def mend(self):
        with self.lock:
            self.mode = "mended"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["drip_body", "drip_headers"])
def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline_and_retried(
        mode, settings, secret_for_tests, nudges):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.5
    with SlowReceiver(mode=mode, pace=0.5) as slow:
        t0 = timezone.now()
        message = webhook(slow.url, now=t0)

        started = time.monotonic()
        assert outbox.deliver(message_id=message.pk, now=t0) is False
        took = time.monotonic() - started

        # A byte every 0.5 s never trips a per-read timeout: only the total deadline ends it.
        assert 1.4 <= took < 3.0
        message.refresh_from_db()
        assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
        assert message.next_attempt_at > t0 + timedelta(seconds=10)  # backoff, then again
        [attempt] = message.delivery_attempts.all()
        assert attempt.succeeded is False
        assert attempt.error.startswith("Timeout: no complete answer within 1.5 s")
        assert 1400 <= attempt.duration_ms < 3000

        slow.mend()
        assert outbox.relay_due(now=message.next_attempt_at) == 1

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.DELIVERED, 2)
    assert [r["webhook-id"] for r in slow.requests] == [str(message.pk)] * 2


@pytest.mark.django_db
def test_a_huge_answer_is_read_only_up_to_the_cap(settings, secret_for_tests, nudges):
    settings.WEBHOOK_RESPONSE_LIMIT_BYTES = 64 * 1024
    with SlowReceiver(mode="huge") as huge:
        message = webhook(huge.url)

        assert outbox.deliver(message_id=message.pk) is True
        outcome = outbox.post_webhook(url=huge.url, body=b"{}", headers={})

    assert (outcome.delivered, outcome.status_code) == (True, 200)
    assert outcome.response_bytes == 64 * 1024
    assert huge.sent < huge.size  # the rest was never read (the server was cut off)
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.succeeded, attempt.status_code, attempt.error) == (True, 200, "")


@pytest.mark.django_db
def test_an_error_page_is_summarised_never_echoed(settings, secret_for_tests, nudges):
    settings.WEBHOOK_RESPONSE_LIMIT_BYTES = 64 * 1024
    with SlowReceiver(mode="huge", status=502) as huge:
        message = webhook(huge.url)

        assert outbox.deliver(message_id=message.pk) is False

    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code == 502
    assert attempt.error == "HTTP 502 (65536 bytes of answer, not kept)."
    assert "<html>" not in OutboxMessage.objects.get().last_error


@pytest.mark.django_db
def test_the_delivery_lease_outlives_the_deadline(settings, nudges):
    assert outbox.delivery_lease() >= (timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS)
                                       + timedelta(seconds=30))
    message = outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com", dedup_key="k",
                             payload={"text": "hi"})
    now = timezone.now()
    outbox._claim(message_id=message.pk, now=now)
    message.refresh_from_db()
    assert message.next_attempt_at == now + outbox.delivery_lease()


def _settings_with(**env) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; "
                               "print(s.OUTBOX_DELIVERY_LEASE.total_seconds())"],
        env=environment, capture_output=True, text=True, timeout=60)


def test_a_lease_shorter_than_the_deadline_is_refused_at_start_up():
    derived = _settings_with(WEBHOOK_TIMEOUT_SECONDS="100")
    assert derived.returncode == 0, derived.stderr
    assert float(derived.stdout) == 230.0  # twice the deadline and a margin

    refused = _settings_with(WEBHOOK_TIMEOUT_SECONDS="100", OUTBOX_DELIVERY_LEASE_SECONDS="60")
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr
    assert "OUTBOX_DELIVERY_LEASE_SECONDS (60) must exceed WEBHOOK_TIMEOUT_SECONDS" in (
        refused.stderr)


def _queue_of(task_name: str) -> str:
    from config.celery import app

    route = app.amqp.router.route({}, task_name, (), {})
    return route["queue"].name if "queue" in route else app.conf.task_default_queue


def test_webhooks_and_notices_run_on_queues_of_their_own_and_the_periodic_jobs_do_not():
    for name in ("deliver_webhook", "deliver_webhooks", "relay_webhooks"):
        assert _queue_of(f"workflows.tasks.{name}") == "webhooks"
    # An escalation storm's e-mail and in-app notices wait on their own workers.
    for name in ("relay_outbox", "deliver_outbox_message", "deliver_outbox_messages"):
        assert _queue_of(f"workflows.tasks.{name}") == "notices"
    for name in ("seal_audit_chain", "sweep_sla_clocks", "check_case_clock",
                 "expire_claim_leases", "warm_dashboard", "run_audit_verification",
                 "enqueue_waiting_audit_verifications"):
        assert _queue_of(f"workflows.tasks.{name}") == "celery"


@pytest.mark.django_db(transaction=True)
def test_webhooks_are_nudged_apart_from_the_other_channels(monkeypatch):
    nudged = []
    monkeypatch.setattr(outbox, "_nudge",
                        lambda ids, webhooks=False: nudged.append((webhooks, ids)))
    with transaction.atomic():
        written = outbox.write([
            outbox.message(channel=Channel.EMAIL, recipient="a@example.com", dedup_key="e",
                           payload={"text": "hi"}),
            outbox.message(channel=Channel.WEBHOOK, recipient="https://ai.example.com/h",
                           dedup_key="w", payload={"type": "ping"})])

    assert sorted(nudged) == [(False, [written[0].pk]), (True, [written[1].pk])]


@pytest.mark.django_db
def test_the_default_relay_leaves_webhooks_to_their_queue(receiver, secret_for_tests,
                                                          nudges):
    message = webhook(receiver.url)
    notice = outbox.enqueue(channel=Channel.EMAIL, recipient="a@example.com",
                            dedup_key="mail", payload={"text": "hi"})

    assert relay_outbox() == 1
    assert receiver.requests == []
    assert OutboxMessage.objects.get(pk=notice.pk).status == OutboxStatus.DELIVERED
    assert relay_webhooks() == 1
    assert OutboxMessage.objects.get(pk=message.pk).status == OutboxStatus.DELIVERED


# --- Through a real Celery worker (Redis + PostgreSQL, not eager) ------------------------------


def test_the_webhook_docs_state_the_retry_timing_the_relay_keeps():
    """docs/WEBHOOKS.md tells receivers when retries come: held to BACKOFF and MAX_ATTEMPTS."""
    doc = " ".join((Path(django_settings.BASE_DIR) / "docs" / "WEBHOOKS.md").read_text().split())
    stated = re.search(r"is retried after ([^(]+) \(each plus up to (\d+) % jitter", doc)
    units = {"s": 1, "min": 60, "h": 3600}
    delays = [int(number) * units[unit] for number, unit in
              (item.split() for item in stated.group(1).split(", "))]
    attempts = int(re.search(r"(\d+) attempts in all", doc).group(1))

    assert attempts == outbox.MAX_ATTEMPTS
    assert delays == [delay.total_seconds() for delay in outbox.BACKOFF[:attempts - 1]]
    assert int(stated.group(2)) == outbox.JITTER * 100


@pytest.mark.skipif(not django_settings.CELERY_BROKER_URL.startswith("redis://"),
                    reason="needs the Redis broker (set REDIS_URL)")
def test_the_redis_broker_publishes_and_reads_through_one_client_per_channel(monkeypatch):
    import uuid

    from config import broker
    from config.celery import app

    built = []
    build = broker.Channel._create_client
    monkeypatch.setattr(broker.Channel, "_create_client", lambda channel, asynchronous=False: (
        built.append(asynchronous), build(channel, asynchronous))[1])

    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue(f"backstop-test-{uuid.uuid4().hex}")
        try:
            for number in range(3):
                queue.put({"nudge": number})
            received = []
            for _ in range(3):
                message = queue.get(timeout=5)
                received.append(message.payload)
                message.ack()
        finally:
            queue.clear()
            queue.close()

    assert received == [{"nudge": 0}, {"nudge": 1}, {"nudge": 2}]
    # kombu's own channel builds one per publish and read: here one serves them all.
    assert built.count(False) == 1
