"""The SLA sweeper: warnings and breaches that have come due, each acted on once (I2, I6).

The database is the truth: a case's ``sla_next_check_at`` says when it must next be
looked at. ``sweep`` (beat, every ``SLA_SWEEP_INTERVAL``) reads the due ones through the
partial index ``case_sla_check_idx`` in bounded batches; ``check_case`` (the short-ETA
nudge) looks at one, then at one batch of the others due by then. A burst (many cases
due at one moment) is so shared by several workers: by the first nudges, or by the
helper sweeps a beat sweep asks for (``helpers_wanted``), each taking the chunks the
others have not locked. All take the same step over a chunk of cases (``CHUNK`` of a
batch, or the one), in one transaction:

1. re-read and lock the chunk's cases that are still open and due, in one query
   (PostgreSQL: ``FOR UPDATE SKIP LOCKED``: a second sweeper skips those rows rather
   than wait for them; SQLite serializes writers anyway);
2. the warnings that have come due are ``SlaWarning`` rows inserted in one statement
   with ``ON CONFLICT DO NOTHING`` on their unique ``(case, clock, level)``: only the
   warnings this statement inserted are given, their notices written to the outbox in
   one statement and their audit events in another, in the same transaction (I5);
3. each deadline that has passed calls ``escalation.escalate`` with the level read: its
   conditional update and the unique ``(case, level)`` escalation row let exactly one
   caller win, and it sets the next level's clock (``sla.on_escalated``) in this same
   transaction, so a crash can never leave a new level with the old deadline. What the
   escalations of a batch share (queues, chains, RACI holders, managers, SLA terms) is
   read once per batch;
4. the other cases' ``sla_next_check_at`` move to their next instant still ahead, in one
   UPDATE that holds for each case only while its version and level are those read.

So two sweeps at once, a sweep run twice, a redelivered nudge or a restarted broker give
one warning and one escalation per (case, level). The sweeper does not bump the case's
version when it only moves the next check: a reviewer's save in between is not refused
(409) for it, and if that save writes back an older next check, the case is simply looked
at again, which changes nothing.

A poison row (one whose handling raises) rolls its chunk back; the chunk is then taken
case by case, and the poison row is pushed ``POISON_DELAY`` ahead in its own transaction
and logged, so that it cannot stop the others or crash-loop the sweeper. Database
outages are not poison: they propagate, and the task retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from workflows import db
from workflows.actors import SYSTEM
from workflows.models import (
    RUNNING_STATES,
    Case,
    EscalationCause,
    RaciRole,
    SlaClock,
    SlaWarning,
)
from workflows.services import audit, escalation, outbox, sla
from workflows.services.sla import TermsBook
from workflows.verbs import AuditVerb

logger = logging.getLogger("backstop.sla")

POISON_DELAY = timedelta(minutes=5)
# A breach the escalation service declined (it answered None while the case still sat
# at the level read) is looked at again after this long, never dropped.
RETRY_DELAY = timedelta(minutes=5)
MAX_BATCHES = 20
# A beat sweep that finds more than a batch due asks up to this many more sweeps (tasks)
# to share it: each takes the chunks the others have not locked.
MAX_HELPERS = 3
# Cases per transaction: the rows stay locked while their chunk is handled, so reviewers
# never wait long for one of them, and each kind of write is one statement per chunk.
CHUNK = 100


@dataclass
class SweepResult:
    checked: int = 0  # cases looked at
    warnings: int = 0  # warnings given (and notified) by this run
    escalations: int = 0  # escalations won by this run
    deferred: int = 0  # poison rows pushed ahead
    skipped: int = 0  # taken by another sweeper meanwhile, or no longer due
    batches: int = 0
    more: bool = False  # stopped at max_batches: more may be due

    def add(self, other: SweepResult) -> None:
        for field in ("checked", "warnings", "escalations", "deferred", "skipped"):
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def as_dict(self) -> dict:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def due_cases(*, now: datetime):
    """Open cases whose next check has come: a range of ``case_sla_check_idx``."""
    return (Case.objects.filter(state__in=RUNNING_STATES, sla_next_check_at__lte=now)
            .order_by("sla_next_check_at"))


def sweep(*, now: datetime | None = None, batch_size: int = 500,
          max_batches: int = MAX_BATCHES) -> SweepResult:
    """Act on every warning and breach due at ``now``, batch after batch (bounded).

    A fixed number of queries per batch to read it and what its cases share, a fixed
    number per chunk to lock it and write its warnings and next checks, and a handful
    per escalation: the work grows with the cases due, never with the cases open.
    """
    # Live (no ``now`` given), each chunk is acted on at its own moment, so that a long run
    # stamps its escalations with the time they happened; the run's start picks the cases.
    live = now is None
    now = now or timezone.now()
    result = SweepResult()
    passed_over: list[int] = []
    while True:
        if result.batches >= max_batches:
            result.more = True
            break
        rows = list(due_cases(now=now).exclude(pk__in=passed_over)
                    .values_list("id", "queue_id", "sla_policy_id", "escalation_level")
                    [:batch_size])
        if not rows:
            break
        result.batches += 1
        shared = Shared(terms=TermsBook(now=now).load_cases(rows),
                        chains=escalation.ChainBook())
        ids = [row[0] for row in rows]
        for start in range(0, len(ids), CHUNK):
            outcome, skipped = _guarded(ids[start:start + CHUNK],
                                        now=timezone.now() if live else now, shared=shared)
            result.add(outcome)
            passed_over += skipped
        if len(rows) < batch_size:
            break
    if result.checked or result.deferred:
        logger.info("SLA sweep at %s: %s", now.isoformat(), result.as_dict())
    return result


def check_case(*, case_id: int, now: datetime | None = None,
               batch_size: int = 500) -> SweepResult:
    """Look at one case now (the nudge), then at one batch of the other cases due by now.

    A burst of cases due at one moment is so swept in chunks by whichever nudges run
    first (several workers share it, ``SKIP LOCKED``), while the burst's other nudges
    wait in the queue; once it is done, each of those costs two queries (its case, and
    the empty range of the index).
    """
    now = now or timezone.now()
    row = (due_cases(now=now).filter(pk=case_id)
           .values_list("id", "queue_id", "sla_policy_id", "escalation_level").first())
    if row is None:
        result = SweepResult(skipped=1)  # done meanwhile, or gone
    else:
        shared = Shared(terms=TermsBook(now=now).load_cases([row]),
                        chains=escalation.ChainBook())
        result = _guarded([case_id], now=now, shared=shared)[0]
    result.add(sweep(now=now, batch_size=batch_size, max_batches=1))
    return result


def helpers_wanted(*, batch_size: int = 500, now: datetime | None = None) -> int:
    """How many more sweeps would share what is due now: one per further batch, at most
    ``MAX_HELPERS`` (one bounded index range read)."""
    due = due_cases(now=now or timezone.now()).values("id")[:batch_size * (MAX_HELPERS + 1)]
    return min(MAX_HELPERS, max(0, (due.count() - 1) // batch_size))


@dataclass
class Shared:
    """What the cases of a batch share, read once: SLA terms, chains and people."""

    terms: TermsBook
    chains: escalation.ChainBook


# --- One chunk ------------------------------------------------------------------------------


def _guarded(case_ids: list[int], *, now: datetime,
             shared: Shared) -> tuple[SweepResult, list[int]]:
    """Handle the cases; answer the outcome and the ids skipped (locked or not due)."""
    try:
        return _check(case_ids, now=now, shared=shared)
    except (OperationalError, InterfaceError):
        raise  # the database is away: not this row's fault; the task retries
    except Exception:
        if len(case_ids) > 1:
            # One row spoiled the chunk, rolled back whole: take its cases one by one.
            result, skipped = SweepResult(), []
            for case_id in case_ids:
                outcome, passed = _guarded([case_id], now=now, shared=shared)
                result.add(outcome)
                skipped += passed
            return result, skipped
        logger.exception("SLA check of case %s failed; it is looked at again in %s.",
                         case_ids[0], POISON_DELAY)
        with transaction.atomic():
            Case.objects.filter(pk=case_ids[0], sla_next_check_at__lte=now).update(
                sla_next_check_at=now + POISON_DELAY)
        return SweepResult(deferred=1), []


def _check(case_ids: list[int], *, now: datetime,
           shared: Shared) -> tuple[SweepResult, list[int]]:
    with transaction.atomic():
        due = (Case.objects.filter(pk__in=case_ids, state__in=RUNNING_STATES,
                                   sla_next_check_at__lte=now)
               .select_related("assignee").order_by("pk"))
        if sla.uses_row_locks():
            due = due.select_for_update(skip_locked=True, of=("self",))
        cases = list(due)
        found = {case.pk for case in cases}
        skipped = [case_id for case_id in case_ids if case_id not in found]
        result = SweepResult(checked=len(cases), skipped=len(skipped))
        if not cases:
            return result, skipped
        book = shared.terms
        # A case may have moved (queue, policy, level) since the batch was read.
        changed = [case for case in cases if case.queue_id not in book.queues
                   or (case.sla_policy_id is not None
                       and case.sla_policy_id not in book.policies)]
        if changed:
            book.load_cases(changed)

        warnings, breaches, moves = [], [], []
        for case in cases:
            rules = book.rules(case)
            # Reached at their instants (``sla.reached``), as the dashboard and page count.
            if (sla.response_running(case) and sla.reached(case.response_warn_at, now)
                    and not sla.reached(case.response_due_at, now)):
                warnings.append((case, SlaClock.RESPONSE, case.response_due_at))
            if (sla.warning_live(case, rules) and sla.reached(case.warn_at, now)
                    and not (sla.deadline_live(case, rules) and sla.reached(case.due_at, now))):
                warnings.append((case, SlaClock.RESOLUTION, case.due_at))
            cause, missed = _breach(case, rules, now=now)
            if cause is None:
                moves.append((case, sla.next_check_at(case, rules, now=now, handled=True)))
            else:
                breaches.append((case, rules, cause, missed))

        writes = escalation.Writes()
        result.warnings = _warn(warnings, now=now, chains=shared.chains, writes=writes)
        for case, rules, cause, missed in breaches:
            won = escalation.escalate(case_id=case.pk, cause=cause, actor=SYSTEM,
                                      expected_level=case.escalation_level, now=now,
                                      reason=_breach_reason(cause, missed),
                                      chains=shared.chains, terms=book, writes=writes)
            if won is not None:
                # ``escalate`` set the level's clock in the same transaction
                # (``sla.on_escalated``): nothing is left to move here.
                result.escalations += 1
                continue
            # Declined: the deadline stays passed; look again rather than forget it.
            logger.warning("Escalation of case %s at level %s was declined; looking again "
                           "in %s.", case.pk, case.escalation_level, RETRY_DELAY)
            next_at = sla.next_check_at(case, rules, now=now, handled=True)
            moves.append((case, min(next_at or now + RETRY_DELAY, now + RETRY_DELAY)))
        _move_next_checks(moves, now=now)
        writes.write()
        return result, skipped


def _breach(case: Case, rules: sla.Rules, *, now: datetime):
    """The clock whose deadline has passed, if any: (cause, the deadline missed)."""
    if sla.response_running(case) and sla.reached(case.response_due_at, now):
        return EscalationCause.RESPONSE_BREACH, case.response_due_at
    if sla.deadline_live(case, rules) and sla.reached(case.due_at, now):
        return EscalationCause.RESOLUTION_BREACH, case.due_at
    return None, None


def _breach_reason(cause: str, missed: datetime) -> str:
    what = ("The first response" if cause == EscalationCause.RESPONSE_BREACH
            else "The resolution")
    return f"{what} was due {missed.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC."


def _move_next_checks(moves: list[tuple[Case, datetime | None]], *, now: datetime) -> None:
    """One UPDATE: each case's next check, only while its version and level are those
    read (a case changed meanwhile keeps what its change set)."""
    if not moves:
        return
    db.set_next_checks([(case.pk, case.version, case.escalation_level, next_at)
                        for case, next_at in moves])
    for case, next_at in moves:
        case.sla_next_check_at = next_at
    sla.nudge([case for case, _ in moves], now=now)


# --- Warnings -------------------------------------------------------------------------------


def _warn(due: list[tuple[Case, str, datetime]], *, now: datetime,
          chains: escalation.ChainBook, writes: escalation.Writes) -> int:
    """Give the warnings not given before; answer how many this call gave.

    One statement whatever their number; their notices and events go to ``writes``.
    """
    if not due:
        return 0
    given = _insert_warnings([(case.pk, clock, case.escalation_level) for case, clock, _ in due],
                             now=now)
    given_now = 0
    for case, clock, due_at in due:
        warning_id = given.get((case.pk, str(clock), case.escalation_level))
        if warning_id is None:
            continue  # given before (a re-run, another sweeper): nothing to tell again
        what = "first response" if clock == SlaClock.RESPONSE else "resolution"
        text = (f"{case.label}: its {what} is "
                f"due {due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC.")
        given_now += 1
        writes.messages += outbox.notices(users=_warning_recipients(case, chains), text=text,
                                  dedup_prefix=f"sla-warning:{warning_id}", case=case,
                                  now=now)
        writes.events.append(audit.build(
            actor=SYSTEM, verb=AuditVerb.CASE_SLA_WARNING, object_type="case",
            object_id=case.pk, case=case, now=now,
            data={"clock": clock, "level": case.escalation_level, "due_at": due_at,
                  "warning": warning_id}))
    return given_now


def _insert_warnings(keys: list[tuple[int, str, int]], *,
                     now: datetime) -> dict[tuple[int, str, int], int]:
    """Insert the warnings not given before, in one statement (I2); answer the new ones'
    ids by (case, clock, level)."""
    created_at = connection.ops.adapt_datetimefield_value(now)
    inserted = db.insert_new(
        SlaWarning, columns=("case_id", "clock", "level", "created_at"),
        rows=[(case_id, str(clock), level, created_at) for case_id, clock, level in keys],
        conflict=("case_id", "clock", "level"), returning=("id", "case_id", "clock", "level"))
    return {(case_id, clock, level): warning_id
            for warning_id, case_id, clock, level in inserted}


def _warning_recipients(case: Case, chains: escalation.ChainBook) -> list:
    """The assignee; an unassigned case's queue members; a queue without members, its
    process's Accountable. Looked up once per queue and batch."""
    if case.assignee_id is not None:
        return [case.assignee]
    queue = chains.queue(case.queue_id)
    return (chains.queue_members(queue)
            or chains.holders_of(queue.process, role=RaciRole.ACCOUNTABLE))
