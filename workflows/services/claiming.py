"""Claims: who works a case now. A claim is a lease that expires back to the queue (I3).

At most one person holds a case: the claim is the FSM transition ``open|escalated ->
assigned``, saved with ``UPDATE ... WHERE state = <read> AND version = <read>``. On
PostgreSQL claim-next also locks its candidate with ``FOR UPDATE SKIP LOCKED``, so
twenty reviewers pressing "next" at once each get a different case without waiting
for one another. SQLite has no row locks: there the conditional UPDATE alone decides,
and a claimer that lost the race tries the next candidate.
"""

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from workflows import db, hooks, selectors
from workflows.actors import SYSTEM
from workflows.models import CLAIMABLE_STATES, AuditEvent, Case, CaseState, Queue, is_manager
from workflows.services import assignment, audit
from workflows.services.transitions import (
    changing,
    load_case,
    require,
    responded,
    save_and_record,
)
from workflows.services.work_time import drop_stint, start_stint
from workflows.verbs import AuditVerb

# How many of the most urgent cases claim-next reads per queue: more than the
# reviewers who can hold a row lock at the same moment, so the first free one is
# almost always among them (when all are taken it falls back to a full scan). On
# SQLite, how many candidates a claimer tries before it gives up.
CANDIDATES = 32


def claim_next(*, user, queue: Queue | None = None, queue_slug: str | None = None,
               now: datetime | None = None) -> Case | None:
    """Lease the most urgent waiting case the user may work (in ``queue``, or the queue
    named ``queue_slug``, if given), or None.

    None also when ``queue_slug`` names no queue the user works: the caller, which has
    nothing to answer then anyway, asks which it is (the queue is not read first).
    Refused (``ReviewerAway``) while the user is marked away.
    """
    now = now or timezone.now()
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # The row is ours until commit: the conditional save cannot lose. The
            # candidate's statement locks the person's status too and finds nothing
            # while they are away: only then is the status read again, to say so.
            for case in _locked_candidate(user=user, queue=queue, queue_slug=queue_slug):
                _take(case, user=user, now=now)
                return case
            assignment.refuse_if_away(user=user)
            return None
        assignment.refuse_if_away(user=user)
        for case in (selectors.workable_cases(user=user, queue=queue, queue_slug=queue_slug)
                     .select_related("queue")[:CANDIDATES]):
            try:
                with transaction.atomic():  # a lost race rolls back this try only
                    _take(case, user=user, now=now)
            except ConcurrentTransition:
                continue  # someone claimed it between our read and our write
            return case
    return None


def _locked_candidate(*, user, queue: Queue | None = None,
                      queue_slug: str | None = None) -> list[Case]:
    """The most urgent waiting case no other claimer holds, locked, with what its answer
    shows (the content hooks' relations); or nothing (also while the user is away, their
    status row locked meanwhile). One plain statement (``db.claim_candidate``)."""
    if not (user and user.is_authenticated):
        return []
    content = hooks.content_reads()

    def candidate(**where) -> list[Case]:
        found = db.claim_candidate(user_id=user.pk, states=CLAIMABLE_STATES,
                                   everyone=is_manager(user), related=content.related,
                                   omit=content.deferred, **where)
        return [] if found is None else [found]

    if queue is not None:
        # One ordered range scan of case_claimable_idx, locking the first free row.
        return candidate(queue_id=queue.pk)
    if queue_slug is not None:
        return candidate(queue_slug=queue_slug)
    # Across the user's queues urgency order cannot come from one index range: take
    # the head of each queue's range (a LATERAL index scan per queue), then lock the
    # most urgent free row among those heads, all in one statement. When every head is
    # held by another claimer (more than CANDIDATES at once), or the user is away:
    # scan all.
    return candidate(heads=CANDIDATES) or candidate()


def _take(case: Case, *, user, now: datetime) -> None:
    """The claim transition, saved with its audit event in one statement; a lost race
    is ``ConcurrentTransition``, as ``Case.save`` raises it."""
    before = case.state
    case.claim(by=user, until=now + case.queue.lease_time)
    start_stint(case, now)
    responded(case, now)
    save_and_record(case=case, user=user, verb=AuditVerb.CASE_CLAIMED, before=before, now=now,
                    lease_expires_at=case.lease_expires_at)


