"""Escalation: a case handed up one level of its process's chain, once (I2).

The SLA sweeper calls ``escalate`` on a breach, a reviewer or manager by hand
(``transitions.escalate``, cause ``manual``); both take the same path:

1. a conditional UPDATE claims the next level: ``WHERE pk = … AND escalation_level =
   expected_level AND state IN (open states)``, bumping the level and the version.
   Of two sweeps, a redelivered task and a person pressing "Escalate" at the same
   moment, exactly one changes the row; the others answer ``None``. On PostgreSQL the
   winner's UPDATE holds the row lock until commit, so the rest of this function works
   on a row nobody else can change meanwhile. The ``Escalation`` row's unique
   ``(case, level)`` backs the claim: even a bug cannot write a level twice;
2. the level's rule (``EscalationLevel``) decides where the case goes:

   - target R, A or named users, without a queue: assigned to the least-loaded
     available holder (an away holder's delegate stands in); nobody available: the
     case waits ``escalated`` in its queue;
   - with a queue: re-queued there, ``escalated``, for the target to claim;
   - a case pending approval keeps its resolution and waits for its approver; only
     the people are told;

   and the case's next deadline is ``now + level.time_limit`` in business time
   (``sla.on_escalated``: ``due_at``, ``warn_at``, ``sla_next_check_at``), so the next
   breach escalates again;
3. the Consulted are asked (``ConsultRequest``, required if the level says so: the
   case cannot resolve before they answer), and the Informed, the target and the
   asked are told through the outbox, exactly once per (escalation, channel, person):
   dedup keys ``escalation:{pk}:{channel}:{user}`` (I5);
4. one audit event ``case.escalated`` (I7).

Past the last level the last level's declared outcome applies, so that no case waits
forever unnoticed:

- ``hold``: assigned to the Accountable owner, with no lease (it does not go back to
  the queue), and the clock stops;
- ``reject`` / ``fallback``: resolved through the resolution path (a ``Resolution``,
  the domain's resolved hooks: the callback and the labelled example), as
  ``rejected`` or as ``accepted`` (the fallback verdict: the AI's own output stands),
  on behalf of the Accountable owner, with reason code ``CHAIN_EXHAUSTED`` and a note
  saying no person decided. Where that is not possible (four-eyes case, a required
  consult unanswered, a case pending approval, no Accountable) it holds for the
  owner instead and says why;
- ``none`` ("wait at this level"): the case stays where it is, the owner and the
  Informed are told, and the clock stops.

A case whose queue has no process, or whose process has no levels, is escalated to
the Accountable (if the process names one) and the managers: it waits ``escalated``
in its queue, they are told, and the audit event says that no chain is configured.
Its clock restarts with the queue's resolution target, so it is raised again if
still nobody acts.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from workflows import actors, db, hooks, selectors
from workflows.models import (
    HAND_UP_STATES,
    MANAGE_CASES,
    OPEN_STATES,
    Activity,
    AuditEvent,
    Case,
    CaseState,
    ConsultRequest,
    Escalation,
    EscalationCause,
    EscalationLevel,
    EscalationOutcome,
    EscalationTarget,
    OutboxMessage,
    Process,
    Queue,
    RaciAssignment,
    RaciRole,
    Resolution,
    User,
    Verdict,
)
from workflows.process_cache import ProcessCache
from workflows.services import (
    assignment,
    audit,
    consults,
    outbox,
    raci,
    resolving,
    sla,
    work_time,
)
from workflows.verbs import AuditVerb

# The reason code of a resolution the chain's last level decided, not a person.
CHAIN_EXHAUSTED = "escalation-exhausted"
# The deadline a breach missed, recorded on its escalation: the case's field.
MISSED = {EscalationCause.RESPONSE_BREACH: "response_due_at",
          EscalationCause.RESOLUTION_BREACH: "due_at"}



@dataclass
class _Plan:
    """What the escalation did, for the audit event and the notices."""

    action: str = ""  # assigned | requeued | waiting | held | resolved | pending_approval
    note: str = ""
    targets: list = field(default_factory=list)
    notify_owner: bool = False
    extra: dict = field(default_factory=dict)


def escalate(*, case_id: int, cause: str, expected_level: int, actor, reason: str = "",
             now: datetime | None = None, expected_version: int | None = None,
             chains: "ChainBook | None" = None, terms: sla.TermsBook | None = None,
             writes: "Writes | None" = None, savepoint: bool = True) -> Escalation | None:
    """Hand the case up from ``expected_level`` to the next level; once (I2).

    Answers the new ``Escalation`` (its ``case`` as the escalation left it, its
    ``consults_asked`` the requests it made), or ``None`` when the case is no longer
    open at ``expected_level`` (someone else escalated it, or it was closed): the caller
    has nothing to do. ``expected_version`` (the manual path) also refuses a case that
    changed since the person saw it. Runs in the caller's transaction if there is one.
    ``chains`` and ``terms``: what a batch of escalations shares, read once (the
    sweeper's); without them, this one takes this process's (``configured_chains``,
    ``sla.book_for``). ``writes``: where a caller that
    escalates many cases in one transaction collects the outbox messages and audit
    events, to write them all at once; without it, they are written here.
    ``savepoint=False``: the caller's transaction is rolled back whole when this one
    declines (the manual path raises a conflict), so a declined level needs no
    savepoint of its own to undo.
    """
    actors.require(actor)
    if cause not in EscalationCause.values:
        raise ValueError(f"Unknown escalation cause {cause!r}; use one of "
                         f"{EscalationCause.values}.")
    now = now or timezone.now()
    chains = chains or configured_chains()
    with transaction.atomic(savepoint=savepoint):
        escalation = Escalation(cause=cause, reason=reason or "", actor=actors.person(actor),
                                created_at=now)
        case = db.claim_case_level_with_escalation(
            case_id=case_id, expected_level=expected_level, states=OPEN_STATES,
            expected_version=expected_version, escalation=escalation,
            due_at_from=MISSED.get(cause))
        if case is None:
            return None
        if escalation.pk is None:
            # The level was written before although the case claims it was not: never
            # double it (I2); undo the claim above with the rest of this change.
            transaction.set_rollback(True)
            return None
        case.queue = chains.queue(case.queue_id)
        claimed = case.field_values()  # what the guard read: every change after it is written
        if actors.person(actor) is not None and case.first_claimed_at is None:
            case.first_claimed_at = now  # escalating by hand is the person's response
        made = Writes()
        _apply(case, escalation, claimed=claimed, chains=chains, terms=terms, writes=made,
               alone=writes is None, now=now)
        if writes is None:
            made.write()
        else:
            writes.add(made)
    return escalation


@dataclass
class Writes:
    """Outbox messages and audit events to write together, one statement each, in the
    transaction of the change that causes them (I5, I7)."""

    messages: list[OutboxMessage] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)
    # A lone escalation's case and the fields it changed, stored in the same statement
    # as its messages and events (``db.update_columns_with_effects``): one round trip.
    case: Case | None = None
    changed: list[str] = field(default_factory=list)

    def add(self, other: "Writes") -> None:
        if other.case is not None:
            raise ValueError("A batch's writes hold no case: each is stored as it goes.")
        self.messages += other.messages
        self.events += other.events

    def write(self) -> None:
        if self.case is None:
            outbox.write(self.messages)
            AuditEvent.objects.bulk_create(self.events)
        else:
            outbox.write(self.messages, inserted=db.update_columns_with_effects(
                self.case, self.changed, messages=self.messages, events=self.events))
        self.messages, self.events, self.case, self.changed = [], [], None, []


class ChainBook:
    """Who and what a run of escalations shares, each read once: queues with their
    processes, the chains' levels and who sends cases where, the RACI holders, the
    managers, the queues' members.

    The sweeper keeps one per batch, so a change to a chain or a matrix counts from the
    next batch on; a single escalation takes this process's (``configured_chains``).
    Nothing a person changes by working is kept: who is away and who holds how many
    cases, each pick reads as they are (``assignment.pick_least_loaded``).
    """

    def __init__(self):
        self._queues: dict[int, Queue] = {}
        self._processes: dict[int, Process] = {}
        self._levels: dict[int, list[EscalationLevel]] = {}
        self._senders: dict[tuple[int, int], Process | None] = {}
        self._holders: dict[int, dict[tuple[str, str], list]] = {}
        self._managers: list | None = None
        self._queue_managers: dict[int, list] = {}
        self._members: dict[int, list] = {}

    def queue(self, queue_id: int) -> Queue:
        if queue_id not in self._queues:
            queue = Queue.objects.select_related("process").get(pk=queue_id)
            self._queues[queue_id] = queue
            if queue.process is not None:
                self._processes.setdefault(queue.process_id, queue.process)
        return self._queues[queue_id]

    def levels(self, process: Process | None) -> list[EscalationLevel]:
        if process is None:
            return []
        if process.pk not in self._levels:
            self._levels[process.pk] = list(EscalationLevel.objects.filter(process=process)
                                            .prefetch_related("users"))
        return self._levels[process.pk]

    def process_of(self, case: Case, level: int) -> Process | None:
        """The process whose chain the case is on.

        Usually its queue's. A case an earlier level re-queued into a shared queue (an
        escalations desk, with another process or none) stays on the chain that sent it
        there: the process of the highest level below this one that re-queues into the
        case's queue, when that is one process.
        """
        key = (case.queue_id, level)
        if key not in self._senders:
            sender = None
            senders = list(EscalationLevel.objects.filter(queue=case.queue_id, level__lt=level)
                           .order_by("-level").values_list("level", "process_id"))
            if senders:
                top = senders[0][0]
                processes = {process_id for number, process_id in senders if number == top}
                if len(processes) == 1:
                    process_id = processes.pop()
                    if process_id not in self._processes:
                        self._processes[process_id] = Process.objects.get(pk=process_id)
                    sender = self._processes[process_id]
            self._senders[key] = sender
        return self._senders[key] or self.queue(case.queue_id).process

    def holders(self, process: Process | None, *, activity: str, role: str) -> list:
        if process is None:
            return []
        if process.pk not in self._holders:
            self._holders[process.pk] = raci.all_holders(process=process)
        return self._holders[process.pk].get((activity, role), [])

    def holders_of(self, process: Process | None, *, role: str) -> list:
        """Like ``raci.holders_of``: the ``escalation`` row first, else ``review``."""
        return (self.holders(process, activity=Activity.ESCALATION, role=role)
                or self.holders(process, activity=Activity.REVIEW, role=role))

    def managers(self, queue: Queue) -> list:
        """Active managers (``workflows.manage_cases``): those who work the queue, else
        all of them."""
        if self._managers is None:
            self._managers = list(_all_managers())
        if queue.pk not in self._queue_managers:
            members = {person.pk for person in self.queue_members(queue)}
            self._queue_managers[queue.pk] = (
                [person for person in self._managers if person.pk in members]
                or self._managers)
        return self._queue_managers[queue.pk]

    def queue_members(self, queue: Queue) -> list:
        if queue.pk not in self._members:
            self._members[queue.pk] = assignment.queue_members(queue=queue)
        return self._members[queue.pk]


# A single escalation (by hand, or a lone sweep) reads the same configuration as the
# last one of its queue: its process, chain, matrix, managers and members (about eight
# queries). Kept in each process (``workflows.process_cache``): any ORM write to what a
# book holds drops it here and, through the shared cache, in every process (where it is
# shared, a book is kept for a minute; else for the short TTL); the matrix's
# ``bulk_create`` says so itself (``forget_chains``). Loads and availability are never
# in it.
_chains = ProcessCache("escalation-chains", shared_ttl=60.0)
_chains.watch(Queue, Process, EscalationLevel, RaciAssignment, Group, Permission,
              through=(EscalationLevel.users.through, Queue.members.through,
                       Queue.member_groups.through, User.groups.through,
                       User.user_permissions.through, Group.permissions.through))


def _person_changed(*, update_fields=None, **kwargs) -> None:
    # A person's name, activity or superuser flag is in the book; signing in (which
    # saves ``last_login`` alone) changes none of it.
    if update_fields is None or set(update_fields) - {"last_login"}:
        _chains.forget()


post_save.connect(_person_changed, sender=User, weak=False,
                  dispatch_uid="escalation-chains-person")
post_delete.connect(_chains.forget, sender=User, weak=False,
                    dispatch_uid="escalation-chains-person-gone")


def configured_chains() -> ChainBook:
    """This process's book of the chains' configuration, fresh per ``_chains``."""
    book = _chains.lookup(["book"]).get("book")
    if book is None:
        book = ChainBook()
        _chains.store("book", book)
    return book


def forget_chains() -> None:
    """For writes the cache's signals do not see (``bulk_create``, ``QuerySet.update``)."""
    _chains.forget()


