"""Time spent on a case: the bookkeeping every write path shares.

A stint starts when a person takes the case in hand (claim, push, resume, reassign,
send back) and ends when it leaves their hands (release, resolve, request information,
escalate, cancel, withdraw, hand over); its length is added to ``time_spent_seconds``.
"""

from datetime import datetime

from workflows.models import Case


def start_stint(case: Case, now: datetime) -> None:
    """The assignee starts working. Not by itself a first response: a hand-off starts a
    stint too (``transitions.responded`` is the person's own action)."""
    case.work_started_at = now


def end_stint(case: Case, now: datetime) -> None:
    """Add the current assignee's working time to the case."""
    if case.work_started_at is not None:
        case.time_spent_seconds += max(0, int((now - case.work_started_at).total_seconds()))
        case.work_started_at = None


def drop_stint(case: Case) -> None:
    """End the stint without counting it: an abandoned lease is not time spent."""
    case.work_started_at = None
