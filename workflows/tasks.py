"""Thin Celery wrappers: they call services and do nothing clever themselves."""

from celery import shared_task
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone

from workflows import dashboard
from workflows.models import Channel
from workflows.services import audit, audit_verifications, claiming, outbox, sweeper


@shared_task(acks_late=True)
def expire_claim_leases(batch_size: int = 500) -> int:
    """Beat runs this every 30 s: expired claims go back to their queue (I3).

    Safe to run twice or in two workers at once: ``expire_leases`` is idempotent.
    A full batch means more may be waiting; the next beat takes them.
    """
    return claiming.expire_leases(batch_size=batch_size)


@shared_task(acks_late=True)
def clear_expired_sessions() -> None:
    """Beat runs this hourly: the rows of sessions past their expiry go (Django's
    ``clearsessions``; an expired session is refused whether or not its row is there)."""
    call_command("clearsessions")


@shared_task(acks_late=True)
def seal_audit_chain() -> int:
    """Beat runs this every AUDIT_SEAL_INTERVAL: link committed events into the chain.

    One sealer at a time holds the advisory lock; a second run waits and seals nothing new.
    """
    return audit.seal()


@shared_task(acks_late=True)
def run_audit_verification(verification_id: int) -> str:
    """Check the whole chain for a person who asked (idempotent: a finished check, or one
    another worker is running, is left as it is)."""
    return audit_verifications.run(verification_id).status


@shared_task(acks_late=True)
def enqueue_waiting_audit_verifications() -> int:
    """Beat runs this every minute: checks whose nudge or worker was lost are handed over
    again."""
    return audit_verifications.enqueue_waiting()


@shared_task(acks_late=True)
def count_open_cases() -> None:
    """Beat runs this every 8 s (with a cache the web workers share): the whole
    desk's count of open cases for the dashboard, so a manager's look finds it fresh
    instead of counting a large backlog in a web worker. A large desk is counted less
    often, in slices (``dashboard.live_snapshot``: SPACING times the last count's
    duration). Then the default view's board for that count, so that the managers'
    looks find it made (a look at a board already made reads nothing more)."""
    dashboard.live_snapshot(queue_ids=None, now=timezone.now(), recount=True)
    dashboard.shared_board(process="", queue="", period=dashboard.DEFAULT_PERIOD,
                           urgent_limit=dashboard.URGENT_LIMIT)


@shared_task(acks_late=True)
def warm_dashboard() -> None:
    """Summarise the closed cases' complete hours and days before a manager asks.

    The first dashboard view after they expire computes a month of them (2-3 s at a
    million cases); beat runs this only with a cache the web workers share (Redis).
    """
    for period in dashboard.PERIODS:
        dashboard.dashboard(period=period)


# Outbox relaying (I5). All are idempotent: a message is claimed by a conditional
# update before it is sent, so a redelivered or doubled task sends nothing twice.
# Only database trouble is retried here; a failed send is the outbox's own retry.
# The webhook tasks are routed to their own queue (settings.CELERY_TASK_ROUTES): a
# customer's slow endpoint holds only webhook workers, never the periodic jobs here.

@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def deliver_outbox_message(message_id: str) -> bool:
    """The nudge after commit: deliver one message now if it is still due."""
    return outbox.deliver(message_id=message_id)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def deliver_outbox_messages(message_ids: list[str]) -> int:
    """The nudge after a commit that wrote many: deliver those still due; answer how many
    this call delivered."""
    return sum(outbox.deliver(message_id=message_id) for message_id in message_ids)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def relay_outbox(batch_size: int = 200) -> int:
    """Beat runs this every 10 s: whatever a lost nudge or a failed attempt left due,
    except webhooks (``relay_webhooks``, on their queue)."""
    return outbox.relay_due(batch_size=batch_size, channels=outbox.NOT_WEBHOOKS)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def deliver_webhook(message_id: str) -> bool:
    """The nudge after commit for a webhook (on the webhooks queue)."""
    return outbox.deliver(message_id=message_id)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def deliver_webhooks(message_ids: list[str]) -> int:
    """The nudge after a commit that wrote many webhooks (on the webhooks queue)."""
    return sum(outbox.deliver(message_id=message_id) for message_id in message_ids)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def relay_webhooks(batch_size: int = 50) -> int:
    """Beat runs this every 10 s on the webhooks queue: webhooks left due."""
    return outbox.relay_due(batch_size=batch_size, channels=[Channel.WEBHOOK])


# SLA clocks (I6): a case's ``sla_next_check_at`` is the truth; these only look at it.
# Both are idempotent (one warning and one escalation per case and level, I2), so a
# doubled beat, a redelivered nudge or a retry changes nothing twice.

@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def sweep_sla_clocks(batch_size: int = 500, share: bool = True) -> dict:
    """Beat runs this every SLA_SWEEP_INTERVAL: every warning and breach come due.

    ``share``: more than a batch due (a burst), it first asks helper sweeps, so that
    several worker processes take the chunks; they expire like the beat's own run.
    """
    if share:
        for _ in range(sweeper.helpers_wanted(batch_size=batch_size)):
            sweep_sla_clocks.apply_async(
                kwargs={"batch_size": batch_size, "share": False},
                expires=settings.SLA_SWEEP_INTERVAL.total_seconds())
    return sweeper.sweep(batch_size=batch_size).as_dict()


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def check_case_clock(case_id: int) -> dict:
    """The short-ETA nudge for one case's next check; nothing if it is not due."""
    return sweeper.check_case(case_id=case_id).as_dict()
