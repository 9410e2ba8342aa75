"""Thin Celery wrappers: they call services and do nothing clever themselves."""

from celery import shared_task
from django.db import DatabaseError

from workflows.services import claiming, outbox


@shared_task(acks_late=True)
def expire_claim_leases(batch_size: int = 500) -> int:
    """Beat runs this every 30 s: expired claims go back to their queue (I3).

    Safe to run twice or in two workers at once: ``expire_leases`` is idempotent.
    A full batch means more may be waiting; the next beat takes them.
    """
    return claiming.expire_leases(batch_size=batch_size)


# Outbox relaying (I5). Both are idempotent: a message is claimed by a conditional
# update before it is sent, so a redelivered or doubled task sends nothing twice.
# Only database trouble is retried here; a failed send is the outbox's own retry.

@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def deliver_outbox_message(message_id: str) -> bool:
    """The nudge after commit: deliver one message now if it is still due."""
    return outbox.deliver(message_id=message_id)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def relay_outbox(batch_size: int = 200) -> int:
    """Beat runs this every 10 s: whatever a lost nudge or a failed attempt left due."""
    return outbox.relay_due(batch_size=batch_size)
