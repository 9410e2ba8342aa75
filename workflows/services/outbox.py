"""Side effects through the outbox (I5): written with the change, relayed after commit.

A webhook, an e-mail or an in-app notification is first an ``OutboxMessage`` row,
written by ``enqueue`` in the transaction of the change that causes it: if that
transaction rolls back, the message never existed; once it commits, the message
cannot be lost, because the row is the truth. ``transaction.on_commit`` nudges the
``deliver_outbox_message`` task so that delivery is quick, and ``relay_due`` (beat,
every 10 s) picks up whatever a lost nudge, a dead worker or a failed attempt left
behind.

Delivery is at least once: a worker that dies after sending and before recording
sends again later. Receivers deduplicate by the message's id (the ``webhook-id``
header, the e-mail's ``Message-ID``); in-app notifications are exactly once, since a
``Notification`` is one-to-one with its message.
"""

import base64
import contextlib
import json
import logging
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from workflows import db, hooks, webhook_addresses
from workflows.models import (
    Channel,
    DeliveryAttempt,
    Notification,
    OutboxMessage,
    OutboxStatus,
)
from workflows.services import audit
from workflows.services.errors import Conflict
from workflows.services.queues import require_manager
from workflows.verbs import AuditVerb

logger = logging.getLogger("backstop.outbox")


def enqueue(*, channel: str, recipient: str, dedup_key: str, payload: dict,
            subject: str = "", case=None, now: datetime | None = None) -> OutboxMessage:
    """Write one side effect in the caller's transaction; answer its row.

    Idempotent on ``dedup_key``: a second call with the same key answers the row
    already written and writes nothing (and nudges nothing). ``recipient`` is an
    e-mail address, a webhook URL, or a user's id for ``in_app``. ``payload`` is
    stored as JSON (datetimes and decimals become strings); for a webhook it is the
    body posted, for an e-mail or in-app message ``payload["text"]`` is the text.
    """
    (written,) = write([message(channel=channel, recipient=recipient, dedup_key=dedup_key,
                                payload=payload, subject=subject, case=case, now=now)])
    return written


def message(*, channel: str, recipient: str, dedup_key: str, payload: dict,
            subject: str = "", case=None, now: datetime | None = None) -> OutboxMessage:
    """An unsaved message, for ``write``."""
    if channel not in Channel.values:
        raise ValueError(f"Unknown outbox channel {channel!r}; use one of {Channel.values}.")
    if not recipient:
        raise ValueError(f"An outbox message needs a recipient (dedup key {dedup_key!r}).")
    now = now or timezone.now()
    return OutboxMessage(
        channel=channel, recipient=str(recipient), dedup_key=dedup_key,
        subject=subject[:300], payload=_as_json(payload), case=case,
        next_attempt_at=now, created_at=now)


def write(messages: list[OutboxMessage], *, inserted: set | None = None) -> list[OutboxMessage]:
    """Write unsaved messages in the caller's transaction, in one statement; answer, in
    order, each one's row: the new one, or the one already written under its key.

    ``INSERT ... ON CONFLICT (dedup_key) DO NOTHING``: a key written before, or by a
    concurrent writer (PostgreSQL makes the insert wait for that writer's commit), costs
    nothing and never fails the caller's transaction; those rows are read back in one
    more query. Only the new ones are nudged, after commit. ``inserted``: the ids of
    those the caller's own statement inserted so (``db.update_columns_with_effects``,
    with the change that causes them); this one inserts nothing then.
    """
    if not messages:
        return []
    if inserted is None:
        inserted = _insert_new(messages)
    missing = [m.dedup_key for m in messages if m.pk not in inserted]
    existing = ({row.dedup_key: row for row in
                 OutboxMessage.objects.filter(dedup_key__in=missing)} if missing else {})
    answered = [m if m.pk in inserted else existing.get(m.dedup_key) for m in messages]
    if any(row is None for row in answered):
        # Neither inserted nor there: a concurrent writer of the key rolled back after
        # making us wait (SQLite never gets here). Not a duplicate: write it again.
        return write(messages)
    for row in answered:
        if row.pk in inserted:
            db.mark_saved(row)
    new = [m for m in messages if m.pk in inserted]
    # The row is the truth; the nudge only makes delivery quick. ``robust``: a broker
    # that is down must never turn a committed change into an error for its caller.
    # Webhooks are nudged on their own queue (a slow receiver delays only webhooks).
    other_ids = [m.pk for m in new if m.channel != Channel.WEBHOOK]
    webhook_ids = [m.pk for m in new if m.channel == Channel.WEBHOOK]
    if other_ids:
        transaction.on_commit(lambda: _nudge(other_ids), robust=True)
    if webhook_ids:
        transaction.on_commit(lambda: _nudge(webhook_ids, webhooks=True), robust=True)
    return answered