# -- where the case goes ----------------------------------------------------------------

def _apply(case: Case, escalation: Escalation, *, claimed: dict, chains: ChainBook,
           terms: sla.TermsBook | None, writes: Writes, alone: bool, now: datetime) -> None:
    before = {"state": case.state, "queue": case.queue.slug, "assignee": case.assignee_id}
    process = chains.process_of(case, escalation.level)
    levels = chains.levels(process)
    config = _level_config(levels, escalation.level)
    resolution = None
    if not levels:
        plan = _no_chain(case, process, chains, now=now)
        time_limit = case.queue.resolution_target
    elif config is None:
        plan, resolution = _past_last(case, process, levels[-1], chains, now=now)
        time_limit = None
    else:
        plan = _hand_up(case, process, config, chains, now=now)
        time_limit = config.time_limit
    _restart_clock(case, time_limit=time_limit, terms=terms, now=now)
    changed = [name for name in case.changed_since(claimed) if name != "version"]
    if alone and resolution is None:
        writes.case, writes.changed = case, changed
    else:
        # Stored now: in a batch, the next escalation's pick counts this hand-off; a
        # resolution's hooks (below) run on the case as stored.
        _write(case, changed)
    asked = []
    if config is not None and config.consult and case.state in OPEN_STATES:
        asked = consults.ask(case=case, escalation=escalation, required=config.consult_required,
                             consultees=chains.holders_of(process, role=RaciRole.CONSULTED),
                             now=now)
    escalation.consults_asked = asked
    informed = _tell(case, process, escalation, config, plan, asked, chains, writes, now=now)
    event_data = {
        "from": before["state"], "to": case.state, "version": case.version,
        "reason": escalation.reason, "level": escalation.level, "cause": escalation.cause,
        "escalation": escalation.pk, "assignee": before["assignee"],
        "action": plan.action, "to_assignee": case.assignee_id,
        "from_queue": before["queue"], "to_queue": case.queue.slug,
        "due_at": case.due_at, "consulted": [c.consultee_id for c in asked],
        "informed": informed, **plan.extra}
    if plan.note:
        event_data["note"] = plan.note
    writes.events.append(audit.build(
        actor=escalation.actor or actors.SYSTEM, verb=AuditVerb.CASE_ESCALATED, object_type="case",
        object_id=case.pk, case=case, now=now, data=event_data))
    if resolution is not None:
        _resolved(case, resolution, escalation, writes, now=now)


