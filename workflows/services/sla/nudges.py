"""Nudges: short-ETA tasks, sent after commit (the row stays the truth, I6)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from workflows.models import Case

logger = logging.getLogger("backstop.sla")

# A nudge's ETA lies a little after the check, so that the task never finds it not due.
NUDGE_MARGIN = timedelta(milliseconds=100)


def nudge_horizon() -> timedelta:
    """How far ahead a check may be nudged: well inside the broker's visibility timeout.

    A worker holds an ETA task unacknowledged until it runs; past the visibility timeout
    Redis would hand it to a second worker. Tasks a dead worker held come back only
    after that timeout: the sweep, not the nudge, is what loses nothing."""
    horizon = getattr(settings, "SLA_NUDGE_HORIZON", timedelta(minutes=5))
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    if "visibility_timeout" in options:
        horizon = min(horizon, timedelta(seconds=options["visibility_timeout"] / 2))
    return horizon


def nudge(cases: Iterable[Case], *, now: datetime) -> None:
    """After commit, schedule ``check_case_clock`` for the cases whose next check is near."""
    if not getattr(settings, "SLA_NUDGES_ENABLED", True):
        return
    horizon = now + nudge_horizon()
    due = [(case.pk, case.sla_next_check_at) for case in cases
           if case.pk is not None and case.sla_next_check_at is not None
           and case.sla_next_check_at <= horizon]
    if due:
        transaction.on_commit(lambda: send_nudges(due), robust=True)


def send_nudges(due: Sequence[tuple[int, datetime]]) -> int:
    """Publish the nudges; a broker that is down loses them, and the sweep catches up."""
    from workflows.tasks import check_case_clock

    sent = 0
    try:
        for case_id, check_at in due:
            check_case_clock.apply_async((case_id,), eta=check_at + NUDGE_MARGIN, retry=False)
            sent += 1
    except Exception:  # the broker is unreachable: nudges are an optimisation only (I6)
        logger.warning("Could not nudge %d SLA checks; the sweep will take them.",
                       len(due) - sent, exc_info=True)
    return sent


def uses_row_locks() -> bool:
    return connection.features.has_select_for_update_skip_locked
