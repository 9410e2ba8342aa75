"""The SLA sweeper: warnings and breaches that have come due, each acted on once (I2, I6).

The database is the truth: a case's ``sla_next_check_at`` says when it must next be
looked at. ``sweep`` (beat, every ``SLA_SWEEP_INTERVAL``) reads the due ones through the
partial index ``case_sla_check_idx`` in bounded batches; ``check_case`` (the short-ETA
nudge) looks at one. Both take the same per-case step, in one transaction:

1. re-read and lock the case, if it is still open and due (PostgreSQL: ``FOR UPDATE SKIP
   LOCKED``: a second sweeper skips the row rather than wait for it; SQLite serializes
   writers anyway);
2. a warning that has come due is an ``SlaWarning`` row inserted with ``ON CONFLICT DO
   NOTHING`` on its unique ``(case, clock, level)``: only the inserter notifies, through
   the outbox in the same transaction (I5);
3. a deadline that has passed calls ``escalation.escalate`` with the level read: its
   conditional update and the unique ``(case, level)`` escalation row let exactly one
   caller win, and it sets the next level's clock (``sla.on_escalated``) in this same
   transaction, so a crash can never leave a new level with the old deadline;
4. ``sla_next_check_at`` moves to the next instant still ahead, by an UPDATE that holds
   only while the version and level are still those read.

So two sweeps at once, a sweep run twice, a redelivered nudge or a restarted broker give
one warning and one escalation per (case, level). The sweeper does not bump the case's
version when it only moves the next check: a reviewer's save in between is not refused
(409) for it, and if that save writes back an older next check, the case is simply looked
at again, which changes nothing.

A poison row (one whose handling raises) is pushed ``POISON_DELAY`` ahead in its own
transaction and logged, so that it cannot stop the others or crash-loop the sweeper.
Database outages are not poison: they propagate, and the task retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from workflows.models import Case, EscalationCause, RaciRole, SlaClock, SlaWarning
from workflows.services import audit, escalation, outbox, raci, sla
from workflows.services.sla import RUNNING_STATES, TermsBook

logger = logging.getLogger("backstop.sla")

POISON_DELAY = timedelta(minutes=5)
# A breach the escalation service declined (it answered None while the case still sat
# at the level read) is looked at again after this long, never dropped.
RETRY_DELAY = timedelta(minutes=5)
MAX_BATCHES = 20


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

    A fixed number of queries per batch to read it and its terms, then a bounded number
    per due case: the work grows with the cases due, never with the cases open.
    """
    # Live (no ``now`` given), each case is acted on at its own moment, so that a long run
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
        book = TermsBook(now=now).load_cases(rows)
        for row in rows:
            outcome = _guarded(row[0], now=timezone.now() if live else now, book=book)
            result.add(outcome)
            if outcome.skipped:
                passed_over.append(row[0])
        if len(rows) < batch_size:
            break
    if result.checked or result.deferred:
        logger.info("SLA sweep at %s: %s", now.isoformat(), result.as_dict())
    return result


def check_case(*, case_id: int, now: datetime | None = None) -> SweepResult:
    """Look at one case now (the nudge); nothing when it is not due (any more)."""
    now = now or timezone.now()
    result = SweepResult()
    row = (Case.objects.filter(pk=case_id)
           .values_list("id", "queue_id", "sla_policy_id", "escalation_level").first())
    if row is not None:
        result.add(_guarded(case_id, now=now, book=TermsBook(now=now).load_cases([row])))
    return result


# --- One case -------------------------------------------------------------------------------


def _guarded(case_id: int, *, now: datetime, book: TermsBook) -> SweepResult:
    try:
        return _check(case_id, now=now, book=book)
    except (OperationalError, InterfaceError):
        raise  # the database is away: not this row's fault; the task retries
    except Exception:
        logger.exception("SLA check of case %s failed; it is looked at again in %s.",
                         case_id, POISON_DELAY)
        with transaction.atomic():
            Case.objects.filter(pk=case_id, sla_next_check_at__lte=now).update(
                sla_next_check_at=now + POISON_DELAY)
        return SweepResult(deferred=1)


