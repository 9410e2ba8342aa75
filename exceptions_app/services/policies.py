"""A policy version's life: draft -> proposed -> approved -> active -> retired.

Only a draft changes. From approval on, a version's text and rules are frozen, so
every decision can be traced to the exact rules that judged it (and the compiled
rules are cached by id). Exactly one version per use case is active: activating
one retires the one before, and a rollback is re-activating an earlier version.

Approving and activating are the Accountable owner's (the use case's process's RACI
matrix, ``policy_change`` row, else ``review``) or a superuser's; nobody approves a
version they drafted (four eyes). Every step is audited in its own transaction.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from exceptions_app.activities import DomainActivity
from exceptions_app.models import PolicyStatus, PolicyVersion, Rule, RuleAction, UseCase
from exceptions_app.verbs import DomainVerb
from workflows import actors
from workflows.models import Queue
from workflows.services import audit, raci


class PolicyConflict(Exception):
    """The step does not fit the version's current status (HTTP 409)."""

    def __init__(self, message: str, *, policy: PolicyVersion):
        super().__init__(message)
        self.policy = policy


@dataclass(frozen=True)
class RuleSpec:
    """One rule as its author writes it; the position is its place in the list."""

    name: str
    description: str
    expression: str
    action: str
    queue: Queue | None = None
    priority: int = 50
    four_eyes: bool = False


@transaction.atomic(durable=True)
def policy_create_draft(*, use_case: UseCase, text: str, rules: Sequence[RuleSpec], author,
                        default_action: str = RuleAction.REVIEW,
                        default_reason: str | None = None, default_priority: int = 50,
                        now: datetime | None = None) -> PolicyVersion:
    """A new draft version, numbered after the use case's latest one."""
    # Locking the use case serializes numbering (and activation) per use case.
    use_case = UseCase.objects.select_for_update().get(pk=use_case.pk)
    latest = use_case.policies.aggregate(latest=Max("number"))["latest"] or 0
    policy = PolicyVersion(use_case=use_case, number=latest + 1, text=text,
                           status=PolicyStatus.DRAFT, default_action=default_action,
                           default_priority=default_priority, created_by=author)
    if default_reason:
        policy.default_reason = default_reason
    policy.full_clean(exclude=["created_by"])
    built = _build_rules(rules)
    policy.save()
    _save_rules(policy, built)
    audit.record(verb=DomainVerb.POLICY_DRAFTED, object_type="policy_version", object_id=policy.pk,
                 actor=author, now=now, data={"use_case": use_case.slug, **_snapshot(policy)})
    return policy


@transaction.atomic(durable=True)
def policy_update_draft(*, policy: PolicyVersion, actor, text: str | None = None,
                        rules: Sequence[RuleSpec] | None = None,
                        default_action: str | None = None, default_reason: str | None = None,
                        default_priority: int | None = None,
                        now: datetime | None = None) -> PolicyVersion:
    """Change a draft's text, default or rules (given rules replace all of them)."""
    actors.require(actor)
    policy = _locked(policy)
    if policy.status != PolicyStatus.DRAFT:
        raise PolicyConflict(
            f"{policy} is {policy.status}: only a draft can change. "
            f"Create a new draft for the change instead.", policy=policy)
    before = _snapshot(policy)
    for field, value in (("text", text), ("default_action", default_action),
                         ("default_reason", default_reason),
                         ("default_priority", default_priority)):
        if value is not None:
            setattr(policy, field, value)
    policy.full_clean(exclude=["created_by"])
    built = _build_rules(rules) if rules is not None else None
    policy.save()
    if built is not None:
        policy.rules.all().delete()
        _save_rules(policy, built)
    audit.record(verb=DomainVerb.POLICY_EDITED, object_type="policy_version", object_id=policy.pk,
                 actor=actor, now=now, data={"use_case": policy.use_case.slug,
                                             "before": before, "after": _snapshot(policy)})
    return policy


@transaction.atomic(durable=True)
def policy_propose(*, policy: PolicyVersion, actor, now: datetime | None = None) -> PolicyVersion:
    """Submit a draft for the Accountable owner's approval."""
    actors.require(actor)
    policy = _locked(policy)
    _expect(policy, PolicyStatus.DRAFT, "propose")
    if not policy.rules.exists() and policy.default_action == RuleAction.AUTO:
        raise ValidationError({"rules": [
            "A policy without rules whose default passes everything would let every "
            "decision through unseen; add rules or change the default action."]})
    policy.status = PolicyStatus.PROPOSED
    policy.save(update_fields=["status"])
    audit.record(verb=DomainVerb.POLICY_PROPOSED, object_type="policy_version", object_id=policy.pk,
                 actor=actor, now=now, data={"use_case": policy.use_case.slug,
                                             "number": policy.number})
    return policy