def claim(*, case_id: int, user, expected_version: int | None = None,
          now: datetime | None = None) -> Case:
    """Lease one particular waiting case (picked from the queue page).

    Refused (``ReviewerAway``) while the user is marked away, after the case is found:
    a case they may not see stays a 404.
    """
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        assignment.refuse_if_away(user=user)
        if case.state == CaseState.ASSIGNED and case.assignee_id is not None:
            holder = "you" if case.assignee_id == user.pk else "someone else"
            raise TransitionNotAllowed(f"This case is already claimed by {holder}.",
                                       object=case, method=case.claim)
        require(case, case.claim, user, action="be claimed")
        _take(case, user=user, now=now)
    return case


def renew_lease(*, case_id: int, user, now: datetime | None = None) -> Case:
    """Keep a claim alive while its holder works on it: a lease lapses only when
    untouched for the queue's time limit. The case page renews it when the holder opens
    it and while it stays open (its SLA panel polls); a transition by the holder either
    ends the claim or gives a fresh lease.

    Refused when the case is not assigned (``TransitionNotAllowed``), is someone else's
    (``PermissionDenied``), or its lease already lapsed (``TransitionNotAllowed``: the
    sweeper gives it back to the queue; claim it again).
    """
    now = now or timezone.now()
    case = load_case(case_id=case_id, user=user)
    if case.state != CaseState.ASSIGNED:
        raise TransitionNotAllowed(
            f"This case is {case.get_state_display().lower()}; there is no claim to "
            "renew.", object=case)
    if case.assignee_id != user.pk:
        raise PermissionDenied("Only the person holding the claim can renew it.")
    if not extend_lease(case=case, user=user, now=now):
        raise TransitionNotAllowed(
            "Your claim lapsed: the case goes back to its queue. Claim it again to go on.",
            object=case)
    return case


def extend_lease(*, case: Case, user, now: datetime | None = None) -> bool:
    """Renew ``case``'s lease if ``user`` holds it and it is still live; answer whether
    it did. One conditional UPDATE, cheap enough for every view of the case page.

    Not a transition and not a change to what anyone decides from: not audited (the
    claim and the expiry are), and the version stays, so the holder's open forms do
    not go stale. A lapsed lease is not revived, and a case held without a lease (an
    escalation's owner) gets none.
    """
    now = now or timezone.now()
    if not case.holds_live_lease(user, now):
        return False
    until = now + case.queue.lease_time
    # The same conditions in the WHERE: a sweeper or a transition that got there first
    # wins (case_lease_idx's sweep locks the row it expires).
    renewed = db.renew_lease(case_id=case.pk, holder_id=user.pk, now=now, until=until)
    if renewed:
        case.lease_expires_at = until
    return renewed


def expire_leases(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Send cases whose lease ran out back to their queue; answer how many. Idempotent.

    Several sweepers may run at once: on PostgreSQL each locks a disjoint batch
    (SKIP LOCKED); everywhere the conditional save makes a case expire once, with
    one audit event. Time spent is not counted for an abandoned lease.
    """
    now = now or timezone.now()
    events = []
    with transaction.atomic():
        # case_lease_idx: assigned cases by lease expiry.
        due = list(Case.objects.filter(state=CaseState.ASSIGNED, lease_expires_at__lte=now)
                   .order_by("lease_expires_at")
                   .select_for_update(skip_locked=True, of=("self",))[:batch_size])
        for case in due:
            holder, lease = case.assignee_id, case.lease_expires_at
            case.expire_lease()
            drop_stint(case)
            try:
                with transaction.atomic():
                    case.save()
            except ConcurrentTransition:
                continue  # released, resolved or expired by someone else meanwhile
            events.append(audit.build(
                verb=AuditVerb.CASE_LEASE_EXPIRED, object_type="case", object_id=case.pk,
                case=case, actor=SYSTEM, now=now,
                data={"from": CaseState.ASSIGNED, "to": case.state, "version": case.version,
                      "assignee": holder, "lease_expires_at": lease}))
        AuditEvent.objects.bulk_create(events)
    return len(events)
