"""SLA policy versions: publish one, re-apply the current one to open cases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from workflows import actors, selectors
from workflows.models import (
    OPEN_STATES,
    RUNNING_STATES,
    AuditEvent,
    Calendar,
    Case,
    Queue,
    SlaPolicy,
    SlaTarget,
)
from workflows.services import audit
from workflows.services.errors import CaseConflict
from workflows.services.sla.clocks import _retarget, next_check_at
from workflows.services.sla.nudges import nudge
from workflows.services.sla.terms import _ZERO, TermsBook
from workflows.verbs import AuditVerb

REAPPLY_CHUNK = 500


def publish_sla_policy(*, queue: Queue, targets: Sequence[Mapping], calendar: Calendar | None,
                       warning_fraction: float, actor, now: datetime,
                       restart_on_reassign: bool = False) -> SlaPolicy:
    """Write the queue's next SLA policy version and make it current (audited).

    ``targets``: ``{"min_priority", "response_target", "resolution_target"}`` each; one
    must start at priority 0 so that every case has one. Cases already open keep the
    version they started under until ``reapply_policy``. ``actor`` must be a manager
    (``PermissionDenied``); ``None`` is the system itself (seeding), audited as such.
    """
    _require_manager(actor, "publish an SLA policy")
    cleaned = _clean_targets(targets)
    if not 0 < warning_fraction < 1:
        raise ValidationError({"warning_fraction": [
            f"Warn at a fraction of the target between 0 and 1 (e.g. 0.75), not "
            f"{warning_fraction}."]})
    with transaction.atomic():
        # Versions of one queue are numbered one after another: serialize on the queue.
        Queue.objects.select_for_update().filter(pk=queue.pk).first()
        previous = SlaPolicy.objects.filter(queue=queue).aggregate(last=Max("version"))["last"]
        SlaPolicy.objects.filter(queue=queue, is_current=True).update(is_current=False)
        policy = SlaPolicy.objects.create(
            queue=queue, version=(previous or 0) + 1, is_current=True, calendar=calendar,
            warning_fraction=warning_fraction, restart_on_reassign=restart_on_reassign,
            created_by=actors.person(actor))
        SlaTarget.objects.bulk_create(SlaTarget(policy=policy, **target) for target in cleaned)
        audit.record(actor=actor, verb=AuditVerb.SLA_POLICY_PUBLISHED, object_type="sla_policy",
                     object_id=policy.pk, now=now,
                     data={"queue": queue.slug, "version": policy.version,
                           "previous_version": previous,
                           "calendar": calendar.name if calendar else None,
                           "warning_fraction": warning_fraction,
                           "restart_on_reassign": restart_on_reassign,
                           "targets": [{"min_priority": target["min_priority"],
                                        "response_target": str(target["response_target"]),
                                        "resolution_target": str(target["resolution_target"])}
                                       for target in cleaned]})
    return policy


def _require_manager(actor, action: str) -> None:
    actors.require(actor)
    if not actors.is_system(actor) and not selectors.is_manager(actor):
        raise PermissionDenied(f"Only managers may {action}.")


def _clean_targets(targets: Sequence[Mapping]) -> list[dict]:
    cleaned, seen = [], set()
    for target in targets:
        row = {"min_priority": int(target.get("min_priority", 0)),
               "response_target": target.get("response_target"),
               "resolution_target": target.get("resolution_target")}
        for field in ("response_target", "resolution_target"):
            if not isinstance(row[field], timedelta) or row[field] <= _ZERO:
                raise ValidationError({"targets": [
                    f"Give each target a positive {field.replace('_', ' ')} (priority "
                    f"{row['min_priority']})."]})
        if row["min_priority"] in seen:
            raise ValidationError({"targets": [
                f"Priority {row['min_priority']} has two targets: keep one."]})
        seen.add(row["min_priority"])
        cleaned.append(row)
    if 0 not in seen:
        raise ValidationError({"targets": [
            "Add a target for priority 0 so that every case has one."]})
    return sorted(cleaned, key=lambda row: row["min_priority"])


def reapply_policy(*, queue: Queue, actor, now: datetime,
                   expected_version: int | None = None) -> int:
    """Move the queue's open cases to its current policy version; answer how many moved.

    Explicit and audited: one ``case.sla_reapplied`` event per case (its own history
    says why its due time moved, before and after) and one ``sla_policy.reapplied``
    summary on the policy. Business time already used stays used. Cases run in chunks,
    each its own transaction with its rows locked, so a long re-application neither
    blocks reviewers for long nor loses a concurrent change; run again, it continues.
    ``actor``: a manager, or ``None`` for the system. ``expected_version``: the version
    the manager means; if another is current by now, nothing moves (``CaseConflict``).
    """
    _require_manager(actor, "re-apply an SLA policy to open cases")
    policy = SlaPolicy.objects.filter(queue=queue, is_current=True).first()
    if policy is None:
        raise CaseConflict("This queue has no SLA policy to re-apply; publish one first.")
    if expected_version is not None and policy.version != expected_version:
        raise CaseConflict(
            f"The queue's current SLA policy is version {policy.version}, not "
            f"{expected_version}: read it, then re-apply the version you mean.")
    moved = 0
    last_id = 0
    while True:
        with transaction.atomic():
            chunk = list(Case.objects.filter(queue=queue, state__in=OPEN_STATES, pk__gt=last_id)
                         .exclude(sla_policy=policy).select_related("queue", "sla_policy")
                         .order_by("pk").select_for_update(of=("self",))[:REAPPLY_CHUNK])
            if not chunk:
                break
            last_id = chunk[-1].pk
            moved += _reapply_chunk(chunk, policy=policy, actor=actor, now=now)
    audit.record(actor=actor, verb=AuditVerb.SLA_POLICY_REAPPLIED, object_type="sla_policy",
                 object_id=policy.pk, now=now,
                 data={"queue": queue.slug, "version": policy.version, "cases": moved})
    return moved


def _reapply_chunk(chunk: list[Case], *, policy: SlaPolicy, actor, now: datetime) -> int:
    book = TermsBook(now=now).load_cases(chunk)
    book.load_queues([chunk[0].queue])  # loads ``policy`` as the queue's current one
    fields = ["sla_policy", "response_due_at", "response_warn_at", "due_at", "warn_at",
              "sla_remaining", "sla_next_check_at", "version"]
    events = []
    for case in chunk:
        old = book.terms(queue_id=case.queue_id, policy_id=case.sla_policy_id,
                         priority=case.priority)
        before = {"policy_version": old.policy.version if old.policy else None,
                  "response_due_at": case.response_due_at, "due_at": case.due_at,
                  "sla_remaining": str(case.sla_remaining) if case.sla_remaining else None}
        case.sla_policy = policy
        rules = book.rules(case)
        if case.escalation_level == 0:
            _retarget(case, old=old, new=rules.terms, now=now)
        if case.state in RUNNING_STATES:
            case.sla_next_check_at = next_check_at(case, rules, now=now)
        case.bump_version()  # the rows are locked: nobody else writes them meanwhile
        events.append(audit.build(
            verb=AuditVerb.CASE_SLA_REAPPLIED, object_type="case", object_id=case.pk, case=case,
            actor=actor, now=now,
            data={"before": before,
                  "after": {"policy_version": policy.version,
                            "response_due_at": case.response_due_at, "due_at": case.due_at,
                            "sla_remaining": (str(case.sla_remaining) if case.sla_remaining
                                              else None)},
                  "version": case.version}))
    Case.objects.bulk_update(chunk, fields)
    AuditEvent.objects.bulk_create(events)
    nudge(chunk, now=now)
    return len(chunk)