def _check(case_id: int, *, now: datetime, book: TermsBook) -> SweepResult:
    with transaction.atomic():
        due = Case.objects.filter(pk=case_id, state__in=RUNNING_STATES,
                                  sla_next_check_at__lte=now).select_related("queue")
        if sla.uses_row_locks():
            due = due.select_for_update(skip_locked=True, of=("self",))
        case = due.first()
        if case is None:
            return SweepResult(skipped=1)
        result = SweepResult(checked=1)
        rules = book.rules(case)

        if (sla.response_running(case) and case.response_warn_at is not None
                and case.response_warn_at <= now < case.response_due_at):
            result.warnings += _warn(case, SlaClock.RESPONSE, due=case.response_due_at,
                                     now=now, book=book)
        if (sla.warning_live(case, rules) and case.warn_at <= now
                and not (sla.deadline_live(case, rules) and case.due_at <= now)):
            result.warnings += _warn(case, SlaClock.RESOLUTION, due=case.due_at, now=now,
                                     book=book)

        cause, missed = _breach(case, rules, now=now)
        if cause is not None:
            won = escalation.escalate(case_id=case.pk, cause=cause,
                                      expected_level=case.escalation_level, now=now,
                                      reason=_breach_reason(cause, missed))
            if won is not None:
                # ``escalate`` set the level's clock in the same transaction
                # (``sla.on_escalated``): nothing is left to move here.
                result.escalations = 1
                return result

        next_at = sla.next_check_at(case, rules, now=now, handled=True)
        if cause is not None:
            # Declined: the deadline stays passed; look again rather than forget it.
            logger.warning("Escalation of case %s at level %s was declined; looking again "
                           "in %s.", case.pk, case.escalation_level, RETRY_DELAY)
            next_at = min(next_at or now + RETRY_DELAY, now + RETRY_DELAY)
        advanced = (Case.objects.filter(pk=case.pk, version=case.version,
                                        escalation_level=case.escalation_level)
                    .update(sla_next_check_at=next_at))
        if advanced:
            case.sla_next_check_at = next_at
            sla.nudge([case], now=now)
        return result


def _breach(case: Case, rules: sla.Rules, *, now: datetime):
    """The clock whose deadline has passed, if any: (cause, the deadline missed)."""
    if sla.response_running(case) and case.response_due_at <= now:
        return EscalationCause.RESPONSE_BREACH, case.response_due_at
    if sla.deadline_live(case, rules) and case.due_at <= now:
        return EscalationCause.RESOLUTION_BREACH, case.due_at
    return None, None


def _breach_reason(cause: str, missed: datetime) -> str:
    what = ("The first response" if cause == EscalationCause.RESPONSE_BREACH
            else "The resolution")
    return f"{what} was due {missed.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC."


# --- Warnings -------------------------------------------------------------------------------


def _warn(case: Case, clock: str, *, due: datetime, now: datetime, book: TermsBook) -> int:
    """Give the warning once (answer 1), or find it given (answer 0)."""
    warning_id = _insert_warning(case_id=case.pk, clock=clock, level=case.escalation_level,
                                 now=now)
    if warning_id is None:
        return 0
    what = "first response" if clock == SlaClock.RESPONSE else "resolution"
    text = (f"Case {case.pk}{f' ({case.title})' if case.title else ''}: its {what} is due "
            f"{due.astimezone(UTC):%Y-%m-%d %H:%M} UTC.")
    outbox.notify_users(users=_warning_recipients(case, book), text=text,
                        dedup_prefix=f"sla-warning:{warning_id}", case=case, now=now)
    audit.record(actor_label="system", verb="case.sla_warning", object_type="case",
                 object_id=case.pk, case=case, now=now,
                 data={"clock": clock, "level": case.escalation_level, "due_at": due,
                       "warning": warning_id})
    return 1


def _insert_warning(*, case_id: int, clock: str, level: int, now: datetime) -> int | None:
    """The new warning's id, or None when it was given before (one statement, I2)."""
    table = connection.ops.quote_name(SlaWarning._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (case_id, clock, level, created_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (case_id, clock, level) DO NOTHING RETURNING id",
            [case_id, str(clock), level, connection.ops.adapt_datetimefield_value(now)])
        row = cursor.fetchone()
    return row[0] if row else None


def _warning_recipients(case: Case, book: TermsBook) -> list:
    """The assignee; an unassigned case's queue members; a queue without members, its
    process's Accountable. Looked up once per queue and batch."""
    if case.assignee_id is not None:
        return [case.assignee]
    cache = book.extras.setdefault("warning_recipients", {})
    if case.queue_id not in cache:
        User = get_user_model()
        people = list(User.objects.filter(is_active=True)
                      .filter(Q(review_queues=case.queue_id)
                              | Q(groups__review_queues=case.queue_id))
                      .distinct().order_by(User.USERNAME_FIELD))
        if not people and case.queue.process_id is not None:
            people = raci.holders_of(process=case.queue.process, role=RaciRole.ACCOUNTABLE)
        cache[case.queue_id] = people
    return cache[case.queue_id]