def _level_config(levels: list[EscalationLevel], number: int) -> EscalationLevel | None:
    """The rule for ``number``; a gap in the numbering repeats the level below it."""
    if not levels or number > levels[-1].level:
        return None
    below = [level for level in levels if level.level <= number]
    return below[-1] if below else levels[0]


def _target_people(process: Process | None, config: EscalationLevel, chains: ChainBook) -> list:
    if config.target == EscalationTarget.RESPONSIBLE:
        return chains.holders(process, activity=Activity.REVIEW, role=RaciRole.RESPONSIBLE)
    if config.target == EscalationTarget.USERS:
        return [user for user in config.users.all() if user.is_active]
    return _owners(process, chains)


def _owners(process: Process | None, chains: ChainBook) -> list:
    """The Accountable: for escalation if the matrix names one there, else for review."""
    return chains.holders_of(process, role=RaciRole.ACCOUNTABLE)


def _hand_up_state(case: Case, *, now: datetime) -> bool:
    """``escalated``, nobody's (the model's transition); False if pending approval."""
    if case.state not in HAND_UP_STATES:
        return False
    work_time.end_stint(case, now)
    level = case.escalation_level
    case.escalate()
    # The conditional update already claimed this level; the transition's own
    # ``+= 1`` must not count it twice.
    case.escalation_level = level
    case.waiting_since = None
    return True


