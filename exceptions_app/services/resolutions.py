"""What comes of a decision once people have it: a resolution, or a withdrawal.

The case engine (``workflows``) calls the first three functions through
``workflows.hooks`` (registered in ``ExceptionsAppConfig.ready``):

- ``validate_resolution``: the reason code must be one of the use case's, and a
  corrected output must satisfy the use case's output schema (data contract). In
  blind review an answer needs no reason code: asking for one only when the answer
  differs from the AI's would tell the reviewer so before they submit;
- ``recording_labelled_example`` (through ``resolved.case_resolved``): inside the
  resolving transaction, the resolution becomes a labelled example, so the two commit
  together or not at all;
- ``case_content``: the decision's input (the subject) and the AI's proposal (the
  suggestion, which blind queues hide until the case is closed).

``withdraw_decision`` is the AI system taking its own decision back.
"""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from exceptions_app import contract_wording
from exceptions_app.models import AiSystem, Decision, LabelledExample
from exceptions_app.verbs import DomainVerb
from workflows import db
from workflows.hooks import CaseContent, ContentReads
from workflows.models import Case, Verdict
from workflows.services import audit, transitions

# pg_advisory_xact_lock key of the labelled examples' places: "labels" in ASCII.
LABELS_LOCK = int.from_bytes(b"labels", "big")


# What the case's answers and checks never read: the columns not worth fetching and
# decoding on every claim, transition and case view.
UNUSED_FOR_A_CASE = ("meta", "body_hash", "use_case__description", "use_case__input_schema",
                     "use_case__summary_fields", "policy_version__text")
# Its AI system, read with it by ``decision_of``'s own statement, for the resolution's
# webhook (its callback URL); the relay reads the secrets when it signs.
UNUSED_OF_ITS_SYSTEM = tuple(f"ai_system__{name}" for name in (
    "signing_secret", "previous_signing_secret", "previous_secret_expires_at",
    "document_hosts"))
# The same read as a case's relations (``hooks.content_reads``): a transition reads it
# with the case, so a resolution's handlers find its AI system there too.
CONTENT_READS = ContentReads(
    related=("decision__use_case", "decision__policy_version", "decision__ai_system"),
    deferred=tuple(f"decision__{name}" for name in UNUSED_FOR_A_CASE + UNUSED_OF_ITS_SYSTEM))


def decision_of(case) -> Decision | None:
    # Read once per case object: a decision never changes once stored (I1), and a
    # resolution asks for it to check the answer, to compare it and to answer with it.
    # (Not found by a query of its own is not remembered: the decision of a case being
    # opened comes after it. Read with the case, ``CONTENT_READS``, found or not, it is
    # what the case had when read.) Else one plain statement (``db.one_with_related``):
    # the ORM's form cost more to build and compile than to run.
    if case.__dict__.get("_decision") is None and Case.decision.is_cached(case):
        return Case.decision.related.get_cached_value(case)
    if case.__dict__.get("_decision") is None:
        case._decision = db.one_with_related(
            Decision, by="case", value=case.pk,
            related=("use_case", "policy_version", "ai_system"),
            omit=UNUSED_FOR_A_CASE + UNUSED_OF_ITS_SYSTEM)
    return case._decision


def validate_resolution(*, case, verdict: str, output: dict | None, reason_code: str) -> None:
    """Every problem at once, in words (``contract_wording``): the reason code on
    ``reason_code``, each field of a correction on ``output.<field>``."""
    decision = decision_of(case)
    if decision is None:
        return
    use_case = decision.use_case
    errors: dict[str, list[str]] = {}
    if use_case.reason_code_values:
        if reason_code and reason_code not in use_case.reason_code_values:
            errors["reason_code"] = [contract_wording.unknown_reason_code(
                reason_code=reason_code, reason_codes=use_case.reason_codes,
                use_case=use_case.name)]
        elif not reason_code and verdict != Verdict.ACCEPTED and not (
                case.queue.blind and verdict == Verdict.CORRECTED):
            errors["reason_code"] = [contract_wording.missing_reason_code(
                reason_codes=use_case.reason_codes)]
    if verdict == Verdict.CORRECTED and output is not None:
        errors.update(contract_wording.contract_field_errors(
            use_case.output_schema, output, prefix="output"))
    if errors:
        raise ValidationError(errors)