def _insert_new(messages: list[OutboxMessage]):
    """Insert what is not there yet; answer the ids inserted."""
    fields = OutboxMessage._meta.concrete_fields
    key = OutboxMessage._meta.pk
    inserted = db.insert_new(
        OutboxMessage, columns=[field.column for field in fields],
        rows=[db.db_values(m, fields) for m in messages],
        conflict=("dedup_key",), returning=(key.column,))
    return {key.to_python(value) for (value,) in inserted}


def notify_users(*, users: Iterable, text: str, dedup_prefix: str, case=None,
                 email: bool = True, now: datetime | None = None) -> list[OutboxMessage]:
    """Tell people something: one in-app message each, and an e-mail to those who have one.

    Dedup keys are ``f"{dedup_prefix}:{channel}:{user.pk}"``, so the same notice to
    the same person is written once, however often the caller runs (a re-run sweep).
    Inactive users are skipped. One statement for them all.
    """
    return write(notices(users=users, text=text, dedup_prefix=dedup_prefix, case=case,
                         email=email, now=now))


def notices(*, users: Iterable, text: str, dedup_prefix: str, case=None,
            email: bool = True, now: datetime | None = None) -> list[OutboxMessage]:
    """The unsaved messages ``notify_users`` writes, for a caller that writes many
    notices at once (``write``)."""
    now = now or timezone.now()
    subject = _subject(text)
    payload = {"text": text}
    messages = []
    for user in users:
        if not getattr(user, "is_active", True):
            continue
        messages.append(message(
            channel=Channel.IN_APP, recipient=str(user.pk),
            dedup_key=f"{dedup_prefix}:{Channel.IN_APP}:{user.pk}",
            payload=payload, subject=subject, case=case, now=now))
        if email and user.email:
            messages.append(message(
                channel=Channel.EMAIL, recipient=user.email,
                dedup_key=f"{dedup_prefix}:{Channel.EMAIL}:{user.pk}",
                payload={"text": email_text(text, user=user, case=case)}, subject=subject,
                case=case, now=now))
    return messages


def email_text(text: str, *, user, case=None) -> str:
    """A notice as an e-mail someone can act on: whom it is for, what happened, and an
    absolute link to the case (or to their notifications) from ``SITE_BASE_URL``."""
    base = settings.SITE_BASE_URL
    link = (f"Open {case.label}: {base}{reverse('case', args=[case.pk])}" if case is not None
            else f"Your notifications: {base}{reverse('notifications')}")
    return f"Hello {user.display_name},\n\n{text.strip()}\n\n{link}\n\n-- \nBackstop"


def _subject(text: str) -> str:
    first_line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return first_line[:200]


def _as_json(payload: dict) -> dict:
    # What the database will hand back, so the webhook body and its signature are
    # computed from exactly the stored value.
    return json.loads(json.dumps(payload or {}, cls=DjangoJSONEncoder))


# A write of many messages (a sweep's warnings) nudges them in groups of this many: one
# task per group rather than per message, while a burst still spreads over the workers.
NUDGE_GROUP = 50


def _nudge(message_ids: list, *, webhooks: bool = False) -> None:
    """Ask workers to deliver these messages now (after commit; failures only logged).

    ``webhooks``: they are all webhooks, for the tasks routed to the webhooks queue.
    """
    from workflows import tasks

    one, many = ((tasks.deliver_webhook, tasks.deliver_webhooks) if webhooks else
                 (tasks.deliver_outbox_message, tasks.deliver_outbox_messages))
    try:
        # retry=False: a broker that is down costs this nudge, never the request.
        if len(message_ids) == 1:
            one.apply_async(args=[str(message_ids[0])], retry=False)
            return
        for start in range(0, len(message_ids), NUDGE_GROUP):
            many.apply_async(
                args=[[str(pk) for pk in message_ids[start:start + NUDGE_GROUP]]],
                retry=False)
    except Exception:
        logger.warning("outbox: could not nudge delivery of %d messages; the relay sweep "
                       "will deliver them", len(message_ids), exc_info=True)


