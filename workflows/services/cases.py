"""Opening cases: one at a time or many in one batch, each with its audit event.

``open_cases`` does it all. Intake, which writes a decision beside each case, uses its
steps (``new_cases``, ``opened_events``, ``hand_out``) so that the cases' events and
the decisions' go into the database in one statement.
"""

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from workflows.models import (
    AssignmentMode,
    AuditEvent,
    Calendar,
    CalendarClosure,
    Case,
    Queue,
    SlaPolicy,
    SlaTarget,
)
from workflows.services import assignment, audit, sla

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewCase:
    queue: Queue
    title: str
    priority: int = 50
    requires_four_eyes: bool = False


def open_cases(*, specs: Sequence[NewCase], actor_label: str, now: datetime,
               audit_data: Sequence[dict] | None = None) -> list[Case]:
    """Insert the cases and one ``case.opened`` event each, in the caller's transaction.

    A fixed number of queries whatever the number of cases; the SLA clocks start
    under each queue's current policy.
    """
    cases = new_cases(specs=specs, now=now)
    Case.objects.bulk_create(cases)
    AuditEvent.objects.bulk_create(
        audit.build(**event, actor_label=actor_label, now=now)
        for event in opened_events(cases=cases, audit_data=audit_data))
    hand_out(cases, now=now)
    return cases


def new_cases(*, specs: Sequence[NewCase], now: datetime) -> list[Case]:
    """Unsaved cases, their clocks started under each queue's current SLA terms.

    The terms come from a per-process cache (``_CurrentTerms``): no query while it
    holds them.
    """
    cases = [Case(queue=spec.queue, title=spec.title[:300], priority=spec.priority,
                  requires_four_eyes=spec.requires_four_eyes, created_at=now)
             for spec in specs]
    if cases:
        sla.start_clocks(cases, now=now, books=_current_terms.books(
            queues={spec.queue.pk: spec.queue for spec in specs}, now=now))
    return cases


def opened_events(*, cases: Sequence[Case],
                  audit_data: Sequence[dict] | None = None) -> list[dict]:
    """What each stored case's ``case.opened`` event says: keyword arguments for
    ``audit.build`` (or ``audit.row``), which add the actor and the time."""
    return [
        {"verb": "case.opened", "object_type": "case", "object_id": case.pk,
         "case_id": case.pk,
         "data": {"queue": case.queue.slug, "priority": case.priority,
                  "four_eyes": case.requires_four_eyes, "state": case.state, **(extra or {})}}
        for case, extra in zip(cases, audit_data or [None] * len(cases), strict=True)
    ]


def hand_out(cases: Sequence[Case], *, now: datetime) -> None:
    """After the cases and their events are stored: nudge near clocks after commit, and
    let push queues hand each new case to a reviewer (audited after the opening)."""
    sla.nudge(cases, now=now)
    # Pull queues, the default, cost no query here.
    pushed = {case.pk for case in cases if case.queue.assignment_mode != AssignmentMode.PULL}
    if pushed and assignment.push_assign(case_ids=list(pushed), now=now):
        for case in cases:
            if case.pk in pushed:
                case.refresh_from_db()


class _CurrentTerms:
    """Each queue's current SLA terms (an ``sla.TermsBook``), kept briefly per process.

    Without it every case opened costs a query for terms that change when a manager
    publishes a policy. Correctness, as intake's use case cache:

    - a write through the ORM to an SLA policy (``publish_sla_policy`` creates one),
      a target, a calendar, a closure or a queue clears this process's books at once
      and again when its transaction commits, and bumps a token in Django's cache:
      with Redis, every process drops its books on its next use;
    - anything else (``QuerySet.update``, SQL, a process without a shared cache) is
      seen after at most ``TTL`` seconds.

    A book is also reloaded for an opening time more than ``SPAN`` away from the one
    it was loaded for, since it holds only the calendar closures near that time.
    """

    TTL = 2.0
    SPAN = timedelta(hours=1)
    GENERATION_KEY = "backstop:sla-current-terms"

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.books_by_queue: dict[int, tuple[float, sla.TermsBook]] = {}
        self.generation = None

    def books(self, *, queues: dict[int, Queue], now: datetime) -> dict[int, sla.TermsBook]:
        """A book holding the current terms of each queue in ``queues``, by queue id."""
        moment = self.clock()
        generation = _shared_cache("get", self.GENERATION_KEY)
        if generation != self.generation:
            self.books_by_queue = {}
            self.generation = generation
        books = {}
        for queue_id in queues:
            entry = self.books_by_queue.get(queue_id)
            if entry is not None and entry[0] > moment and abs(entry[1].now - now) < self.SPAN:
                books[queue_id] = entry[1]
        if missing := [queue for queue_id, queue in queues.items() if queue_id not in books]:
            loaded = sla.TermsBook(now=now).load_queues(missing)
            for queue in missing:
                self.books_by_queue[queue.pk] = (moment + self.TTL, loaded)
                books[queue.pk] = loaded
        return books

    def clear(self) -> None:
        self.books_by_queue = {}
        _shared_cache("set", self.GENERATION_KEY, uuid.uuid4().hex, None)


def _shared_cache(operation: str, *args):
    # An unreachable cache must not fail a write to a policy: the TTL still bounds how
    # long other processes keep what they have.
    try:
        return getattr(cache, operation)(*args)
    except Exception:
        logger.warning("The cache is unreachable; the SLA terms cache relies on its TTL.",
                       exc_info=True)
        return None


_current_terms = _CurrentTerms()


def forget_current_terms(**kwargs) -> None:
    """Drop the cached SLA terms now and once the writing transaction commits."""
    _current_terms.clear()
    transaction.on_commit(_current_terms.clear)


for _model in (SlaPolicy, SlaTarget, Calendar, CalendarClosure, Queue):
    post_save.connect(forget_current_terms, sender=_model,
                      dispatch_uid=f"sla-terms-{_model.__name__}")
    post_delete.connect(forget_current_terms, sender=_model,
                        dispatch_uid=f"sla-terms-delete-{_model.__name__}")