def final_output(resolution, decision: Decision) -> dict | None:
    """The output the people settled on: the correction, the AI's output they accepted,
    or none for a rejection. The labelled example and the webhook both carry it."""
    return final_output_of(verdict=resolution.verdict, corrected=resolution.output,
                           ai_output=decision.output)


def final_output_of(*, verdict: str, corrected: dict | None, ai_output: dict) -> dict | None:
    """``final_output`` from plain values (the resolution feed reads no model instances)."""
    if verdict == Verdict.CORRECTED:
        return corrected
    if verdict == Verdict.ACCEPTED:
        return ai_output  # the reviewer confirmed the AI's output
    return None


def recording_labelled_example(*, case, resolution, decision: Decision) -> db.Write:
    """The insert of the final resolution as training and evaluation data (one per
    decision), at the next place, to run with the resolution's other writes.

    A blind answer arrives already compared with the AI's output by the engine:
    ``accepted`` when they agree, ``corrected`` (with the reviewer's output) when not.
    The caller holds ``LABELS_LOCK`` (``resolved.case_resolved``): the next place is
    taken one transaction at a time.
    """
    example = LabelledExample(
        decision=decision, use_case=decision.use_case,
        input=decision.input,
        ai_output=decision.output, human_output=final_output(resolution, decision),
        verdict=resolution.verdict,
        reason_code=resolution.reason_code, notes=resolution.notes,
        model_version=decision.model_version, policy_version=decision.policy_version,
        ai_confidence=decision.confidence, blind=case.queue.blind,
        reviewer_id=resolution.resolved_by_id, approver_id=resolution.approved_by_id,
        time_spent_seconds=resolution.time_spent_seconds,
        decided_at=resolution.created_at, created_at=case.closed_at or timezone.now(),
        external_id=decision.external_id, stage=decision.stage, route=decision.route,
        rules_fired=[reason["rule"] for reason in decision.reasons if reason.get("rule")],
        qa_sample=decision.qa_sampled, received_at=decision.received_at)
    # The last place read and taken in one statement; the example's id and place set once run.
    return db.inserting_at_next_position(example, field="position")


def case_content(*, case) -> CaseContent | None:
    decision = decision_of(case)
    return content_of(decision) if decision is not None else None


def content_of(decision: Decision) -> CaseContent:
    use_case = decision.use_case
    return CaseContent(
        subject={"use_case": use_case.slug, "use_case_name": use_case.name,
                 "decision_id": decision.pk, "external_id": decision.external_id,
                 "model_version": decision.model_version,
                 "received_at": decision.received_at, "input": decision.input},
        suggestion={"output": decision.output, "confidence": decision.confidence,
                    "explanation": decision.explanation, "reasons": decision.reasons,
                    "policy_version": decision.policy_version.number,
                    "stage": decision.stage},
        reason_codes=use_case.reason_codes, output_schema=use_case.output_schema,
        suggestion_name="the AI's output")


def withdraw_decision(*, ai_system: AiSystem, decision_id: int, reason: str = "",
                      now: datetime | None = None) -> Decision:
    """The AI system takes its own decision back; its open case is cancelled.

    Idempotent: a second withdrawal answers the first. Refused
    (``TransitionNotAllowed``, HTTP 409) once people have resolved the case.
    Another system's decision does not exist for this one (``Decision.DoesNotExist``).
    The decision stays as posted; only its withdrawal marker is set.
    """
    now = now or timezone.now()
    with transaction.atomic():
        decision = Decision.objects.get(pk=decision_id, ai_system=ai_system)
        # Conditional update: of two concurrent withdrawals, one marks, the other waits
        # for its commit and then finds it withdrawn.
        marked = Decision.objects.filter(pk=decision.pk, withdrawn_at__isnull=True).update(
            withdrawn_at=now)
        if marked:
            if decision.case_id is not None:
                transitions.withdraw(case_id=decision.case_id,
                                     actor_label=ai_system.actor_label, reason=reason, now=now)
            audit.record(verb=DomainVerb.DECISION_WITHDRAWN, object_type="decision",
                         object_id=decision.pk, case_id=decision.case_id,
                         actor_label=ai_system.actor_label, now=now,
                         data={"external_id": decision.external_id, "reason": reason})
    return (Decision.objects.select_related("use_case", "policy_version", "case__queue")
            .get(pk=decision.pk))
