"""Opening cases: one at a time or many in one batch, each with its audit event.

``open_cases`` does it all. Intake, which writes a decision beside each case, uses its
steps (``new_cases``, ``opened_events``, ``hand_out``) so that the cases' events and
the decisions' go into the database in one statement.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from workflows import hooks
from workflows.case_search import search_text
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
from workflows.process_cache import ProcessCache
from workflows.services import assignment, audit, sla
from workflows.verbs import AuditVerb


@dataclass(frozen=True)
class NewCase:
    queue: Queue
    title: str
    priority: int = 50
    requires_four_eyes: bool = False
    # What the case is about, as the domain has it (a decision's input): the engine keeps
    # only what ``hooks.search_values`` draws from it, for the case list's search.
    subject: Mapping | None = None


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

    The terms come from a per-process cache (``_current_terms``): no query while it
    holds them.
    """
    cases = [Case(queue=spec.queue, title=spec.title[:300], priority=spec.priority,
                  requires_four_eyes=spec.requires_four_eyes, created_at=now,
                  search_text=search_text(
                      title=spec.title[:300],
                      values=hooks.search_values(subject=spec.subject)))
             for spec in specs]
    if cases:
        sla.start_clocks(cases, now=now, books=_terms_books(
            queues={spec.queue.pk: spec.queue for spec in specs}, now=now))
    return cases


def opened_events(*, cases: Sequence[Case],
                  audit_data: Sequence[dict] | None = None) -> list[dict]:
    """What each stored case's ``case.opened`` event says: keyword arguments for
    ``audit.build`` (or ``audit.row``), which add the actor and the time."""
    return [
        {"verb": AuditVerb.CASE_OPENED, "object_type": "case", "object_id": case.pk,
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


# Each queue's current SLA terms (an ``sla.TermsBook``), which change when a manager
# publishes a policy (``workflows.process_cache``).
_current_terms = ProcessCache("sla-current-terms")
_current_terms.watch(SlaPolicy, SlaTarget, Calendar, CalendarClosure, Queue)
# A book holds only the calendar closures near the time it was loaded for.
TERMS_SPAN = timedelta(hours=1)


def _terms_books(*, queues: dict[int, Queue], now: datetime) -> dict[int, sla.TermsBook]:
    """A book holding the current terms of each queue in ``queues``, by queue id."""
    books = {queue_id: book for queue_id, book in _current_terms.lookup(queues).items()
             if abs(book.now - now) < TERMS_SPAN}
    if missing := [queue for queue_id, queue in queues.items() if queue_id not in books]:
        loaded = sla.TermsBook(now=now).load_queues(missing)
        for queue in missing:
            _current_terms.store(queue.pk, loaded)
            books[queue.pk] = loaded
    return books
