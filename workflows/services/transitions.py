"""Every change of a case's state after the claim: one service per business verb.

Each service, in one transaction (I4):

1. reads the case within the caller's scope (I8; out of scope: ``Case.DoesNotExist``);
2. checks ``expected_version`` when given (``CaseConflict`` when the case moved on);
3. asks django-fsm whether the transition fits the state (``TransitionNotAllowed``)
   and whether this user may run it (``PermissionDenied``);
4. validates its input (``ValidationError`` naming the field);
5. runs the transition and saves with ``UPDATE ... WHERE state = <read> AND
   version = <read>`` (``ConcurrentTransitionMixin`` and ``Case.save``): a racer that
   lost gets ``CaseConflict``, never a lost update;
6. writes exactly one audit event (I7).

The API maps ``CaseConflict`` and ``TransitionNotAllowed`` to 409 with the current
state, ``PermissionDenied`` to 403, ``ValidationError`` to 400 and
``Case.DoesNotExist`` to 404. Services nest in a caller's transaction (a withdrawal
cancels its case inside the domain's transaction), so they are not ``durable``.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed, can_proceed, has_transition_perm

from workflows import db, hooks, process_cache, selectors
from workflows.models import Case, CaseState, ConsultRequest, Verdict, remember_membership
from workflows.permissions_backend import keep_permissions
from workflows.services import audit, consults, escalation, resolving, sla
from workflows.services.errors import CaseConflict
from workflows.services.work_time import end_stint, start_stint
from workflows.verbs import AuditVerb

# ``{suggestion}``: how the domain names it (``hooks.CaseContent.suggestion_name``).
NOTHING_DIFFERS = "Nothing differs from {suggestion}: accept it, or change a field."
# Not "someone else": it may have been the same person, in another tab or client.
STALE_MESSAGE = ("This case changed meanwhile; reload it to see its current state and "
                 "its timeline, then try again.")


# -- shared steps ------------------------------------------------------------------------

def with_answer_facts(cases: QuerySet[Case]) -> QuerySet[Case]:
    """``cases`` with, in the same statement, what a transition and its answer read
    besides the case: its queue, its resolution (or that it has none), its first
    reviewer (whom a four-eyes case's answer names) and whether anyone was consulted on
    it (``has_consults``; consults are rare, so the answer reads them only when there
    are some)."""
    return cases.select_related("queue", "resolution", "first_reviewer").annotate(
        has_consults=Exists(ConsultRequest.objects.filter(case=OuterRef("pk"))))


def load_case(*, case_id: int, user, expected_version: int | None = None) -> Case:
    """The case as the user may see it, checked against the version they saw."""
    # Read by its id, with whether they work its queue, then judged by the scope's rule
    # (I8) in Python: one plain statement, whoever acts. Out of scope is absent, as not
    # found is. Its content comes with it (the content hooks' relations): a resolution
    # checks it and every answer shows it; a statement of its own cost a round trip.
    content = hooks.content_reads()
    case = db.case_for_change(case_id=case_id, user_id=getattr(user, "pk", None),
                              related=content.related, omit=content.deferred)
    if case is None:
        raise Case.DoesNotExist("No case with this id.")
    remember_membership(case, user, works_queue=case.user_works_queue)
    if not selectors.may_see(case=case, user=user):
        raise Case.DoesNotExist("No case with this id in the caller's scope.")
    if expected_version is not None and case.version != expected_version:
        raise CaseConflict(
            f"This case is now at version {case.version}, not {expected_version}: "
            + STALE_MESSAGE, case=case)
    return case


@contextmanager
def changing(*, case_id: int, user, expected_version: int | None = None) -> Iterator[Case]:
    """One atomic change of one case; a lost race becomes ``CaseConflict``."""
    try:
        with transaction.atomic():
            yield load_case(case_id=case_id, user=user, expected_version=expected_version)
    except ConcurrentTransition as exc:
        # Rolled back; answer with the state the winner left behind.
        raise CaseConflict(STALE_MESSAGE, case=Case.objects.get(pk=case_id)) from exc


def require(case: Case, method, user, *, action: str) -> None:
    """django-fsm decides: 409 when the state does not allow it, 403 when the user may not.

    ``action`` is the verb as a person says it: "resolve", "send back".
    """
    if not can_proceed(method):
        raise TransitionNotAllowed(
            f"This case is {case.get_state_display().lower()}: it cannot {action} now.",
            object=case, method=method)
    if not has_transition_perm(method, user):
        raise PermissionDenied(
            f"You may not ask for this case to {action}: it is someone else's work, or it "
            "needs a manager (an approval needs a second person).")


def responded(case: Case, now: datetime) -> None:
    """A person acted on the case themselves: the first time is its first response
    (``first_claimed_at``, which stops the response clock). Only their own claim or
    transition counts; a hand-off to them does not (escalation, push assignment,
    delegation, a manager's reassignment), or a case escalated because nobody
    responded would show a response at the very moment it was missed."""
    if case.first_claimed_at is None:
        case.first_claimed_at = now


def _record(*, case: Case, user, verb: AuditVerb, before: str, now: datetime, **data) -> None:
    _event(case=case, user=user, verb=verb, before=before, now=now, **data).save()


def save_and_record(*, case: Case, user, verb: AuditVerb, before: str, now: datetime,
                    and_update: tuple | None = None, **data) -> None:
    """``case.save()`` and its one audit event (I7), written in one round trip
    (``db.save_case_with_event``, with ``and_update``'s fields if given); the event
    carries the version the save gave it."""
    db.save_case_with_event(case, lambda saved: _event(
        case=saved, user=user, verb=verb, before=before, now=now, **data),
        and_update=and_update)


def _event(*, case: Case, user, verb: AuditVerb, before: str, now: datetime, **data):
    return audit.build(actor=user, verb=verb, object_type="case", object_id=case.pk,
                       case=case, now=now,
                       data={"from": before, "to": case.state, "version": case.version,
                             **data})


def require_works_queue(case: Case, person, *, field: str) -> None:
    """Only someone who may work the case's queue is given it (I8): a manager
    reassigning and a reviewer's delegate taking over alike."""
    if person is None or not getattr(person, "is_active", False):
        raise ValidationError({field: ["Choose an active user to give the case to."]})
    # Membership first (one query, unless it was read with them: ``user_by_username``):
    # whether they are a manager (their permissions) only matters when they are not one.
    worked = getattr(person, "queues_worked", None)
    works = (case.queue_id in worked if worked is not None
             else selectors.works_queue(user=person, queue_id=case.queue_id))
    if not (works or selectors.is_manager(person)):
        raise ValidationError({field: [
            f"{person.get_username()} does not work the queue '{case.queue.name}'; "
            "add them to it first."]})


def _required_text(value: str, *, field: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: [f"Say {what}."]})
    return value


# -- the verbs ---------------------------------------------------------------------------

def release(*, case_id: int, user, expected_version: int | None = None, reason: str = "",
            now: datetime | None = None) -> Case:
    """Give a claimed case back to its queue (``reason``, when given, is audited)."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        require(case, case.release, user, action="be released")
        before, holder = case.state, case.assignee_id
        end_stint(case, now)
        responded(case, now)
        case.release()
        save_and_record(case=case, user=user, verb=AuditVerb.CASE_RELEASED, before=before, now=now,
                        assignee=holder, **({"reason": reason} if reason else {}))
    return case


def resolve(*, case_id: int, user, verdict: str, output: dict | None, reason_code: str,
            notes: str = "", expected_version: int | None = None,
            now: datetime | None = None) -> Case:
    """Decide the case: accepted, corrected (with the corrected output) or rejected.

    A four-eyes case goes to ``pending_approval`` instead of ``resolved``; a second
    person approves it or sends it back. The resolution is stored either way; the
    domain's resolved handlers (the labelled example) run when it is final.
    An ``output`` is kept for a ``corrected`` verdict and for a blind answer.

    Blind review: the reviewer answers (``corrected`` with their output) without
    having seen the suggestion; the answer is compared with it here, after
    submission, and the verdict is ``accepted`` when they agree, ``corrected`` when
    they differ; the audit event names the fields that differ. Outside blind review a
    correction must change something (compared as values, as blind answers are):
    one equal to the suggestion is refused on ``output``. A required consult
    still unanswered refuses the resolution (``CaseConflict``, 409).
    """
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        method = case.submit_for_approval if case.requires_four_eyes else case.resolve
        require(case, method, user, action="be resolved")
        consults.require_answered(case=case, action="be resolved")
        clean = _clean_resolution(case, user, verdict, output, reason_code)
        before = case.state
        end_stint(case, now)
        responded(case, now)
        method(by=user)
        if case.state == CaseState.RESOLVED:
            case.closed_at = now
        resolution = resolving.new_resolution(
            case=case, verdict=clean.verdict, output=clean.output,
            reason_code=clean.reason_code, notes=notes, resolved_by=user, now=now)
        blind = ({"blind_answer": {"differing_fields": clean.differing_fields}}
                 if clean.differing_fields is not None else {})
        db.save_case_with_event(case, lambda saved: resolving.resolution_event(
            case=saved, resolution=resolution, actor=user, before=before, now=now, **blind))
        resolution = resolving.write_resolution(case=case, resolution=resolution)
        if case.state == CaseState.RESOLVED:
            hooks.case_resolved(case=case, resolution=resolution)
    return case


def check_resolution(*, case_id: int, user, verdict: str, output: dict | None,
                     reason_code: str) -> None:
    """Judge a resolution's values without resolving: raise the ``ValidationError``
    ``resolve`` would raise for them, or nothing. Writes nothing.

    For a form that refused some of its fields itself (a number that is not one): the
    service judges the rest at once, so the person hears of every problem in one answer.
    """
    case = load_case(case_id=case_id, user=user)
    _clean_resolution(case, user, verdict, output, reason_code)


@dataclass(frozen=True)
class CleanResolution:
    verdict: str
    output: dict | None
    reason_code: str
    # Blind review: the answer's fields that differ from the suggestion (None otherwise).
    differing_fields: list[str] | None = None


def _clean_resolution(case: Case, user, verdict, output, reason_code) -> CleanResolution:
    if verdict not in Verdict.values:
        raise ValidationError({"verdict": [
            f"Choose one of {', '.join(Verdict.values)}; '{verdict}' is not a verdict."]})
    blind = case.queue.blind
    content = hooks.case_content(case=case)
    if verdict == Verdict.ACCEPTED and selectors.hides_suggestion(case=case, user=user):
        raise ValidationError({"verdict": [
            "This is a blind review: you cannot accept an output you have not seen. Give "
            "your own answer (verdict 'corrected' with the output; it is compared with "
            f"{content.suggestion_name} after you submit) or reject the case."]})
    if verdict == Verdict.CORRECTED:
        if output is None:
            raise ValidationError({"output": ["A corrected verdict needs the corrected output."]})
        if not isinstance(output, dict):
            raise ValidationError({"output": ["The corrected output must be a JSON object."]})
    else:
        output = None
    differing = None
    if verdict == Verdict.CORRECTED:
        suggested = content.suggestion.get("output")
        if isinstance(suggested, dict):
            differing = differing_fields(suggested=suggested, answer=output)
            if blind:
                # Compared only now, after submission: agreeing is an acceptance.
                verdict = Verdict.CORRECTED if differing else Verdict.ACCEPTED
            elif not differing:
                # A "correction" that changes nothing would label the suggestion both
                # right (same value) and wrong (verdict corrected).
                raise ValidationError({"output": [
                    ValidationError(NOTHING_DIFFERS.format(
                        suggestion=content.suggestion_name), code="unchanged")]})
            else:
                differing = None  # only a blind answer's audit event names them
    reason_code = (reason_code or "").strip()
    hooks.validate_resolution(case=case, verdict=verdict, output=output,
                              reason_code=reason_code)
    return CleanResolution(verdict=verdict, output=output, reason_code=reason_code,
                           differing_fields=differing)


def differing_fields(*, suggested: dict, answer: dict) -> list[str]:
    """The top-level fields where a person's answer differs from the suggestion.

    Compared as values, not as text: 4094 and 4094.0 agree, a missing field and
    ``null`` agree, strings agree once surrounding spaces are trimmed; nested objects
    and lists are compared the same way, item by item.
    """
    keys = list(suggested) + [key for key in answer if key not in suggested]
    return [key for key in keys if not same_value(suggested.get(key), answer.get(key))]


def same_value(first, second) -> bool:
    first, second = _blank_as_none(first), _blank_as_none(second)
    if isinstance(first, str) and isinstance(second, str):
        return first.strip() == second.strip()
    if isinstance(first, bool) or isinstance(second, bool):
        return first is second
    if isinstance(first, int | float) and isinstance(second, int | float):
        return math.isclose(first, second, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(first, dict) and isinstance(second, dict):
        return not differing_fields(suggested=first, answer=second)
    if isinstance(first, list) and isinstance(second, list):
        return len(first) == len(second) and all(
            same_value(one, other) for one, other in zip(first, second, strict=True))
    return first == second


def _blank_as_none(value):
    # A field left empty on the page arrives as None, through the API often as "".
    return None if isinstance(value, str) and not value.strip() else value


def request_info(*, case_id: int, user, reason: str, expected_version: int | None = None,
                 now: datetime | None = None) -> Case:
    """Park the case until the information asked for arrives; the SLA clock pauses."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        require(case, case.request_info, user, action="be put on hold")
        reason = _required_text(reason, field="reason", what="what information is missing")
        before = case.state
        end_stint(case, now)
        responded(case, now)
        case.request_info()
        case.waiting_since = now
        sla.pause(case, now=now)
        save_and_record(case=case, user=user, verb=AuditVerb.CASE_INFO_REQUESTED, before=before,
                        now=now, reason=reason)
    return case


def resume(*, case_id: int, user, expected_version: int | None = None,
           now: datetime | None = None) -> Case:
    """Take a waiting case up again, with a fresh lease."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        require(case, case.resume, user, action="be resumed")
        before, waited_since = case.state, case.waiting_since
        case.resume(until=now + case.queue.lease_time)
        case.waiting_since = None
        start_stint(case, now)
        responded(case, now)
        sla.resume(case, now=now)
        save_and_record(case=case, user=user, verb=AuditVerb.CASE_RESUMED, before=before, now=now,
                        waited_seconds=int((now - waited_since).total_seconds())
                        if waited_since else None)
    return case


def escalate(*, case_id: int, user, reason: str, expected_version: int | None = None,
             now: datetime | None = None) -> Case:
    """Hand the case up one level, by hand, with a reason.

    The same chain as an SLA breach (``escalation.escalate``, cause ``manual``): the
    level's rule reassigns or re-queues the case, tells the Informed and asks the
    Consulted. A racer that escalated or changed the case first wins; this one gets
    ``CaseConflict``.
    """
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        require(case, case.escalate, user, action="be escalated")
        reason = _required_text(reason, field="reason", what="why it needs escalating")
        # The chains' and the SLA terms' caches: their tokens in one round trip.
        with process_cache.one_look():
            escalated = escalation.escalate(case_id=case.pk, cause="manual",
                                            expected_level=case.escalation_level, actor=user,
                                            reason=reason, now=now,
                                            expected_version=case.version, savepoint=False)
        if escalated is None:
            raise CaseConflict(STALE_MESSAGE, case=case)
    # The case as the escalation wrote it (every field, from its guard's RETURNING on),
    # with what the answer reads besides, as ``load_case`` read it: no second read.
    answered = escalated.case
    _keep_reads(answered, read=case)
    answered.has_consults = case.has_consults or bool(escalated.consults_asked)
    return answered


def _keep_reads(changed: Case, *, read: Case) -> None:
    """Give ``changed``, the case a change wrote back as a new object, the relations
    ``load_case`` read with ``read`` (its resolution, first reviewer and content) that
    the change did not set or move."""
    names = ("resolution", "first_reviewer",
             *dict.fromkeys(path.split("__")[0] for path in hooks.content_reads().related))
    for name in names:
        relation = Case._meta.get_field(name)
        if relation.is_cached(changed) or not relation.is_cached(read):
            continue
        if relation.concrete and (getattr(changed, relation.attname)
                                  != getattr(read, relation.attname)):
            continue  # points elsewhere now
        relation.set_cached_value(changed, relation.get_cached_value(read))


def approve(*, case_id: int, user, expected_version: int | None = None,
            now: datetime | None = None) -> Case:
    """Second pair of eyes: confirm the first reviewer's resolution."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        require(case, case.approve, user, action="be approved")
        consults.require_answered(case=case, action="be approved")
        before = case.state
        case.approve()
        case.closed_at = now
        resolution = case.resolution  # read with the case (``with_answer_facts``)
        resolution.approved_by = user
        resolution.approved_at = now
        # The approval stored with the case's conditional save, in its statement: only if
        # that save wins (it holds off any other writer of the case).
        save_and_record(case=case, user=user, verb=AuditVerb.CASE_APPROVED, before=before,
                        now=now, first_reviewer=case.first_reviewer_id,
                        verdict=resolution.verdict,
                        and_update=(resolution, ["approved_by_id", "approved_at"]))
        hooks.case_resolved(case=case, resolution=resolution)
    return case


def send_back(*, case_id: int, user, comment: str, expected_version: int | None = None,
              now: datetime | None = None) -> Case:
    """Refuse approval: the case goes back to its first reviewer with a comment."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        require(case, case.send_back, user, action="be sent back")
        comment = _required_text(comment, field="comment", what="what should change")
        before = case.state
        case.send_back(until=now + case.queue.lease_time)
        start_stint(case, now)
        save_and_record(case=case, user=user, verb=AuditVerb.CASE_SENT_BACK, before=before,
                        now=now, comment=comment, assignee=case.assignee_id)
    return case


def reassign(*, case_id: int, user, to_user, expected_version: int | None = None,
             now: datetime | None = None) -> Case:
    """A manager gives the case to someone who works its queue."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        require(case, case.reassign, user, action="be reassigned")
        require_works_queue(case, to_user, field="to_user")
        before, holder = case.state, case.assignee_id
        end_stint(case, now)
        case.reassign(to=to_user, until=now + case.queue.lease_time)
        case.waiting_since = None
        start_stint(case, now)
        sla.on_reassign(case, now=now, resumed=before == CaseState.WAITING)
        save_and_record(case=case, user=user, verb=AuditVerb.CASE_REASSIGNED, before=before,
                        now=now, from_assignee=holder, to_assignee=to_user.pk)
    return case


def hand_over(*, case_id: int, user, holder, to_user, reason: str,
              now: datetime | None = None) -> Case:
    """``holder`` is away: their delegate takes the case over (``user`` is the holder
    themself or a manager). Like a reassignment, only to someone who works the case's
    queue; a waiting case stays waiting, now for the delegate."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user) as case:
        if case.assignee_id != holder.pk:
            raise CaseConflict(STALE_MESSAGE, case=case)  # released or reassigned meanwhile
        if not can_proceed(case.hand_over):
            raise TransitionNotAllowed(
                f"This case is {case.get_state_display().lower()}: it cannot be handed "
                "over now.", object=case, method=case.hand_over)
        if user.pk != holder.pk and not selectors.is_manager(user):
            raise PermissionDenied("Only the reviewer themself or a manager can hand "
                                   "their cases over.")
        require_works_queue(case, to_user, field="delegate")
        before = case.state
        end_stint(case, now)
        case.hand_over(to=to_user, until=now + case.queue.lease_time)
        if case.state == CaseState.ASSIGNED:
            start_stint(case, now)
            sla.on_reassign(case, now=now)  # restarts the clock where the policy says so
        case.save()
        _record(case=case, user=user, verb=AuditVerb.CASE_DELEGATED, before=before, now=now,
                assignee=holder.pk, to_assignee=to_user.pk, reason=reason)
    return case


def change_priority(*, case_id: int, user, priority: int,
                    expected_version: int | None = None, now: datetime | None = None) -> Case:
    """A manager makes an open case more or less urgent; its SLA targets follow."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        if not selectors.is_manager(user):
            raise PermissionDenied("Only a manager may change a case's priority.")
        if not case.is_open:
            raise TransitionNotAllowed(f"This case is {case.get_state_display().lower()}: "
                                       "its priority can no longer change.", object=case)
        if isinstance(priority, bool) or not isinstance(priority, int) or not (
                0 <= priority <= 32767):
            raise ValidationError({"priority": [
                "Give a whole number from 0 to 32767 (higher is more urgent)."]})
        old = case.priority
        case.priority = priority
        sla.on_priority_change(case, old_priority=old, now=now)
        if case.holds_live_lease(user, now):  # a manager working their own claim
            case.lease_expires_at = now + case.queue.lease_time
        save_and_record(case=case, user=user, verb=AuditVerb.CASE_PRIORITY_CHANGED,
                        before=case.state, now=now, priority_from=old, priority_to=priority,
                        due_at=case.due_at)
    return case


def cancel(*, case_id: int, user, reason: str, expected_version: int | None = None,
           now: datetime | None = None) -> Case:
    """A manager closes the case without a decision."""
    now = now or timezone.now()
    with changing(case_id=case_id, user=user, expected_version=expected_version) as case:
        require(case, case.cancel, user, action="be cancelled")
        reason = _required_text(reason, field="reason", what="why it is cancelled")
        before = case.state
        end_stint(case, now)
        case.cancel()
        case.closed_at = now
        case.waiting_since = None
        save_and_record(case=case, user=user, verb=AuditVerb.CASE_CANCELLED, before=before,
                        now=now, reason=reason)
    return case


def withdraw(*, case_id: int, actor_label: str, reason: str = "",
             now: datetime | None = None) -> Case:
    """The upstream requester took its request back: cancel the case (system action).

    Not for people: the caller (the domain) has already checked that the requester
    owns the case. Refused with ``TransitionNotAllowed`` once the case is closed.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            case = Case.objects.select_related("queue").get(pk=case_id)
            if not can_proceed(case.withdraw):
                raise TransitionNotAllowed(
                    f"The case is already {case.get_state_display().lower()}; "
                    "it can no longer be withdrawn.", object=case, method=case.withdraw)
            before = case.state
            end_stint(case, now)
            case.withdraw()
            case.closed_at = now
            case.waiting_since = None
            case.save()
            audit.record(actor_label=actor_label, verb=AuditVerb.CASE_WITHDRAWN, object_type="case",
                         object_id=case.pk, case=case, now=now,
                         data={"from": before, "to": case.state, "version": case.version,
                               "reason": reason})
    except ConcurrentTransition as exc:
        raise CaseConflict(STALE_MESSAGE, case=Case.objects.get(pk=case_id)) from exc
    return case


def available_transitions(*, case: Case, user) -> list[str]:
    """Names of the transitions this user may run on the case now (for pages and the API)."""
    return [t.name for t in case.get_available_user_state_transitions(user)]


def user_by_username(username: str):
    """The active user a manager names when reassigning, or a field error; read with
    their permissions and the queues they work (``queues_worked``), in one statement,
    so that ``require_works_queue`` asks nothing more."""
    found = db.person_named(username)
    if found is None:
        raise ValidationError({"to_user": [f"There is no active user '{username}'."]})
    person, names, person.queues_worked = found
    keep_permissions(person, names)
    return person
