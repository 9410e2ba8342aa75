"""Long jobs a Celery worker does from a row of their own (checks of the audit trail,
backtests): handed to a worker after commit, handed over again by beat when no worker
took one or its worker was lost, and run by one worker at a time."""

import logging
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

# A queued job no worker took after WAITING is handed over again; a running one whose
# progress has not moved for LOST lost its worker (progress is written every chunk).
WAITING = timedelta(minutes=1)
LOST = timedelta(minutes=10)

logger = logging.getLogger(__name__)


def hand_over(task, job_id: int, *, what: str) -> None:
    """Give the job to a worker. A broker that is down costs only this nudge: beat's
    ``waiting`` hands it over again a minute later."""
    try:
        task.apply_async(args=[job_id], retry=False)
    except Exception:
        logger.warning("%s %s: could not reach a worker; retried within a minute", what,
                       job_id, exc_info=True)


def waiting(jobs: QuerySet, *, queued: str, running: str, now: datetime) -> list[int]:
    """The jobs to hand over again: queued over a minute ago, or running without
    progress for longer than a worker takes between two chunks."""
    return list(jobs.filter(Q(status=queued, requested_at__lt=now - WAITING)
                            | Q(status=running, heartbeat_at__lt=now - LOST))
                .values_list("pk", flat=True))


def is_taken(job, *, running: str, now: datetime) -> bool:
    """Finished, or running in a worker that is still alive (its heartbeat is recent):
    a second hand-over leaves it as it is."""
    return job.is_finished or (job.status == running and job.heartbeat_at > now - LOST)
