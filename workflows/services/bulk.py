"""A manager's action on a selection of cases: reassign, release, change priority, cancel.

Each case goes through its own audited transition service (``services.transitions``),
in its own savepoint: one case that moved on meanwhile, or that the action does not
fit, is answered for itself and changes nothing of the others. Cases commit in groups
of ``COMMIT_EVERY``: a commit per case spent a third of the time waiting for the
disk, and a group holds its rows only briefly (claim-next skips them meanwhile).

The request as a whole is judged first (a manager, a known action, its inputs, a
selection of at most ``MAX_SELECTION``), so a mistake in it changes no case at all.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from workflows.models import Case, is_manager
from workflows.services import transitions
from workflows.services.errors import CaseConflict

# One selection's work fits a request: 500 reassignments take a few seconds.
MAX_SELECTION = 500
COMMIT_EVERY = 50


class BulkAction(models.TextChoices):
    REASSIGN = "reassign", "Reassign"
    RELEASE = "release", "Release to the queue"
    PRIORITY = "priority", "Change priority"
    CANCEL = "cancel", "Cancel"


class Outcome(models.TextChoices):
    DONE = "done", "Done"
    CONFLICT = "conflict", "Conflict"  # the case's state or version did not allow it
    REFUSED = "refused", "Refused"  # not allowed for this case, or no such case


@dataclass(frozen=True)
class CaseResult:
    case_id: int
    outcome: Outcome
    detail: str = ""  # why, in words, when not done
    case: Case | None = None  # the case as it is now, when done


def apply(*, user, action: str, case_ids: Iterable[int], to_user=None,
          priority: int | None = None, reason: str = "",
          now: datetime | None = None) -> list[CaseResult]:
    """Run ``action`` on each selected case, in the order given (duplicates once).

    ``to_user`` (a person) for a reassignment, ``priority`` for a change of priority,
    ``reason`` for a cancellation (and, when given, for a release). Raises
    ``PermissionDenied`` for a non-manager and ``ValidationError`` naming the field
    for a bad request, before touching any case.
    """
    now = now or timezone.now()
    if not is_manager(user):
        raise PermissionDenied("Only a manager may act on several cases at once.")
    run = _action(action=action, user=user, to_user=to_user, priority=priority,
                  reason=reason, now=now)
    selection = list(dict.fromkeys(case_ids))
    if not selection:
        raise ValidationError({"cases": ["Choose at least one case."]})
    if len(selection) > MAX_SELECTION:
        raise ValidationError({"cases": [
            f"Choose at most {MAX_SELECTION} cases at once; this selection has "
            f"{len(selection)}. Narrow the filters, or act on it in parts."]})
    results = []
    for start in range(0, len(selection), COMMIT_EVERY):
        with transaction.atomic():
            results += [_one(run, case_id)
                        for case_id in selection[start:start + COMMIT_EVERY]]
    return results


def _action(*, action, user, to_user, priority, reason, now):
    """The service call for one case, once the request's inputs are judged."""
    if action == BulkAction.REASSIGN:
        if to_user is None or not to_user.is_active:
            raise ValidationError({"to_user": ["Choose an active person to give the cases to."]})
        return lambda case_id: transitions.reassign(case_id=case_id, user=user,
                                                    to_user=to_user, now=now)
    if action == BulkAction.RELEASE:
        return lambda case_id: transitions.release(case_id=case_id, user=user,
                                                   reason=reason.strip(), now=now)
    if action == BulkAction.PRIORITY:
        if isinstance(priority, bool) or not isinstance(priority, int) or not (
                0 <= priority <= 32767):
            raise ValidationError({"priority": [
                "Give a whole number from 0 to 32767 (higher is more urgent)."]})
        return lambda case_id: transitions.change_priority(case_id=case_id, user=user,
                                                           priority=priority, now=now)
    if action == BulkAction.CANCEL:
        if not (reason or "").strip():
            raise ValidationError({"reason": ["Say why these cases are cancelled."]})
        return lambda case_id: transitions.cancel(case_id=case_id, user=user,
                                                  reason=reason, now=now)
    raise ValidationError({"action": [
        f"Choose one of {', '.join(BulkAction.values)}; '{action}' is not an action."]})


def _one(run, case_id: int) -> CaseResult:
    try:
        case = run(case_id)
    except (CaseConflict, TransitionNotAllowed) as exc:
        return CaseResult(case_id, Outcome.CONFLICT, str(exc))
    except PermissionDenied as exc:
        return CaseResult(case_id, Outcome.REFUSED, str(exc))
    except ValidationError as exc:
        return CaseResult(case_id, Outcome.REFUSED, " ".join(exc.messages))
    except Case.DoesNotExist:
        return CaseResult(case_id, Outcome.REFUSED, "There is no such case.")
    return CaseResult(case_id, Outcome.DONE, case=case)