def _hand_up(case: Case, process: Process | None, config: EscalationLevel,
             chains: ChainBook, *, now: datetime) -> _Plan:
    targets = _target_people(process, config, chains)
    plan = _Plan(targets=targets, extra={"target": config.target})
    previous = case.assignee_id
    if not _hand_up_state(case, now=now):
        plan.action = "pending_approval"
        plan.note = "The resolution waits for its approver; the target is told."
        return plan
    if config.queue_id is not None:
        case.queue = config.queue
        plan.action = "requeued"
        workers = ({person.pk for person in chains.queue_members(config.queue)}
                   if targets else set())
        if targets and not any(person.pk in workers or selectors.is_manager(person)
                               for person in targets):
            # A configuration gap, said where a manager will read it; they are still told.
            plan.note = (f"None of the level's target people works '{config.queue.name}': "
                         "add them to it so that they can claim the case.")
        return plan
    # The case is handed *up*: whoever just held it is the last choice among the targets.
    person = assignment.pick_least_loaded(
        [p for p in targets if p.pk != previous] or targets)
    if person is None:
        plan.action = "waiting"
        plan.note = ("Nobody of the level's target is available: the case waits "
                     f"escalated in '{case.queue.name}'; managers are told.")
        plan.targets = [*targets, *chains.managers(case.queue)]
        return plan
    case.reassign(to=person, until=now + case.queue.lease_time)
    work_time.start_stint(case, now)
    plan.action = "assigned"
    return plan


