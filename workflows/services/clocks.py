"""Due times of a case. The database's due times are the SLA truth (I6)."""

from dataclasses import dataclass
from datetime import datetime

from workflows.models import Queue


@dataclass(frozen=True)
class DueTimes:
    response_due_at: datetime
    due_at: datetime


def initial_due_times(*, queue: Queue, priority: int, now: datetime) -> DueTimes:
    return DueTimes(response_due_at=now + queue.response_target,
                    due_at=now + queue.resolution_target)
