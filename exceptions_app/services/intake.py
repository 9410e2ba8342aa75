"""Decision intake: store, judge and route every AI decision (single and batch).

One code path serves both endpoints: a single POST is a batch of one. The work is
done in bulk: a fixed number of queries per batch, whatever its size. A decision,
its audit event and its case are committed together, or not at all. The cases, the
decisions and then the audit events of both are written one statement per table: on
PostgreSQL a batch's rows go by ``COPY`` (its ids taken from the sequences first),
elsewhere and for a single decision by ``INSERT``.

I1 (one decision per AI system and external_id) rests on the unique constraint.
A single decision is inserted first, without looking: the usual post is new, and
a replay fails on the constraint, rolls back and takes the second path. A batch
(and that second path) reads what is already stored, in one query, to answer
replays, and inserts the rest; if a concurrent request committed one of the same
external_ids in between, the insert fails on the constraint, everything rolls
back, and the next attempt answers that item as a replay.
"""

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from exceptions_app.contracts import contract_errors, contract_validator
from exceptions_app.models import (
    AiSystem,
    Decision,
    PolicyStatus,
    PolicyVersion,
    Rule,
    UseCase,
)
from exceptions_app.policy import CompiledPolicy, compile_policy, judge
from exceptions_app.routing import RoutingResult, UseCaseRouting, route_decision
from exceptions_app.services import guardrails, quality
from exceptions_app.stage_models import Guardrails
from exceptions_app.verbs import DomainVerb
from workflows import db, json_codec, process_cache
from workflows.models import AssignmentMode, AuditEvent, Case, Queue
from workflows.process_cache import ProcessCache
from workflows.services import audit
from workflows.services.cases import NewCase, hand_out, new_cases, opened_events

DECISION_FIELDS = ("use_case", "external_id", "model_version", "confidence", "input",
                   "output", "explanation", "meta")
EXTERNAL_ID_CONSTRAINT = "decision_external_id_unique_per_ai_system"


@dataclass(frozen=True)
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
    return hashlib.sha256(json_codec.dumps(canonical, sort_keys=True)).hexdigest()


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
    contracts: tuple  # (field, Contract) for input and output, where there is a schema


def _load_targets(*, ai_system: AiSystem, slugs: set[str]) -> dict[str, _Target | ItemResult]:
    """Each slug's target, or the refusal (400/403) of a decision posted to it.

    One query when every slug is a target (the usual case), two otherwise.
    """
    entries: dict[str, _Target | ItemResult] = {}
    for policy in (PolicyVersion.objects
                   .filter(use_case__slug__in=slugs, use_case__ai_systems=ai_system,
                           status=PolicyStatus.ACTIVE)
                   .select_related("use_case", "use_case__review_queue", "use_case__qa_queue",
                                   "use_case__guardrails")
                   .order_by()):
        use_case = policy.use_case
        entries[use_case.slug] = _Target(
            use_case=use_case, policy=policy, compiled=compile_policy(policy),
            routing=UseCaseRouting(
                slug=use_case.slug, stage=use_case.stage,
                review_queue_id=use_case.review_queue_id, qa_queue_id=use_case.qa_queue_id,
                automate_qa_rate=use_case.automate_qa_rate,
                optimize_qa_rate=use_case.optimize_qa_rate),
            contracts=tuple((field, contract) for field, contract in (
                ("input", contract_validator(use_case.input_schema)),
                ("output", contract_validator(use_case.output_schema))) if contract))

    missing = slugs - set(entries)
    for slug in missing:
        entries[slug] = ItemResult(400, errors={"use_case": [f"Unknown use case '{slug}'."]})
    if missing:
        allowed = AiSystem.use_cases.through.objects.filter(
            usecase=OuterRef("pk"), aisystem=ai_system)
        for slug, may_post in (UseCase.objects.filter(slug__in=list(missing))
                               .annotate(may_post=Exists(allowed)).order_by()
                               .values_list("slug", "may_post")):
            entries[slug] = (
                ItemResult(400, errors={"use_case": [
                    f"The use case '{slug}' has no active policy yet; ask its owner "
                    f"to activate one."]})
                if may_post else
                ItemResult(403, errors={"detail": (
                    f"This AI system may not post to the use case '{slug}'.")}))
    return entries


