"""Consults: the Consulted's input on an escalated case (RACI "C").

An escalation level may ask the process's Consulted for their view (``ask``, called by
``escalation.escalate`` in its transaction); a *required* consult blocks resolving and
approving until it is answered (``require_answered``, called by ``transitions``). The
consulted person answers once (``answer_consult``, audited); the case's holder is told.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from workflows.models import Case, ConsultRequest, Escalation
from workflows.services import audit, outbox
from workflows.services.errors import CaseConflict
from workflows.verbs import AuditVerb


def ask(*, case: Case, escalation: Escalation, consultees: Iterable, required: bool,
        now: datetime) -> list[ConsultRequest]:
    """Ask each of ``consultees`` for their view on the escalated case, in one statement."""
    why = (escalation.reason or escalation.get_cause_display()).rstrip(". ")
    question = (f"{case.label} was escalated to level "
                f"{escalation.level}: {why}. What is your view?")
    return ConsultRequest.objects.bulk_create(
        ConsultRequest(case=case, consultee=person, question=question, required=required,
                       created_at=now, escalation=escalation)
        for person in consultees)


def unanswered_required(*, case):
    return ConsultRequest.objects.filter(case=case.pk, required=True, answered_at__isnull=True)


class ConsultsUnanswered(CaseConflict):
    """A required consult is still unanswered: the case cannot resolve yet (HTTP 409)."""


def require_answered(*, case, action: str) -> None:
    """Required consults come first: resolving or approving waits for their answers."""
    if getattr(case, "has_consults", True) is False:  # read with the case: none asked
        return
    waiting = list(unanswered_required(case=case).select_related("consultee"))
    if waiting:
        names = ", ".join(sorted({c.consultee.display_name
                                  for c in waiting}))
        raise ConsultsUnanswered(
            f"This case cannot {action} yet: {names} must answer the consult first "
            "(their input is required at this escalation level). Nothing was saved; "
            "try again once the answer is on the case.", case=case)


def answer_consult(*, consult_id: int, user, answer: str,
                   now: datetime | None = None) -> ConsultRequest:
    """The consulted person answers, once; the case's holder is told. Audited.

    Someone else's consult does not exist for the user (``ConsultRequest.DoesNotExist``,
    404); an empty answer is a ``ValidationError``; an answer to a closed case or a
    second answer is a ``CaseConflict`` (409).
    """
    now = now or timezone.now()
    answer = (answer or "").strip()
    if not answer:
        raise ValidationError({"answer": ["Write your answer to the question."]})
    with transaction.atomic():
        # I8: someone else's consult is not there for this user.
        consult = ConsultRequest.objects.select_related("case__queue").get(
            pk=consult_id, consultee=getattr(user, "pk", None))
        case = consult.case
        if not case.is_open:
            raise CaseConflict(f"Case {case.pk} is {case.get_state_display().lower()}: "
                               "it no longer needs an answer.", case=case)
        answered = ConsultRequest.objects.filter(pk=consult.pk, answered_at__isnull=True
                                                 ).update(answer=answer, answered_at=now)
        if answered != 1:
            raise CaseConflict("You have already answered this consult.", case=case)
        consult.answer, consult.answered_at = answer, now
        audit.record(actor=user, verb=AuditVerb.CASE_CONSULT_ANSWERED, object_type="consult",
                     object_id=consult.pk, case=case, now=now,
                     data={"consult": consult.pk, "required": consult.required,
                           "escalation": consult.escalation_id, "answer": answer})
        if case.assignee_id and case.assignee_id != user.pk:
            outbox.notify_users(
                users=[case.assignee],
                text=f"{user.display_name} answered the consult on {case.label}.",
                dedup_prefix=f"consult:{consult.pk}:answered", case=case, now=now)
    return consult
