"""Decision intake: store, judge and route every AI decision (single and batch).

One code path serves both endpoints: a single POST is a batch of one. The work is
done in bulk: a fixed number of queries per batch, whatever its size. A decision,
its audit event and its case are committed together, or not at all.

I1 (one decision per AI system and external_id) rests on the unique constraint:
the transaction reads what is already stored to answer replays, inserts the rest,
and if a concurrent request committed one of the same external_ids in between,
the insert fails on the constraint, everything rolls back, and the next attempt
answers that item as a replay.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from exceptions_app.contracts import contract_errors
from exceptions_app.models import AiSystem, Decision, PolicyStatus, PolicyVersion, UseCase
from exceptions_app.policy import CompiledPolicy, compile_policy, evaluate, evaluation_context
from exceptions_app.routing import RoutingResult, UseCaseRouting, route_decision
from workflows.models import AuditEvent, Queue
from workflows.services import audit
from workflows.services.cases import NewCase, open_cases

DECISION_FIELDS = ("use_case", "external_id", "model_version", "confidence", "input",
                   "output", "explanation", "meta")
EXTERNAL_ID_CONSTRAINT = "decision_external_id_unique_per_ai_system"


@dataclass
class ItemResult:
    """The answer for one posted decision: an HTTP status and either a decision or errors."""

    status: int
    decision: Decision | None = None
    errors: dict | None = None


def body_hash(data: dict) -> str:
    """sha256 of the decision as posted, in a canonical form.

    JSON has one number type, so 4100 and 4100.0 hash alike: a retry that
    re-serializes the same values is still a replay.
    """
    canonical = {field: _canonical_numbers(data.get(field)) for field in DECISION_FIELDS}
    canonical["explanation"] = canonical["explanation"] or ""
    canonical["meta"] = canonical["meta"] or {}
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _canonical_numbers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(item) for item in value]
    return value


@dataclass(frozen=True)
class _Target:
    """A use case this AI system may post to, with its active policy."""

    use_case: UseCase
    policy: PolicyVersion
    compiled: CompiledPolicy
    routing: UseCaseRouting


def _targets(*, ai_system: AiSystem, slugs: set[str]) -> tuple[dict[str, _Target], dict]:
    """The targets among ``slugs``, and a refusal for each slug that is not one.

    One query when every slug is a target (the usual case), two otherwise.
    """
    policies = (PolicyVersion.objects
                .filter(use_case__slug__in=slugs, use_case__ai_systems=ai_system,
                        status=PolicyStatus.ACTIVE)
                .select_related("use_case", "use_case__review_queue", "use_case__qa_queue"))
    targets = {}
    for policy in policies:
        use_case = policy.use_case
        targets[use_case.slug] = _Target(
            use_case=use_case, policy=policy, compiled=compile_policy(policy),
            routing=UseCaseRouting(
                slug=use_case.slug, stage=use_case.stage,
                review_queue_id=use_case.review_queue_id, qa_queue_id=use_case.qa_queue_id,
                automate_qa_rate=use_case.automate_qa_rate,
                optimize_qa_rate=use_case.optimize_qa_rate))

    refusals = {slug: ItemResult(400, errors={"use_case": [f"Unknown use case '{slug}'."]})
                for slug in slugs - set(targets)}
    if refusals:
        allowed = AiSystem.use_cases.through.objects.filter(
            usecase=OuterRef("pk"), aisystem=ai_system)
        for slug, may_post in (UseCase.objects.filter(slug__in=list(refusals))
                               .annotate(may_post=Exists(allowed))
                               .values_list("slug", "may_post")):
            refusals[slug] = (
                ItemResult(400, errors={"use_case": [
                    f"The use case '{slug}' has no active policy yet; ask its owner "
                    f"to activate one."]})
                if may_post else
                ItemResult(403, errors={"detail": (
                    f"This AI system may not post to the use case '{slug}'.")}))
    return targets, refusals


def _refusal(item: dict, targets: dict[str, _Target], refusals: dict) -> ItemResult | None:
    """Why a new decision cannot be taken (400/403), or None. Pure: no queries."""
    slug = item["use_case"]
    if slug in refusals:
        return refusals[slug]
    use_case = targets[slug].use_case
    errors = {}
    for field, schema in (("input", use_case.input_schema),
                          ("output", use_case.output_schema)):
        if problems := contract_errors(schema, item[field]):
            errors[field] = problems
    return ItemResult(400, errors=errors) if errors else None


def submit_decisions(*, ai_system: AiSystem, items: list[dict],
                     now: datetime | None = None) -> list[ItemResult]:
    """Judge and store ``items`` (already shape-checked), answering one result each, in order.

    201: stored now. 200: a replay of a stored decision with the same body (I1),
    even if the use case has changed since. 422: the external_id is taken by a
    different body. 400/403: the use case is unknown, has no active policy, is
    not this system's, or the decision breaks its data contract.
    """
    now = now or timezone.now()
    targets, refusals = _targets(ai_system=ai_system,
                                 slugs={item["use_case"] for item in items})
    hashes = [body_hash(item) for item in items]
    judged = [_refusal(item, targets, refusals) for item in items]

    # Each failed attempt saw a concurrent commit of one of these external_ids,
    # which the next attempt answers as a replay: this ends within len(items) + 1.
    for _attempt in range(len(items) + 1):
        try:
            return _store(ai_system=ai_system, items=items, hashes=hashes, judged=judged,
                          targets=targets, now=now)
        except IntegrityError as exc:
            if not _is_external_id_clash(exc):
                raise
    raise RuntimeError("Decision intake kept colliding with concurrent requests.")


def _is_external_id_clash(exc: IntegrityError) -> bool:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    if constraint is not None:  # PostgreSQL names the constraint
        return constraint == EXTERNAL_ID_CONSTRAINT
    # SQLite names the columns.
    return "exceptions_app_decision.external_id" in str(exc)


@transaction.atomic(durable=True)
def _store(*, ai_system, items, hashes, judged, targets, now) -> list[ItemResult]:
    stored = {
        row.external_id: row
        for row in Decision.objects.filter(
            ai_system=ai_system, external_id__in={item["external_id"] for item in items})
        .select_related("use_case", "policy_version", "case__queue")
    }
    results: list[ItemResult | None] = [None] * len(items)
    first_in_batch: dict[str, int] = {}  # external_id -> index of its new decision
    new_indexes, repeats = [], []
    for index, item in enumerate(items):
        external_id = item["external_id"]
        if external_id in stored:
            first_hash = stored[external_id].body_hash
        elif external_id in first_in_batch:
            first_hash = hashes[first_in_batch[external_id]]
        elif judged[index] is not None:
            results[index] = judged[index]
            continue
        else:
            first_in_batch[external_id] = index
            new_indexes.append(index)
            continue
        if first_hash != hashes[index]:
            results[index] = ItemResult(422, errors={"external_id": [
                f"'{external_id}' was already posted with a different body; "
                f"use a new external_id for a new decision."]})
        else:
            repeats.append(index)

    created = _create(ai_system=ai_system, items=items, hashes=hashes, targets=targets,
                      indexes=new_indexes, now=now)
    for index, decision in zip(new_indexes, created, strict=True):
        results[index] = ItemResult(201, decision=decision)
        stored[decision.external_id] = decision
    for index in repeats:
        results[index] = ItemResult(200, decision=stored[items[index]["external_id"]])
    return results


def _create(*, ai_system, items, hashes, targets, indexes, now) -> list[Decision]:
    if not indexes:
        return []
    routed: list[RoutingResult] = []
    for index in indexes:
        item = items[index]
        target = targets[item["use_case"]]
        evaluation = evaluate(target.compiled, evaluation_context(
            input=item["input"], output=item["output"], confidence=item["confidence"],
            model_version=item["model_version"], meta=item.get("meta")))
        routed.append(route_decision(use_case=target.routing, policy=target.compiled,
                                     evaluation=evaluation, external_id=item["external_id"]))

    case_positions = [n for n, routing in enumerate(routed) if routing.case]
    queues = _queues(targets, {routed[n].case.queue_id for n in case_positions})
    cases = open_cases(
        specs=[NewCase(queue=queues[routed[n].case.queue_id],
                       title=f"{targets[items[indexes[n]]['use_case']].use_case.name}: "
                             f"{items[indexes[n]]['external_id']}",
                       priority=routed[n].case.priority,
                       requires_four_eyes=routed[n].case.four_eyes)
               for n in case_positions],
        actor_label=ai_system.actor_label, now=now,
        audit_data=[{"reason": "qa-sample" if routed[n].qa_sampled else "review"}
                    for n in case_positions])
    case_for = dict(zip(case_positions, cases, strict=True))

    decisions = []
    for n, index in enumerate(indexes):
        item, routing = items[index], routed[n]
        target = targets[item["use_case"]]
        decisions.append(Decision(
            ai_system=ai_system, use_case=target.use_case,
            external_id=item["external_id"], body_hash=hashes[index],
            model_version=item["model_version"], confidence=item["confidence"],
            input=item["input"], output=item["output"],
            explanation=item.get("explanation") or "", meta=item.get("meta") or {},
            received_at=now, policy_version=target.policy, stage=target.routing.stage,
            route=routing.route, reasons=routing.reasons, qa_sampled=routing.qa_sampled,
            case=case_for.get(n)))
    # Every writer inserts external_ids in the same order, so two overlapping
    # batches wait for each other on the unique index instead of deadlocking.
    Decision.objects.bulk_create(sorted(decisions, key=lambda d: d.external_id))

    AuditEvent.objects.bulk_create([
        audit.build(verb="decision.received", object_type="decision", object_id=decision.pk,
                    case_id=decision.case_id, actor_label=ai_system.actor_label, now=now,
                    data={"use_case": decision.use_case.slug,
                          "external_id": decision.external_id,
                          "model_version": decision.model_version,
                          "confidence": decision.confidence,
                          "policy_version": decision.policy_version.number,
                          "stage": decision.stage, "route": decision.route,
                          "reasons": decision.reasons, "qa_sampled": decision.qa_sampled,
                          "body_hash": decision.body_hash})
        for decision in decisions
    ])
    return decisions


def _queues(targets: dict[str, _Target], queue_ids: set[int]) -> dict[int, Queue]:
    """The queues cases go to; those of the use cases came with them, others cost a query."""
    queues = {}
    for target in targets.values():
        for queue in (target.use_case.review_queue, target.use_case.qa_queue):
            if queue is not None:
                queues[queue.pk] = queue
    if missing := queue_ids - set(queues):
        queues.update(Queue.objects.in_bulk(list(missing)))
    return queues