# What ``_load_targets`` answered, per (AI system, use case slug): rows that change a
# few times a year, read for every decision (``workflows.process_cache``).
_catalogue = ProcessCache("intake-catalogue")
_catalogue.watch(UseCase, PolicyVersion, Rule, Queue, AiSystem, Guardrails,
                 through=[AiSystem.use_cases.through])


def _targets(*, ai_system: AiSystem, slugs: set[str]) -> dict[str, _Target | ItemResult]:
    found = {slug: entry for (_, slug), entry
             in _catalogue.lookup((ai_system.pk, slug) for slug in slugs).items()}
    if missing := slugs - found.keys():
        loaded = _load_targets(ai_system=ai_system, slugs=missing)
        for slug, answer in loaded.items():
            _catalogue.store((ai_system.pk, slug), answer)
        found.update(loaded)
    return found


def _refusal(item: dict, entries: dict[str, _Target | ItemResult]) -> ItemResult | None:
    """Why a new decision cannot be taken (400/403), or None. Pure: no queries."""
    entry = entries[item["use_case"]]
    if isinstance(entry, ItemResult):
        return entry
    errors = {}
    for field, contract in entry.contracts:
        if problems := contract_errors(contract, item[field]):
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
    with process_cache.one_look():  # the caches' tokens in one round trip
        return _submit(ai_system=ai_system, items=items, now=now or timezone.now())


def _submit(*, ai_system: AiSystem, items: list[dict], now: datetime) -> list[ItemResult]:
    entries = _targets(ai_system=ai_system, slugs={item["use_case"] for item in items})
    targets = {slug: entry for slug, entry in entries.items() if isinstance(entry, _Target)}
    hashes = [body_hash(item) for item in items]
    judged = [_refusal(item, entries) for item in items]

    # A single acceptable decision is most likely new: insert it without looking first
    # (a refused one looks, since a replay is answered even if it would now be refused).
    # After a clash, look: each later clash means a concurrent commit of one of these
    # external_ids, which the next attempt answers as a replay, so this ends.
    look_up_stored = len(items) != 1 or judged[0] is not None
    for _attempt in range(len(items) + 2):
        try:
            if not look_up_stored and connection.vendor == "postgresql":
                [decision] = _create(ai_system=ai_system, items=items, hashes=hashes,
                                     targets=targets, indexes=[0], now=now, at_once=True)
                return [ItemResult(201, decision=decision)]
            return _store(ai_system=ai_system, items=items, hashes=hashes, judged=judged,
                          targets=targets, now=now, look_up_stored=look_up_stored)
        except IntegrityError as exc:
            if not _is_external_id_clash(exc):
                raise
            look_up_stored = True
    raise RuntimeError("Decision intake kept colliding with concurrent requests.")


def _is_external_id_clash(exc: IntegrityError) -> bool:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    if constraint is not None:  # PostgreSQL names the constraint
        return constraint == EXTERNAL_ID_CONSTRAINT
    # SQLite names the columns.
    return "exceptions_app_decision.external_id" in str(exc)


@transaction.atomic(durable=True)
def _store(*, ai_system, items, hashes, judged, targets, now,
           look_up_stored: bool) -> list[ItemResult]:
    stored = {
        row.external_id: row
        for row in Decision.objects.filter(
            ai_system=ai_system, external_id__in={item["external_id"] for item in items})
        .select_related("use_case", "policy_version", "case__queue")
    } if look_up_stored else {}
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