@transaction.atomic(durable=True)
def policy_approve(*, policy: PolicyVersion, actor, now: datetime | None = None) -> PolicyVersion:
    """Approve a proposed version; from now on it is frozen."""
    now = now or timezone.now()
    policy = _locked(policy)
    _expect(policy, PolicyStatus.PROPOSED, "approve")
    _check_accountable(policy, actor, "approve")
    if actor.pk == policy.created_by_id:
        raise PermissionDenied(
            f"You drafted {policy}; another person (the use case's owner) must approve it.")
    policy.status = PolicyStatus.APPROVED
    policy.approved_by = actor
    policy.approved_at = now
    policy.save(update_fields=["status", "approved_by", "approved_at"])
    audit.record(verb=DomainVerb.POLICY_APPROVED, object_type="policy_version", object_id=policy.pk,
                 actor=actor, now=now, data={"use_case": policy.use_case.slug,
                                             **_snapshot(policy)})
    return policy


@transaction.atomic(durable=True)
def policy_activate(*, policy: PolicyVersion, actor, now: datetime | None = None) -> PolicyVersion:
    """Make an approved (or, to roll back, a retired) version the one that judges decisions.

    The version active until now is retired in the same transaction; intake
    picks the new one up with its next request.
    """
    now = now or timezone.now()
    use_case = UseCase.objects.select_for_update().get(pk=policy.use_case_id)
    policy = _locked(policy)
    _expect(policy, (PolicyStatus.APPROVED, PolicyStatus.RETIRED), "activate")
    _check_accountable(policy, actor, "activate")
    previous = use_case.policies.filter(status=PolicyStatus.ACTIVE).first()
    if previous is not None:
        # Retire first: the database allows one active version per use case.
        previous.status = PolicyStatus.RETIRED
        previous.save(update_fields=["status"])
        audit.record(verb=DomainVerb.POLICY_RETIRED, object_type="policy_version",
                     object_id=previous.pk, actor=actor, now=now,
                     data={"use_case": use_case.slug, "number": previous.number,
                           "replaced_by": policy.number})
    rollback = policy.status == PolicyStatus.RETIRED
    policy.status = PolicyStatus.ACTIVE
    policy.activated_at = now
    policy.save(update_fields=["status", "activated_at"])
    audit.record(verb=DomainVerb.POLICY_ACTIVATED, object_type="policy_version",
                 object_id=policy.pk, actor=actor, now=now,
                 data={"use_case": use_case.slug, "number": policy.number,
                       "previous": previous.number if previous else None,
                       "rollback": rollback})
    return policy


def _locked(policy: PolicyVersion) -> PolicyVersion:
    """The version as it is now, locked: two steps on one version run one after the other."""
    return (PolicyVersion.objects.select_for_update(of=("self",))
            .select_related("use_case").get(pk=policy.pk))


def _expect(policy: PolicyVersion, statuses, step: str) -> None:
    statuses = (statuses,) if isinstance(statuses, str) else statuses
    if policy.status not in statuses:
        wanted = " or ".join(PolicyStatus(status).label.lower() for status in statuses)
        raise PolicyConflict(
            f"Cannot {step} {policy}: it is {policy.get_status_display().lower()}, "
            f"and only {wanted} versions can be {step}d.", policy=policy)


def _check_accountable(policy: PolicyVersion, actor, step: str) -> None:
    actors.require(actor)
    # The RACI matrix's Accountable for policy changes (else for review) signs off.
    owners = raci.accountable(process=policy.use_case.process,
                              activity=DomainActivity.POLICY_CHANGE)
    if not (actor.is_superuser or actor.pk in {owner.pk for owner in owners}):
        named = ", ".join(owner.get_username() for owner in owners) or (
            "nobody yet: name one in its RACI matrix")
        raise PermissionDenied(
            f"Only the use case's Accountable owner ({named}) can {step} {policy}.")


def _build_rules(specs: Sequence[RuleSpec]) -> list[Rule]:
    """Unsaved rules, each checked (its CEL too); every problem names the rule and position."""
    rules, problems, seen = [], [], set()
    for position, spec in enumerate(specs, start=1):
        rule = Rule(position=position, name=spec.name, description=spec.description,
                    expression=spec.expression, action=spec.action, queue=spec.queue,
                    priority=spec.priority, four_eyes=spec.four_eyes)
        try:
            rule.full_clean(exclude=["policy"], validate_constraints=False)
        except ValidationError as exc:
            problems.extend(f"Rule {position} '{spec.name}', {field}: {message}"
                            for field, messages in exc.message_dict.items()
                            for message in messages)
        if spec.name in seen:
            problems.append(f"Rule {position} '{spec.name}': another rule has this name; "
                            f"reasons name rules, so each needs its own.")
        seen.add(spec.name)
        rules.append(rule)
    if problems:
        raise ValidationError({"rules": problems})
    return rules


def _save_rules(policy: PolicyVersion, rules: list[Rule]) -> None:
    for rule in rules:
        rule.policy = policy
    Rule.objects.bulk_create(rules)


def _snapshot(policy: PolicyVersion) -> dict:
    return {
        "number": policy.number,
        "text": policy.text,
        "default": {"action": policy.default_action, "reason": policy.default_reason,
                    "priority": policy.default_priority},
        "rules": [{"position": rule.position, "name": rule.name, "expression": rule.expression,
                   "action": rule.action, "queue": rule.queue_id, "priority": rule.priority,
                   "four_eyes": rule.four_eyes, "description": rule.description}
                  for rule in policy.rules.order_by("position")],
    }