def _no_chain(case: Case, process: Process | None, chains: ChainBook, *,
              now: datetime) -> _Plan:
    owners = _owners(process, chains)
    plan = _Plan(targets=_unique([*owners, *chains.managers(case.queue)]),
                 note=("No escalation chain is configured for this queue's process: "
                       "escalated to the Accountable and the managers.")
                 if process is not None else
                 ("The queue has no process, so no escalation chain: escalated to the "
                  "managers."))
    plan.action = "requeued" if _hand_up_state(case, now=now) else "pending_approval"
    return plan


def _past_last(case: Case, process: Process | None, last: EscalationLevel,
               chains: ChainBook, *, now: datetime):
    """The last level's time ran out too: its declared outcome. Answers (plan, resolution)."""
    outcome = last.outcome
    owners = _owners(process, chains)
    owner = assignment.pick_least_loaded(owners) or (owners[0] if owners else None)
    plan = _Plan(targets=[owner] if owner else [], notify_owner=True,
                 extra={"outcome": outcome, "chain_ended": True})
    if outcome == EscalationOutcome.NONE:
        plan.action = "waiting"
        plan.note = ("The chain has ended and its last level waits: the case stays where "
                     "it is; the owner and the Informed are told.")
        plan.targets = owners or chains.managers(case.queue)
        return plan, None
    if outcome in (EscalationOutcome.REJECT, EscalationOutcome.FALLBACK):
        verdict = (Verdict.REJECTED if outcome == EscalationOutcome.REJECT
                   else Verdict.ACCEPTED)
        refusal = _cannot_resolve(case, owner)
        if refusal is None:
            return plan, _resolve_for_owner(case, owner, verdict, plan, now=now)
        plan.note = f"Could not resolve as {verdict}: {refusal} Held for the owner instead."
    return _hold(case, owner, plan, chains, now=now), None


def _hold(case: Case, owner, plan: _Plan, chains: ChainBook, *, now: datetime) -> _Plan:
    if case.state == CaseState.PENDING_APPROVAL:
        plan.action = "pending_approval"
        plan.note = (plan.note + " " if plan.note else "") + (
            "The resolution waits for its approver; the owner is told.")
        return plan
    if owner is None:
        _hand_up_state(case, now=now)
        plan.action = "waiting"
        plan.targets = chains.managers(case.queue)
        plan.note = (plan.note + " " if plan.note else "") + (
            "The process names no Accountable owner: the case waits escalated in its "
            "queue; managers are told.")
        return plan
    work_time.end_stint(case, now)
    # Held, not leased: the owner keeps it until they act (no lease expiry).
    case.reassign(to=owner, until=None)
    case.waiting_since = None
    work_time.start_stint(case, now)
    plan.action = "held"
    return plan


def _cannot_resolve(case: Case, owner) -> str | None:
    if owner is None:
        return "the process names no Accountable owner to resolve on behalf of."
    if case.state == CaseState.PENDING_APPROVAL:
        return "a resolution already waits for approval."
    if case.requires_four_eyes:
        return "the case needs four eyes, and no person has looked at it."
    if consults.unanswered_required(case=case).exists():
        return "a required consult is still unanswered."
    return None


def _resolve_for_owner(case: Case, owner, verdict: str, plan: _Plan, *,
                       now: datetime) -> Resolution:
    work_time.end_stint(case, now)
    if case.state != CaseState.ASSIGNED or case.assignee_id != owner.pk:
        case.reassign(to=owner, until=None)
    case.waiting_since = None
    case.resolve(by=owner)
    case.closed_at = now
    plan.action = "resolved"
    plan.extra["verdict"] = verdict
    plan.note = (f"The chain has ended: resolved as {verdict} by the process's declared "
                 "outcome, on behalf of the Accountable owner. No person decided.")
    return resolving.store_resolution(case=case, verdict=verdict, output=None,
                                      reason_code=CHAIN_EXHAUSTED, notes=plan.note,
                                      resolved_by=owner, now=now)


