"""Thin Celery wrappers: they call services and do nothing clever themselves."""

from celery import shared_task

from workflows.services import claiming


@shared_task(acks_late=True)
def expire_claim_leases(batch_size: int = 500) -> int:
    """Beat runs this every 30 s: expired claims go back to their queue (I3).

    Safe to run twice or in two workers at once: ``expire_leases`` is idempotent.
    A full batch means more may be waiting; the next beat takes them.
    """
    return claiming.expire_leases(batch_size=batch_size)