def _create(*, ai_system, items, hashes, targets, indexes, now,
            at_once: bool = False) -> list[Decision]:
    """Route and write the new decisions ``indexes`` of ``items``, with their cases and
    audit events, inside ``_store``'s transaction; ``at_once``: a single decision on
    PostgreSQL, outside any, in one statement (``_write_at_once``)."""
    if not indexes:
        return []
    routed: list[RoutingResult] = []
    max_list_items = settings.MAX_RULE_LIST_ITEMS
    for index in indexes:
        item = items[index]
        target = targets[item["use_case"]]
        evaluation = judge(
            target.compiled, input=item["input"], output=item["output"],
            confidence=item["confidence"], model_version=item["model_version"],
            meta=item.get("meta"), max_list_items=max_list_items)
        routed.append(route_decision(use_case=target.routing, policy=target.compiled,
                                     evaluation=evaluation, external_id=item["external_id"]))
    # Kill switch, daily caps, probation and QA strata may hold a route back (a fixed
    # number of statements per batch, none when a use case sets none of them).
    routed = guardrails.hold_back(now=now, batch=[
        guardrails.Routed(use_case=targets[items[index]["use_case"]].use_case,
                          item=items[index], routing=routing,
                          priority=targets[items[index]["use_case"]].compiled.default_priority)
        for index, routing in zip(indexes, routed, strict=True)])

    case_positions = [n for n, routing in enumerate(routed) if routing.case]
    queues = _queues(targets, {routed[n].case.queue_id for n in case_positions})
    cases = new_cases(
        specs=[NewCase(queue=queues[routed[n].case.queue_id],
                       title=f"{targets[items[indexes[n]]['use_case']].use_case.name}: "
                             f"{items[indexes[n]]['external_id']}",
                       priority=routed[n].case.priority,
                       requires_four_eyes=routed[n].case.four_eyes,
                       subject=items[indexes[n]]["input"])
               for n in case_positions],
        now=now)
    case_for = dict(zip(case_positions, cases, strict=True))

    decisions = []
    for n, index in enumerate(indexes):
        item, routing = items[index], routed[n]
        target = targets[item["use_case"]]
        decisions.append({
            "ai_system": ai_system, "use_case": target.use_case,
            "external_id": item["external_id"], "body_hash": hashes[index],
            "model_version": item["model_version"], "confidence": item["confidence"],
            "input": item["input"], "output": item["output"],
            "explanation": item.get("explanation") or "", "meta": item.get("meta") or {},
            "received_at": now, "policy_version": target.policy,
            "stage": target.routing.stage, "route": routing.route, "reasons": routing.reasons,
            "qa_sampled": routing.qa_sampled, "case": case_for.get(n)})
    writing = {"cases": cases, "decisions": decisions, "actor_label": ai_system.actor_label,
               "case_reasons": ["qa-sample" if routed[n].qa_sampled else "review"
                                for n in case_positions], "now": now}
    if at_once and all(case.queue.assignment_mode == AssignmentMode.PULL for case in cases):
        # Inside a caller's transaction, a savepoint keeps a clash from aborting it.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            stored = _write_at_once(**writing)
        hand_out(cases, now=now)  # a pull queue's: only nudges, after the commit
        return stored
    # (A push queue hands the case out in the same transaction.)
    with transaction.atomic() if at_once else nullcontext():
        write = (_write_by_copy if connection.vendor == "postgresql"
                 and len(decisions) >= COPY_FROM else _write_by_orm)
        stored = write(**writing)
        quality.count_intake(stored)
        hand_out(cases, now=now)
    return stored


# From this many new decisions on, PostgreSQL takes them by COPY; fewer go by INSERT,
# which costs fewer round trips.
COPY_FROM = 2


def _write_by_orm(*, cases: list[Case], decisions: list[dict], actor_label: str,
                  case_reasons: list[str], now: datetime) -> list[Decision]:
    """The cases, the decisions, then all their audit events in one INSERT each."""
    Case.objects.bulk_create(cases)
    stored = [Decision(**fields) for fields in decisions]
    Decision.objects.bulk_create(_in_insert_order(stored))
    AuditEvent.objects.bulk_create([
        audit.build(**event, actor_label=actor_label, now=now)
        for event in _events(cases=cases, decisions=stored, case_reasons=case_reasons)])
    return stored


