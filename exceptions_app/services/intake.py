"""Decision intake: store, judge and route every AI decision (single and batch).

One code path serves both endpoints: a single POST is a batch of one. The work is
done in bulk: a fixed number of queries per batch, whatever its size. A decision,
its audit event and its case are committed together, or not at all.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from exceptions_app.contracts import contract_errors
from exceptions_app.models import AiSystem, Decision, PolicyStatus, PolicyVersion, UseCase
from exceptions_app.policy import compile_policy, evaluate, evaluation_context
from exceptions_app.routing import UseCaseRouting, route_decision
from workflows.models import AuditEvent, Queue
from workflows.services import audit
from workflows.services.cases import NewCase, open_cases

DECISION_FIELDS = ("use_case", "external_id", "model_version", "confidence", "input",
                   "output", "explanation", "meta")


@dataclass
class ItemResult:
    """The answer for one posted decision: an HTTP status and either a decision or errors."""

    status: int
    decision: Decision | None = None
    errors: dict | None = None


def body_hash(data: dict) -> str:
    canonical = {field: data.get(field) for field in DECISION_FIELDS}
    canonical["explanation"] = canonical["explanation"] or ""
    canonical["meta"] = canonical["meta"] or {}
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class _Target:
    policy: PolicyVersion
    routing: UseCaseRouting


def _targets(slugs: set[str]) -> dict[str, _Target]:
    policies = (PolicyVersion.objects
                .filter(use_case__slug__in=slugs, status=PolicyStatus.ACTIVE)
                .select_related("use_case", "use_case__review_queue", "use_case__qa_queue"))
    targets = {}
    for policy in policies:
        use_case = policy.use_case
        targets[use_case.slug] = _Target(policy=policy, routing=UseCaseRouting(
            slug=use_case.slug, stage=use_case.stage,
            review_queue_id=use_case.review_queue_id, qa_queue_id=use_case.qa_queue_id,
            automate_qa_rate=use_case.automate_qa_rate,
            optimize_qa_rate=use_case.optimize_qa_rate))
    return targets


def submit_decisions(*, ai_system: AiSystem, items: list[dict],
                     now: datetime | None = None) -> list[ItemResult]:
    """Judge and store ``items`` (already shape-checked), answering one result each, in order.

    201: stored now. 200: a replay of a stored decision with the same body (I1).
    422: the external_id is taken by a different body. 400/403: the use case is
    unknown, has no active policy, breaks its data contract, or is not this system's.
    """
    now = now or timezone.now()
    slugs = {item["use_case"] for item in items}
    targets = _targets(slugs)
    known_slugs = set(targets) | set(
        UseCase.objects.filter(slug__in=slugs - set(targets))
        .values_list("slug", flat=True))
    allowed = set(ai_system.use_cases.filter(slug__in=slugs).values_list("slug", flat=True))

    results: list[ItemResult | None] = [None] * len(items)
    hashes = [body_hash(item) for item in items]
    for index, item in enumerate(items):
        slug = item["use_case"]
        if slug not in known_slugs:
            results[index] = ItemResult(400, errors={
                "use_case": [f"Unknown use case '{slug}'."]})
        elif slug not in allowed:
            results[index] = ItemResult(403, errors={
                "detail": f"This AI system may not post to the use case '{slug}'."})
        elif slug not in targets:
            results[index] = ItemResult(400, errors={
                "use_case": [f"The use case '{slug}' has no active policy yet."]})
        else:
            use_case = targets[slug].policy.use_case
            errors = {}
            for field, schema in (("input", use_case.input_schema),
                                  ("output", use_case.output_schema)):
                if problems := contract_errors(schema, item[field]):
                    errors[field] = problems
            if errors:
                results[index] = ItemResult(400, errors=errors)

    pending = [index for index, result in enumerate(results) if result is None]
    for attempt in range(2):
        try:
            _store(ai_system=ai_system, items=items, hashes=hashes, targets=targets,
                   pending=pending, results=results, now=now)
            break
        except IntegrityError:
            # A concurrent request stored one of these external_ids first; the
            # second pass sees it as stored and answers it as a replay.
            if attempt == 1:
                raise
    return results


def _store(*, ai_system, items, hashes, targets, pending, results, now) -> None:
    with transaction.atomic():
        stored = {
            row.external_id: row
            for row in Decision.objects.filter(
                ai_system=ai_system,
                external_id__in={items[index]["external_id"] for index in pending})
            .select_related("use_case", "policy_version", "case__queue")
        }
        first_in_batch: dict[str, int] = {}  # external_id -> index of its first occurrence
        new_indexes, repeats = [], []
        for index in pending:
            external_id = items[index]["external_id"]
            if external_id in stored:
                first_hash = stored[external_id].body_hash
            elif external_id in first_in_batch:
                first_hash = hashes[first_in_batch[external_id]]
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


def _create(*, ai_system, items, hashes, targets, indexes, now) -> list[Decision]:
    if not indexes:
        return []
    queues = {}
    routed = []
    for index in indexes:
        item = items[index]
        target = targets[item["use_case"]]
        evaluation = evaluate(compile_policy(target.policy), evaluation_context(
            input=item["input"], output=item["output"], confidence=item["confidence"],
            model_version=item["model_version"], meta=item.get("meta")))
        routing = route_decision(use_case=target.routing,
                                 policy=compile_policy(target.policy),
                                 evaluation=evaluation, external_id=item["external_id"])
        routed.append(routing)
        if routing.case:
            queues[routing.case.queue_id] = None
    if queues:
        queues = Queue.objects.in_bulk(list(queues))

    case_indexes = [n for n, routing in enumerate(routed) if routing.case]
    cases = open_cases(
        specs=[NewCase(queue=queues[routed[n].case.queue_id],
                       title=f"{targets[items[indexes[n]]['use_case']].policy.use_case.name}: "
                             f"{items[indexes[n]]['external_id']}",
                       priority=routed[n].case.priority,
                       requires_four_eyes=routed[n].case.four_eyes)
               for n in case_indexes],
        actor_label=ai_system.actor_label, now=now,
        audit_data=[{"reason": "qa-sample" if routed[n].qa_sampled else "review"}
                    for n in case_indexes])
    case_for = dict(zip(case_indexes, cases, strict=True))

    decisions = []
    for n, index in enumerate(indexes):
        item, routing = items[index], routed[n]
        target = targets[item["use_case"]]
        decisions.append(Decision(
            ai_system=ai_system, use_case=target.policy.use_case,
            external_id=item["external_id"], body_hash=hashes[index],
            model_version=item["model_version"], confidence=item["confidence"],
            input=item["input"], output=item["output"],
            explanation=item.get("explanation") or "", meta=item.get("meta") or {},
            received_at=now, policy_version=target.policy, stage=target.routing.stage,
            route=routing.route, reasons=routing.reasons, qa_sampled=routing.qa_sampled,
            case=case_for.get(n)))
    Decision.objects.bulk_create(decisions)

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
