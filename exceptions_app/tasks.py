"""Thin Celery wrappers of the domain: they call services and do nothing clever themselves."""

from celery import shared_task

from exceptions_app.services import drift


@shared_task(acks_late=True)
def check_drift() -> dict[str, str]:
    """Beat runs this every DRIFT_CHECK_INTERVAL: each use case's recent decisions
    against its reference. Safe to run twice or in two workers at once (``check_drift``
    locks each reference and opens an alert once)."""
    return {slug: result.status for slug, result in drift.check_all().items()}