def _write_by_copy(*, cases: list[Case], decisions: list[dict], actor_label: str,
                   case_reasons: list[str], now: datetime) -> list[Decision]:
    """The same rows as ``_write_by_orm``, in four statements whatever their number:
    the ids of the cases and decisions are taken from their sequences first (the audit
    events hash them), then each table's rows go by one ``COPY``."""
    case_ids, decision_ids = db.reserve_ids((Case, len(cases)), (Decision, len(decisions)))
    for case, pk in zip(cases, case_ids, strict=True):
        db.mark_saved(case, pk=pk)
    stored = [_stored_decision(pk, fields)
              for fields, pk in zip(decisions, decision_ids, strict=True)]
    db.copy_objects(Case, cases)
    db.copy_objects(Decision, _in_insert_order(stored))
    db.copy_rows(AuditEvent._meta.db_table, audit.ROW_COLUMNS, (
        audit.row(**event, actor_label=actor_label, now=now)
        for event in _events(cases=cases, decisions=stored, case_reasons=case_reasons)))
    return stored


def _write_at_once(*, cases: list[Case], decisions: list[dict], actor_label: str,
                   case_reasons: list[str], now: datetime) -> list[Decision]:
    """The rows of ``_write_by_copy`` and the quality counts, in two round trips and no
    transaction: the ids first (the audit events hash them), then everything in one
    statement (``db.write_at_once``), which stores all of it or, on a clash of I1's
    constraint, nothing."""
    case_ids, decision_ids = db.reserve_ids((Case, len(cases)), (Decision, len(decisions)))
    for case, pk in zip(cases, case_ids, strict=True):
        db.mark_saved(case, pk=pk)
    stored = [_stored_decision(pk, fields)
              for fields, pk in zip(decisions, decision_ids, strict=True)]
    events = [audit.row(**event, actor_label=actor_label, now=now)
              for event in _events(cases=cases, decisions=stored, case_reasons=case_reasons)]
    db.write_at_once(objects=[(Case, cases), (Decision, stored)],
                     rows=[(AuditEvent, audit.ROW_COLUMNS, events)],
                     counters=quality.intake_counts(stored))
    return stored


_DECISION_FIELDS = Decision._meta.concrete_fields
_DECISION_RELATIONS = [field for field in _DECISION_FIELDS if field.is_relation]


def _stored_decision(pk: int, fields: dict) -> Decision:
    """The decision ``fields`` describe, stored under ``pk``: built the way Django builds
    one it reads (positional values), at a third of the cost of ``Decision(**fields)``."""
    values = {"id": pk, **fields}
    decision = db.instance_as_read(Decision, [
        (getattr(values.get(field.name), "pk", None) if field.is_relation
         else values[field.name] if field.name in values else field.get_default())
        for field in _DECISION_FIELDS])
    for field in _DECISION_RELATIONS:
        if values.get(field.name) is not None:
            field.set_cached_value(decision, values[field.name])
    return decision


def _in_insert_order(decisions: list[Decision]) -> list[Decision]:
    # Every writer inserts external_ids in the same order, so two overlapping
    # batches wait for each other on the unique index instead of deadlocking.
    return sorted(decisions, key=lambda decision: decision.external_id)


def _events(*, cases: list[Case], decisions: list[Decision], case_reasons: list[str]):
    """The audit events of a write: each case's opening, then each decision's receipt."""
    yield from opened_events(cases=cases, audit_data=[{"reason": reason}
                                                      for reason in case_reasons])
    for decision in decisions:
        yield {"verb": DomainVerb.DECISION_RECEIVED, "object_type": "decision",
               "object_id": decision.pk, "case_id": decision.case_id,
               "data": {"use_case": decision.use_case.slug,
                        "external_id": decision.external_id,
                        "model_version": decision.model_version,
                        "confidence": decision.confidence,
                        "policy_version": decision.policy_version.number,
                        "stage": decision.stage, "route": decision.route,
                        "reasons": decision.reasons, "qa_sampled": decision.qa_sampled,
                        "body_hash": decision.body_hash}}


def input_search_values(*, subject) -> list:
    """What the case list's search finds a decision's case by, beside its title (the
    use case and external id): the values of its input (``hooks.search_values``)."""
    return list(subject.values()) if isinstance(subject, dict) else []


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