# --- Relaying ---------------------------------------------------------------------------

# Delay before attempt n+1 after n failed attempts (then jittered): quick at first for a
# receiver that blinked, then patient for one that is down.
BACKOFF = (timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=2),
           timedelta(minutes=10), timedelta(hours=1), timedelta(hours=3),
           timedelta(hours=6), timedelta(hours=12))
# After this many failed attempts the message is ``failed`` for good (about ten hours).
MAX_ATTEMPTS = 8
# Up to this fraction is added to each delay, so that messages which failed together
# (a receiver's outage) do not all come back in the same second.
JITTER = 0.25
# What of a failure is kept.
ERROR_LIMIT = 2000


def delivery_lease() -> timedelta:
    """While one worker delivers, the message is leased to it: its ``next_attempt_at``
    moves this far ahead, so no other worker (or sweep) takes it meanwhile. Longer than
    a webhook attempt's deadline (``settings.OUTBOX_DELIVERY_LEASE``, checked at
    start-up); if the worker dies, the message comes back after it."""
    return settings.OUTBOX_DELIVERY_LEASE


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str = ""
    # Bytes of the receiver's answer read (at most WEBHOOK_RESPONSE_LIMIT_BYTES).
    response_bytes: int = 0


def backoff_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait after ``attempts`` failed attempts (1 = the first failed)."""
    base = BACKOFF[min(attempts, len(BACKOFF)) - 1]
    return base * (1 + (rng or random).uniform(0, JITTER))


def deliver(*, message_id, now: datetime | None = None) -> bool:
    """Relay one message once; answer whether this call delivered it.

    Safe to call any number of times, concurrently: the message is claimed with a
    conditional UPDATE (still pending and due), so only one caller sends it; the
    others answer False at once. Every attempt is recorded as a ``DeliveryAttempt``.
    Nothing is held in a transaction while sending: a slow receiver never holds a
    database lock or connection in a transaction.
    """
    now = now or timezone.now()
    message = _claim(message_id=message_id, now=now)
    if message is None:
        return False
    if message.attempts > max_attempts():
        # A worker died while delivering its last attempt (a poison message that
        # kills the process): give up rather than crash-loop on it.
        _finish(message, Outcome(False, error="Given up: the worker was lost while "
                                              "delivering the last attempt."), now=now,
                started=time.monotonic(), record=False)
        return False
    started = time.monotonic()
    try:
        outcome = SENDERS[message.channel](message)
    except Exception as exc:  # any failure of one message is that message's failure
        logger.exception("outbox: delivering %s failed", message.pk)
        outcome = Outcome(False, error=f"{type(exc).__name__}: {exc}")
    _finish(message, outcome, now=now, started=started)
    return outcome.delivered


def relay_due(*, now: datetime | None = None, batch_size: int = 200,
              channels: Iterable[str] | None = None) -> int:
    """The sweep: deliver pending messages that are due, oldest due first; answer how
    many were delivered.

    Reads one bounded batch by ``outbox_pending_idx``. A message that fails is pushed
    to its next attempt (and one that crashes its sender is leased away), so one bad
    message never blocks the others, nor this sweep on its next run. ``channels``:
    only these (the webhooks are relayed on their own queue, ``relay_webhooks``).
    """
    now = now or timezone.now()
    due = OutboxMessage.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
    if channels is not None:
        due = due.filter(channel__in=list(channels))
    due = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:batch_size])
    started = time.monotonic()
    delivered = 0
    for message_id in due:
        # Each claim's lease counts from when it is taken (to the second), not from the
        # sweep's start: slow receivers earlier in the batch must not shorten the later
        # ones' leases until another worker sends them again meanwhile.
        at = now + timedelta(seconds=int(time.monotonic() - started))
        try:
            delivered += deliver(message_id=message_id, now=at)
        except Exception:
            logger.exception("outbox: relaying %s failed; it is retried later", message_id)
    return delivered


def redeliver(*, message_id, actor, now: datetime | None = None) -> OutboxMessage:
    """Send a message that failed for good again, from now, with a fresh run of attempts
    (its earlier attempts stay in the log). Managers only; audited. A message that is not
    failed answers ``Conflict``: pending ones are already being tried, delivered ones
    arrived."""
    require_manager(actor, "send failed messages again")
    now = now or timezone.now()
    with transaction.atomic():
        taken = OutboxMessage.objects.filter(pk=message_id, status=OutboxStatus.FAILED).update(
            status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now)
        message = OutboxMessage.objects.get(pk=message_id)
        if not taken:
            raise Conflict(f"Only a failed message can be sent again; this one is "
                           f"{message.get_status_display().lower()}.")
        audit.record(actor=actor, verb=AuditVerb.MESSAGE_REDELIVERED, object_type="outbox",
                     object_id=message.pk, now=now,
                     data={"channel": message.channel, "dedup_key": message.dedup_key,
                           "case": message.case_id})
        transaction.on_commit(lambda: _nudge([message.pk], webhooks=message.channel
                                             == Channel.WEBHOOK), robust=True)
    return message


def max_attempts() -> int:
    return getattr(settings, "OUTBOX_MAX_ATTEMPTS", MAX_ATTEMPTS)


def _claim(*, message_id, now: datetime) -> OutboxMessage | None:
    """Lease a due message to this caller, or None if it is not due or someone has it.

    One conditional UPDATE decides (the healthchecks move), on PostgreSQL and SQLite
    alike: of two workers, the second finds ``next_attempt_at`` already moved ahead.
    The attempt is counted here, so a message whose delivery kills the worker still
    runs out of attempts.
    """
    won = (OutboxMessage.objects
           .filter(pk=message_id, status=OutboxStatus.PENDING, next_attempt_at__lte=now)
           .update(next_attempt_at=now + delivery_lease(), attempts=F("attempts") + 1))
    if won != 1:
        return None
    return OutboxMessage.objects.get(pk=message_id)


def _finish(message: OutboxMessage, outcome: Outcome, *, now: datetime, started: float,
            record: bool = True) -> None:
    duration_ms = int((time.monotonic() - started) * 1000)
    error = outcome.error[:ERROR_LIMIT]
    if outcome.delivered:
        changes = {"status": OutboxStatus.DELIVERED, "delivered_at": now, "last_error": ""}
    elif message.attempts >= max_attempts():
        changes = {"status": OutboxStatus.FAILED, "last_error": error}
    else:
        changes = {"next_attempt_at": now + backoff_delay(message.attempts),
                   "last_error": error}
    with transaction.atomic():
        if record:
            DeliveryAttempt.objects.create(
                message=message, attempted_at=now, succeeded=outcome.delivered,
                status_code=outcome.status_code, error=error, duration_ms=duration_ms)
        # Only while our lease holds: the same conditional move as the claim.
        OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.PENDING,
                                     attempts=message.attempts).update(**changes)
    if not outcome.delivered:
        logger.warning("outbox: %s %s to %s failed (attempt %d): %s", message.channel,
                       message.pk, message.recipient, message.attempts, error)


# --- Channels ---------------------------------------------------------------------------

def _send_email(message: OutboxMessage) -> Outcome:
    email = EmailMessage(
        subject=message.subject or "Backstop", body=message.payload.get("text", ""),
        from_email=settings.DEFAULT_FROM_EMAIL, to=[message.recipient],
        # The same Message-ID on every retry: mail systems drop the duplicate.
        headers={"Message-ID": f"<{message.pk}@backstop>"})
    email.send(fail_silently=False)
    return Outcome(True)


def _send_webhook(message: OutboxMessage) -> Outcome:
    body = webhook_body(message.payload)
    signing_secrets = hooks.webhook_secrets(message=message)
    if not signing_secrets:
        return Outcome(False, error="No signing secret for this webhook: set its "
                                    "receiver's signing secret; the next attempt uses it.")
    headers = {"content-type": "application/json",
               "user-agent": "Backstop-Webhooks/1.0",
               **webhook_headers(message_id=str(message.pk), body=body,
                                   signing_secrets=signing_secrets)}
    return post_webhook(url=message.recipient, body=body.encode(), headers=headers)


def post_webhook(*, url: str, body: bytes, headers: dict[str, str],
                 timeout: float | None = None, limit: int | None = None) -> Outcome:
    """POST once, within a total deadline, reading at most ``limit`` bytes of the answer.

    httpx's timeouts are per operation (a receiver that sends a byte every few seconds
    never trips a read timeout), so a watchdog shuts the connection down at the
    deadline, whatever phase the request is in: one slow receiver costs a worker
    ``WEBHOOK_TIMEOUT_SECONDS`` at most. Delivered means a 2xx status and the answer
    read (up to the limit) before the deadline. The answer is never kept: the log
    holds the status, the size read and the error's class, not what the receiver said.
    """
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS if timeout is None else timeout
    limit = settings.WEBHOOK_RESPONSE_LIMIT_BYTES if limit is None else limit
    # SSRF: the URL is checked again here, and the connection goes only to an address
    # checked at this moment (webhook_addresses); no proxy from the environment.
    if problem := webhook_addresses.scheme_problem(url):
        return Outcome(False, error=f"Refused, nothing sent: {problem}")
    deadline = _Deadline(timeout)
    status, received = None, 0
    try:
        with deadline, httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                    transport=webhook_addresses.CheckedTransport(),
                                    trust_env=False) as client:
            request = client.build_request("POST", url, content=body, headers=headers,
                                           extensions={"trace": deadline.trace})
            response = client.send(request, stream=True)
            try:
                status = response.status_code
                for chunk in response.iter_raw():
                    received += len(chunk)
                    if received >= limit or deadline.expired:
                        break  # enough to know it answered; the rest is not read
            finally:
                response.close()
    except webhook_addresses.AddressRefused as exc:
        return Outcome(False, error=f"Refused, nothing sent: {exc}"[:ERROR_LIMIT])
    except (httpx.HTTPError, OSError) as exc:
        if not deadline.expired:
            return Outcome(False, status_code=status, response_bytes=received,
                           error=f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT])
    received = min(received, limit)
    if deadline.expired:
        return Outcome(False, status_code=status, response_bytes=received,
                       error=f"Timeout: no complete answer within {timeout:g} s "
                             f"(status {status or 'not received'}, {received} bytes read).")
    if 200 <= status < 300:
        return Outcome(True, status_code=status, response_bytes=received)
    return Outcome(False, status_code=status, response_bytes=received,
                   error=f"HTTP {status} ({received} bytes of answer, not kept).")


class _Deadline:
    """Shuts the request's connection down when its time is up (see ``post_webhook``).

    httpcore's ``trace`` extension hands over each socket as it is connected; a
    ``shutdown`` from the timer thread wakes a read or write blocked on it at once.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._sockets: list = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        return False

    def trace(self, event: str, info: dict) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            sock = info["return_value"].get_extra_info("socket")
            with self._lock:
                if sock is not None:
                    self._sockets.append(sock)
                late = self.expired
            if late:
                self._shutdown()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


