"""Who gets the work: push assignment, availability, and away with a delegate.

Queues pull by default: reviewers take the next case (``claiming.claim_next``). A
queue in ``round_robin`` or ``least_loaded`` mode pushes each new case to one of its
members instead, among those who

- are the Responsible for ``review`` in the process's RACI matrix, where it names any
  (otherwise every member is a candidate);
- are available (``ReviewerStatus``; no row means available);
- hold fewer than the queue's ``max_open_per_reviewer`` open assignments (assigned or
  waiting, in any queue: it is the person's load that is capped).

A push is a claim made on the reviewer's behalf: the same transition, lease and
"first response" as when they take it themselves, audited as ``case.assigned``. When
everybody is at the cap the case simply waits in the queue for a claim.

A reviewer who goes away hands their open work to a delegate, or back to the queue;
each case moved is audited.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import dateformat, timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from workflows import db, selectors
from workflows.actors import SYSTEM
from workflows.models import (
    HELD_STATES,
    MANAGE_CASES,
    Activity,
    AssignmentMode,
    AuditEvent,
    Case,
    CaseState,
    Queue,
    RaciRole,
    ReviewerStatus,
)
from workflows.services import audit, raci, transitions, work_time
from workflows.services.errors import CaseConflict, ReviewerAway
from workflows.verbs import AuditVerb

PUSH_MODES = (AssignmentMode.ROUND_ROBIN, AssignmentMode.LEAST_LOADED)


# -- load and availability ------------------------------------------------------------------

def open_loads(user_ids: Iterable[int]) -> dict[int, int]:
    """How many open assignments each person holds (``case_assignee_idx``). One query."""
    user_ids = list(user_ids)
    loads = dict.fromkeys(user_ids, 0)
    if user_ids:
        for row in (Case.objects.filter(assignee__in=user_ids, state__in=HELD_STATES)
                    .values("assignee").order_by().annotate(n=Count("id"))):
            loads[row["assignee"]] = row["n"]
    return loads


def statuses(user_ids: Iterable[int]) -> dict[int, ReviewerStatus]:
    return {status.user_id: status for status in
            ReviewerStatus.objects.filter(user__in=list(user_ids)).select_related("delegate")}


def is_available(user) -> bool:
    status = statuses([user.pk]).get(user.pk)
    return status is None or status.available


def refuse_if_away(*, user) -> None:
    """Away means away: a person marked away takes no case, by claim-next or by picking
    one, until they mark themselves available (``ReviewerAway``, answered 409).

    Call it inside the claim's transaction: it locks the person's status row, so a
    ``set_away`` running meanwhile waits for the claim to commit and then hands that
    case over with the rest of their work. One query.
    """
    status = (ReviewerStatus.objects.select_for_update().filter(user=user.pk)
              .values("available", "away_since").first())
    if status is None or status["available"]:
        return
    since = status["away_since"]
    # In the zone the request activated: the person's own on pages, UTC on the API.
    when = f" since {dateformat.format(timezone.localtime(since), 'M j, H:i T')}" if since else ""
    raise ReviewerAway(f"You are marked away{when}: mark yourself available to take cases.",
                       away_since=since)


def pick_least_loaded(people: Iterable) -> object | None:
    """The available person with the fewest open assignments, or None.

    An away person's delegate stands in for them when the delegate is active and
    available. Ties go to the first in the given order. One query when nobody is away,
    up to four else.
    """
    people = _unique(people)
    if not people:
        return None
    facts = db.availability_and_loads([person.pk for person in people], states=HELD_STATES)
    if all(facts.get(person.pk, (None, 0))[0] is not False for person in people):
        # Nobody is away (the usual case): who is available and their loads, in one
        # statement. Someone away: their delegate's status and load are read below.
        return min(people, key=lambda person: facts.get(person.pk, (None, 0))[1])
    known = statuses(person.pk for person in people)
    delegates = [known[p.pk].delegate for p in people
                 if p.pk in known and not known[p.pk].available and known[p.pk].delegate_id]
    known.update(statuses(d.pk for d in delegates if d.pk not in known))
    candidates = []
    for person in people:
        status = known.get(person.pk)
        if status is None or status.available:
            candidates.append(person)
        elif status.delegate_id and status.delegate.is_active:
            stand_in = known.get(status.delegate_id)
            if stand_in is None or stand_in.available:
                candidates.append(status.delegate)
    candidates = _unique(candidates)
    if not candidates:
        return None
    loads = open_loads(person.pk for person in candidates)
    return min(candidates, key=lambda person: loads[person.pk])


# -- push assignment ------------------------------------------------------------------------

def push_assign(*, case_ids: list[int], now: datetime | None = None) -> int:
    """Give each open case of a push queue to one member; answer how many were given.

    Pull queues are untouched. Runs in the caller's transaction (intake's): the
    queues are locked while their cases are handed out, so the round-robin pointer
    and the caps hold under concurrent intake. A fixed number of queries per queue,
    plus one UPDATE per case given.
    """
    now = now or timezone.now()
    if not case_ids:
        return 0
    with transaction.atomic():
        cases = list(Case.objects.filter(pk__in=list(case_ids), state=CaseState.OPEN,
                                          queue__assignment_mode__in=PUSH_MODES)
                     .order_by(*selectors.URGENCY_ORDER))
        if not cases:
            return 0
        by_queue: dict[int, list[Case]] = defaultdict(list)
        for case in cases:
            by_queue[case.queue_id].append(case)
        queues = {queue.pk: queue for queue in Queue.objects.select_for_update(of=("self",))
                  .select_related("process").filter(pk__in=list(by_queue)).order_by("pk")}
        events = []
        for queue_id, queue_cases in by_queue.items():
            events += _push_queue(queues[queue_id], queue_cases, now=now)
        AuditEvent.objects.bulk_create(events)
    return len(events)


def _push_queue(queue: Queue, cases: list[Case], *, now: datetime) -> list[AuditEvent]:
    candidates = push_candidates(queue=queue)
    if not candidates:
        return []
    loads = open_loads(person.pk for person in candidates)
    last_pushed = queue.last_pushed_to_id
    events = []
    for case in cases:
        person = _next_reviewer(queue, candidates, loads, last_pushed)
        if person is None:
            break  # everybody is at the cap: the rest wait in the queue for a claim
        case.queue = queue
        before = case.state
        case.claim(by=person, until=now + queue.lease_time)
        work_time.start_stint(case, now)  # not a first response: the person has not acted yet
        try:
            with transaction.atomic():
                case.save()
        except ConcurrentTransition:
            continue  # claimed by someone meanwhile
        loads[person.pk] += 1
        last_pushed = person.pk
        events.append(audit.build(
            verb=AuditVerb.CASE_ASSIGNED, object_type="case", object_id=case.pk, case=case,
            actor=SYSTEM, now=now,
            data={"from": before, "to": case.state, "version": case.version,
                  "assignee": person.pk, "strategy": queue.assignment_mode,
                  "load": loads[person.pk], "lease_expires_at": case.lease_expires_at}))
    if last_pushed != queue.last_pushed_to_id:
        Queue.objects.filter(pk=queue.pk).update(last_pushed_to=last_pushed)
        queue.last_pushed_to_id = last_pushed
    return events


def queue_members(*, queue: Queue) -> list:
    """The active people who work the queue, directly or through a group; by id."""
    return list(selectors.queue_workers(queue_id=queue.pk).order_by("pk"))


def push_candidates(*, queue: Queue) -> list:
    """Members of the queue who may be pushed work: active, available, and the
    Responsible for review where the process names any. Ordered by id."""
    members = queue_members(queue=queue)
    if queue.process_id is not None:
        responsible = {person.pk for person in raci.holders(
            process=queue.process, activity=Activity.REVIEW, role=RaciRole.RESPONSIBLE)}
        if responsible:
            members = [person for person in members if person.pk in responsible]
    away = {status.user_id for status in
            ReviewerStatus.objects.filter(user__in=[m.pk for m in members], available=False)}
    return [person for person in members if person.pk not in away]


def _next_reviewer(queue: Queue, candidates: list, loads: dict[int, int],
                   last_pushed: int | None):
    # Start after whoever got the last case, so ties rotate fairly in both modes.
    ids = [person.pk for person in candidates]
    start = ids.index(last_pushed) + 1 if last_pushed in ids else 0
    rotation = candidates[start:] + candidates[:start]
    open_to_more = [p for p in rotation if loads[p.pk] < queue.max_open_per_reviewer]
    if not open_to_more:
        return None
    if queue.assignment_mode == AssignmentMode.LEAST_LOADED:
        return min(open_to_more, key=lambda person: loads[person.pk])
    return open_to_more[0]


# -- the queue's mode -----------------------------------------------------------------------

def set_assignment_mode(*, queue: Queue, assignment_mode: str,
                        max_open_per_reviewer: int | None = None, actor,
                        now: datetime | None = None) -> Queue:
    """A manager chooses how the queue hands out new cases; audited with before/after.

    ``assignment_mode``: pull (reviewers claim), or push by round-robin or to the least loaded;
    ``max_open_per_reviewer`` (kept when None) caps what push gives one person. Cases
    already waiting stay where they are: the mode applies to cases opened from now on.
    Setting what is already set writes nothing.
    """
    now = now or timezone.now()
    if not selectors.is_manager(actor):
        raise PermissionDenied("Only managers may change how a queue assigns its cases.")
    errors = {}
    if assignment_mode not in AssignmentMode.values:
        errors["assignment_mode"] = [
            f"'{assignment_mode}' is not an assignment mode; choose one of "
            f"{', '.join(AssignmentMode.values)}."]
    if max_open_per_reviewer is not None and not 1 <= max_open_per_reviewer <= 32767:
        errors["max_open_per_reviewer"] = [
            "Give a whole number of open cases per reviewer, at least 1."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # Push assignment locks the queue too: a change waits for a running hand-out.
        queue = Queue.objects.select_for_update().get(pk=queue.pk)
        before = {"mode": queue.assignment_mode,
                  "max_open_per_reviewer": queue.max_open_per_reviewer}
        after = {"mode": assignment_mode, "max_open_per_reviewer": (
            before["max_open_per_reviewer"] if max_open_per_reviewer is None
            else max_open_per_reviewer)}
        if before == after:
            return queue
        queue.assignment_mode = after["mode"]
        queue.max_open_per_reviewer = after["max_open_per_reviewer"]
        queue.save(update_fields=["assignment_mode", "max_open_per_reviewer"])
        audit.record(actor=actor, verb=AuditVerb.QUEUE_ASSIGNMENT_CHANGED, object_type="queue",
                     object_id=queue.pk, now=now,
                     data={"queue": queue.slug, "before": before, "after": after})
    return queue


# -- away and back --------------------------------------------------------------------------

def _may_change_status(*, user, actor) -> None:
    if actor is None or not actor.is_authenticated:
        raise PermissionDenied("Sign in to change availability.")
    if actor.pk != user.pk and not selectors.is_manager(actor):
        raise PermissionDenied("Only the reviewer themself or a manager can change "
                               "their availability.")


def delegate_choices(*, user) -> list:
    """Who may take over ``user``'s open work: the active people, other than them, who
    may work at least one of their queues (the queues they work and those of the cases
    they hold); by username. Managers work every queue, as for reassignment."""
    User = get_user_model()
    queues = Queue.objects.filter(pk__in=_queue_ids_of(user)).order_by("pk")
    people = [person for queue in queues for person in queue_members(queue=queue)]
    if queues:
        people += User.objects.with_perm(MANAGE_CASES, is_active=True)
    people = [person for person in _unique(people) if person.pk != user.pk]
    return sorted(people, key=lambda person: person.get_username())


def _queue_ids_of(user) -> set[int]:
    held = Case.objects.filter(assignee=user, state__in=HELD_STATES).values_list(
        "queue_id", flat=True)
    return (set(selectors.member_queues(user=user).values_list("pk", flat=True))
            | set(held))


def _check_delegate(*, user, delegate) -> None:
    if delegate.pk == user.pk:
        raise ValidationError({"delegate": ["Choose someone else to take over."]})
    if not delegate.is_active:
        raise ValidationError({"delegate": [
            f"{delegate.get_username()} is deactivated; choose an active colleague."]})
    # The same rule as reassignment (I8): a delegate who works none of the person's
    # queues would be handed cases they may not even see.
    if not selectors.member_queues(user=delegate).filter(pk__in=_queue_ids_of(user)).exists():
        raise ValidationError({"delegate": [
            f"{delegate.get_username()} works none of {user.get_username()}'s queues; "
            "choose a colleague from the same queue."]})
    if not is_available(delegate):
        raise ValidationError({"delegate": [
            f"{delegate.get_username()} is away too; choose someone available."]})


def set_away(*, user, delegate=None, actor, now: datetime | None = None) -> int:
    """Mark the reviewer away; hand their open work to ``delegate`` or back to the queue.

    The delegate must work at least one of the reviewer's queues (``delegate_choices``).
    Each case goes to them only if they may work its queue, through the same checks
    as a manager's reassignment (``transitions.hand_over``): a claimed case with a fresh
    lease, a waiting one still waiting. Otherwise a claimed case goes back to its queue
    (``transitions.release``), and a waiting one stays with its holder (it cannot
    return to a queue; a manager can reassign it) and the audit event lists it as kept.
    Answers how many cases moved; each move is audited, and so is the status change.
    Away again with the same delegate and nothing left to hand over changes nothing and
    records nothing.
    """
    now = now or timezone.now()
    _may_change_status(user=user, actor=actor)
    if delegate is not None:
        _check_delegate(user=user, delegate=delegate)
    moved, returned, kept = [], [], []
    reason = f"{user.get_username()} is away"
    with transaction.atomic():
        status, _ = ReviewerStatus.objects.select_for_update().get_or_create(user=user)
        before = {"available": status.available, "delegate": status.delegate_id}
        unchanged = before == {"available": False,
                               "delegate": delegate.pk if delegate else None}
        status.available = False
        status.away_since = status.away_since or now
        status.delegate = delegate
        status.save()
        takes = (set() if delegate is None else
                 set(selectors.member_queues(user=delegate).values_list("pk", flat=True)))
        held = Case.objects.filter(assignee=user, state__in=HELD_STATES).order_by("pk")
        for case_id, queue_id, state in held.values_list("pk", "queue_id", "state"):
            try:
                if queue_id in takes:
                    transitions.hand_over(case_id=case_id, user=actor, holder=user,
                                          to_user=delegate, reason=reason, now=now)
                elif state == CaseState.ASSIGNED:
                    transitions.release(case_id=case_id, user=actor, reason=reason, now=now)
                    returned.append(case_id)
                else:
                    kept.append(case_id)
                    continue
            except (CaseConflict, TransitionNotAllowed, Case.DoesNotExist):
                continue  # resolved, released or reassigned meanwhile: no longer theirs
            moved.append(case_id)
        if unchanged and not moved:
            return 0  # away already, nothing handed over: no change to record
        audit.record(actor=actor, verb=AuditVerb.REVIEWER_AWAY, object_type="user",
                     object_id=user.pk, now=now,
                     data={"user": user.get_username(), "before": before,
                           "delegate": delegate.pk if delegate else None,
                           "moved": moved, "returned": returned, "kept": kept})
    return len(moved)


def set_available(*, user, actor, now: datetime | None = None) -> ReviewerStatus:
    """The reviewer is back: push assignment and escalation consider them again."""
    now = now or timezone.now()
    _may_change_status(user=user, actor=actor)
    with transaction.atomic():
        status, _ = ReviewerStatus.objects.select_for_update().get_or_create(user=user)
        if status.available:
            return status
        before = {"available": status.available, "delegate": status.delegate_id,
                  "away_since": status.away_since}
        status.available, status.away_since, status.delegate = True, None, None
        status.save()
        audit.record(actor=actor, verb=AuditVerb.REVIEWER_AVAILABLE, object_type="user",
                     object_id=user.pk, now=now,
                     data={"user": user.get_username(), "before": before})
    return status


def _unique(people: Iterable) -> list:
    seen, unique = set(), []
    for person in people:
        if person is not None and person.pk not in seen:
            seen.add(person.pk)
            unique.append(person)
    return unique