def _resolved(case: Case, resolution: Resolution, escalation: Escalation,
              writes: Writes, *, now: datetime) -> None:
    # The system decided, on the owner's behalf: the same event as a person's resolution.
    writes.events.append(resolving.resolution_event(
        case=case, resolution=resolution, actor=actors.SYSTEM, before=CaseState.ASSIGNED,
        now=now, on_behalf_of=resolution.resolved_by_id, escalation=escalation.pk))
    hooks.case_resolved(case=case, resolution=resolution)


# -- clocks, stints, the write ------------------------------------------------------------

def _restart_clock(case: Case, *, time_limit: timedelta | None,
                   terms: sla.TermsBook | None, now: datetime) -> None:
    """The level's deadline becomes the case's, in business time on the case's SLA
    calendar (``sla.on_escalated``); ``None``: the chain ended, the clock stops."""
    if case.state not in OPEN_STATES or time_limit is None:
        case.warn_at = None
        case.sla_remaining = None
        case.sla_next_check_at = None
        return
    # Loads only what the book lacks (a queue the level re-queued into): no query else.
    # Without a batch's book, the case's terms from this process's cache.
    terms = (terms.load_cases([case], levels=False) if terms is not None
             else sla.book_for(case, now=now))
    sla.on_escalated(case, time_limit=time_limit, now=now,
                     rules=sla.Rules(terms=terms.terms(queue_id=case.queue_id,
                                                       policy_id=case.sla_policy_id,
                                                       priority=case.priority)))




def _write(case: Case, changed: list[str]) -> None:
    """Store, in one UPDATE, the ``changed`` fields: every field changed since the guard
    claimed (and, on PostgreSQL, locked) the row, so whatever field an escalation comes
    to change is saved.

    The guard's UPDATE already bumped the version: an escalation is one change. A plain
    statement (``db.update_columns``): the ORM's ``update`` cost more to build than to run.
    """
    if changed:
        db.update_columns(case, changed)


# -- the Consulted and the Informed ---------------------------------------------------------

def _tell(case: Case, process: Process | None, escalation: Escalation,
          config: EscalationLevel | None, plan: _Plan, requests: list[ConsultRequest],
          chains: ChainBook, writes: Writes, *, now: datetime) -> list[int]:
    """One notice per person and channel, all in one statement; answers the Informed's
    ids."""
    notify_informed = config.notify_informed if config is not None else True
    informed = (chains.holders_of(process, role=RaciRole.INFORMED)
                if notify_informed else [])
    asked = {consult.consultee_id for consult in requests}
    assignee = case.assignee if case.assignee_id else None
    # The person who escalated by hand knows; everyone else hears once.
    told = [person for person in _unique([*([assignee] if assignee else []),
                                          *plan.targets, *informed])
            if person.pk not in asked and person.pk != escalation.actor_id]
    prefix = f"escalation:{escalation.pk}"
    where = (f"assigned to {assignee.display_name}" if assignee
             else f"waiting in {case.queue.name}")
    headline = (f"{case.label} escalated to level {escalation.level} "
                f"({escalation.get_cause_display().lower()}): {where}.")
    if plan.action == "resolved":
        headline = (f"{case.label}: the escalation chain ended; resolved as "
                    f"{plan.extra.get('verdict')} on behalf of the owner.")
    body = "\n\n".join(part for part in (headline, escalation.reason, plan.note) if part)
    messages = outbox.notices(users=told, text=body, dedup_prefix=prefix, case=case, now=now)
    if requests:
        ask = (f"Your input is asked on {case.label}, escalated to level "
               f"{escalation.level}." + (" The case cannot be resolved before you answer."
                                        if requests[0].required else ""))
        messages += outbox.notices(users=[consult.consultee for consult in requests],
                                   text="\n\n".join([ask, requests[0].question]),
                                   dedup_prefix=prefix, case=case, now=now)
    writes.messages += messages
    return [person.pk for person in informed]


def _all_managers():
    """Active managers (``workflows.manage_cases``, directly, through a group, or
    superusers), by username. One query."""
    User = get_user_model()
    app_label, codename = MANAGE_CASES.split(".")
    permission = Permission.objects.filter(codename=codename,
                                           content_type__app_label=app_label)
    return User.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(user_permissions__in=permission)
        | Q(groups__permissions__in=permission)).distinct().order_by(User.USERNAME_FIELD)


def _unique(people) -> list:
    seen, unique = set(), []
    for person in people:
        if person is not None and person.pk not in seen:
            seen.add(person.pk)
            unique.append(person)
    return unique