def _send_in_app(message: OutboxMessage) -> Outcome:
    # One notification per message, whatever happens: the OneToOne makes a retry
    # after a lost worker find the first one.
    Notification.objects.get_or_create(
        message=message,
        defaults={"user_id": int(message.recipient), "case_id": message.case_id,
                  "text": (message.payload.get("text") or message.subject)[:500],
                  "created_at": message.created_at})
    return Outcome(True)


SENDERS = {Channel.EMAIL: _send_email, Channel.WEBHOOK: _send_webhook,
           Channel.IN_APP: _send_in_app}
# What the default queue's relay sends; webhooks have a queue of their own.
NOT_WEBHOOKS = tuple(channel for channel in Channel.values if channel != Channel.WEBHOOK)


# --- Standard Webhooks -------------------------------------------------------------------
#
# Signing secrets follow the Standard Webhooks format ``whsec_<base64 key>``: the key is
# the base64-decoded part, and receivers verify with ``standardwebhooks.Webhook(secret)``.
# A secret without the prefix is used as its UTF-8 bytes (receivers then verify with
# ``Webhook(secret.encode())``). ``generate_signing_secret`` makes a new one.

def generate_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_body(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def webhook_headers(*, message_id: str, body: str, signing_secrets: Sequence[str],
                    timestamp: datetime | None = None) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for one send, with
    one signature per secret, space-separated (a receiver holding either verifies).

    The timestamp is the wall clock at sending (receivers reject old ones), never an
    injected ``now``; the id is the message's, the same on every retry.
    """
    timestamp = timestamp or datetime.now(UTC)
    signatures = [
        Webhook(secret if secret.startswith("whsec_") else secret.encode())
        .sign(msg_id=message_id, timestamp=timestamp, data=body) for secret in signing_secrets]
    return {"webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": " ".join(signatures)}
