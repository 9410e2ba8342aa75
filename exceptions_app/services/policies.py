"""A policy version's life: draft -> proposed -> approved -> active -> retired.

The steps are django-fsm transitions on ``PolicyVersion.status`` (a protected field:
these services are its one writer); each service locks the version, asks the state
machine whether the step fits (``PolicyConflict``, HTTP 409, when it does not), checks
who asks (``PermissionDenied``), saves and writes one audit event per version changed.

Only a draft changes. From approval on, a version's text and rules are frozen, so
every decision can be traced to the exact rules that judged it (and the compiled
rules are cached by id). Exactly one version per use case is active: activating
one retires the one before, in the same transaction.

Rollback is a new activation of an earlier version, not a copy of it: the version
that judged decisions before judges them again under its own number, so a decision's
``policy_version`` still names the exact text and rules, and the trail shows one
``policy.rolled_back`` event with the reason beside the retirement it caused.

Drafting and proposing are for the people the use case's RACI matrix names
Responsible or Accountable for ``policy_change`` (or its business owner), and managers.
Approving, activating and rolling back are the Accountable owner's (``policy_change``
row, else ``review``) or a superuser's; nobody approves a version they drafted (four
eyes). Every step is audited in its own transaction.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_fsm import can_proceed

from exceptions_app import rule_types
from exceptions_app.activities import DomainActivity
from exceptions_app.models import PolicyStatus, PolicyVersion, Rule, RuleAction, UseCase
from exceptions_app.verbs import DomainVerb
from workflows import actors
from workflows.models import Activity, Queue, RaciRole
from workflows.selectors import is_manager
from workflows.services import audit, raci
from workflows.services.errors import Conflict


class PolicyConflict(Conflict):
    """The step does not fit the version's current status (HTTP 409)."""

    def __init__(self, message: str, *, policy: PolicyVersion):
        super().__init__(message)
        self.policy = policy


def may_draft(*, user, use_case: UseCase) -> bool:
    """May ``user`` write and propose drafts of ``use_case``'s policy? Its RACI matrix's
    Responsible or Accountable for ``policy_change``, its business owner, a manager."""
    if actors.is_system(user):
        return True
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser or is_manager(user):
        return True
    people = [*raci.holders(process=use_case.process, activity=DomainActivity.POLICY_CHANGE,
                            role=RaciRole.RESPONSIBLE),
              *raci.accountable(process=use_case.process,
                                activity=DomainActivity.POLICY_CHANGE),
              *raci.accountable(process=use_case.process, activity=Activity.REVIEW)]
    return user.pk in {person.pk for person in people}


def may_approve(*, user, use_case: UseCase) -> bool:
    """The Accountable for ``policy_change`` (else for ``review``), or a superuser."""
    if actors.is_system(user):
        return True
    if not (user and user.is_authenticated):
        return False
    owners = raci.accountable(process=use_case.process, activity=DomainActivity.POLICY_CHANGE)
    return user.is_superuser or user.pk in {owner.pk for owner in owners}


def _check_may_draft(use_case: UseCase, actor) -> None:
    actors.require(actor)
    if not may_draft(user=actor, use_case=use_case):
        raise PermissionDenied(
            f"Only the people {use_case.slug}'s RACI matrix names Responsible or "
            f"Accountable for policy changes (or a manager) may draft and propose its policy.")


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

    @classmethod
    def of(cls, rule: Rule) -> "RuleSpec":
        return cls(name=rule.name, description=rule.description, expression=rule.expression,
                   action=rule.action, queue=rule.queue, priority=rule.priority,
                   four_eyes=rule.four_eyes)


@transaction.atomic(durable=True)
def policy_create_draft(*, use_case: UseCase, text: str, rules: Sequence[RuleSpec], author,
                        default_action: str = RuleAction.REVIEW,
                        default_reason: str | None = None, default_priority: int = 50,
                        now: datetime | None = None) -> PolicyVersion:
    """A new draft version, numbered after the use case's latest one."""
    _check_may_draft(use_case, author)
    # Locking the use case serializes numbering (and activation) per use case.
    use_case = UseCase.objects.select_for_update().get(pk=use_case.pk)
    latest = use_case.policies.aggregate(latest=Max("number"))["latest"] or 0
    policy = PolicyVersion(use_case=use_case, number=latest + 1, text=text,
                           status=PolicyStatus.DRAFT, default_action=default_action,
                           default_priority=default_priority, created_by=author)
    if default_reason:
        policy.default_reason = default_reason
    policy.full_clean(exclude=["created_by", "status"])  # status: its transitions
    built = _build_rules(rules, use_case=use_case)
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
    policy = _locked(policy)
    _check_may_draft(policy.use_case, actor)
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
    policy.full_clean(exclude=["created_by", "status"])  # status: its transitions
    built = _build_rules(rules, use_case=policy.use_case) if rules is not None else None
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
    policy = _locked(policy)
    _expect(policy, policy.propose, "propose")
    _check_may_draft(policy.use_case, actor)
    if not policy.rules.exists() and policy.default_action == RuleAction.AUTO:
        raise ValidationError({"rules": [
            "A policy without rules whose default passes everything would let every "
            "decision through unseen; add rules or change the default action."]})
    # Rules saved before type-checking existed, or a contract changed since: checked again.
    _build_rules([RuleSpec.of(rule) for rule in policy.rules.order_by("position")],
                 use_case=policy.use_case)
    policy.propose()
    policy.save(update_fields=["status"])
    audit.record(verb=DomainVerb.POLICY_PROPOSED, object_type="policy_version", object_id=policy.pk,
                 actor=actor, now=now, data={"use_case": policy.use_case.slug,
                                             "number": policy.number})
    return policy


@transaction.atomic(durable=True)
def policy_send_back(*, policy: PolicyVersion, actor, reason: str,
                     now: datetime | None = None) -> PolicyVersion:
    """A proposed version back to draft, with the reason: the approver's "not like
    this", or its author taking it back to change it."""
    policy = _locked(policy)
    _expect(policy, policy.send_back, "send back")
    actors.require(actor)
    if actor.pk != policy.created_by_id:
        _check_accountable(policy, actor, "send back")
    reason = _required(reason, field="reason", what="why it goes back to draft")
    policy.send_back()
    policy.save(update_fields=["status"])
    audit.record(verb=DomainVerb.POLICY_SENT_BACK, object_type="policy_version",
                 object_id=policy.pk, actor=actor, now=now,
                 data={"use_case": policy.use_case.slug, "number": policy.number,
                       "reason": reason})
    return policy


@transaction.atomic(durable=True)
def policy_approve(*, policy: PolicyVersion, actor, now: datetime | None = None) -> PolicyVersion:
    """Approve a proposed version; from now on it is frozen."""
    now = now or timezone.now()
    policy = _locked(policy)
    _expect(policy, policy.approve, "approve")
    _check_accountable(policy, actor, "approve")
    if actor.pk == policy.created_by_id:
        raise PermissionDenied(
            f"You drafted {policy}; another person (the use case's owner) must approve it.")
    policy.approve(by=actor, at=now)
    policy.save(update_fields=["status", "approved_by", "approved_at"])
    audit.record(verb=DomainVerb.POLICY_APPROVED, object_type="policy_version", object_id=policy.pk,
                 actor=actor, now=now, data={"use_case": policy.use_case.slug,
                                             **_snapshot(policy)})
    return policy


@transaction.atomic(durable=True)
def policy_activate(*, policy: PolicyVersion, actor, now: datetime | None = None) -> PolicyVersion:
    """Make an approved version the one that judges decisions.

    The version active until now is retired in the same transaction; intake
    picks the new one up with its next request.
    """
    return _activate(policy=policy, actor=actor, now=now, reason=None)


@transaction.atomic(durable=True)
def policy_rollback(*, policy: PolicyVersion, actor, reason: str,
                    now: datetime | None = None) -> PolicyVersion:
    """Judge decisions with an earlier version again, in one step, saying why.

    ``policy`` is a retired (or approved, never activated) version of the use case;
    the active one is retired in the same transaction.
    """
    return _activate(policy=policy, actor=actor, now=now,
                     reason=_required(reason, field="reason", what="why you roll back"))


def _activate(*, policy: PolicyVersion, actor, now: datetime | None,
              reason: str | None) -> PolicyVersion:
    now = now or timezone.now()
    use_case = UseCase.objects.select_for_update().get(pk=policy.use_case_id)
    policy = _locked(policy)
    step = "activate" if reason is None else "roll back to"
    if reason is None:
        _expect(policy, policy.activate, step, statuses=(PolicyStatus.APPROVED,))
    else:
        _expect(policy, policy.activate, step)
    _check_accountable(policy, actor, step)
    previous = use_case.policies.filter(status=PolicyStatus.ACTIVE).first()
    if previous is not None:
        # Retire first: the database allows one active version per use case.
        previous.retire()
        previous.save(update_fields=["status"])
        audit.record(verb=DomainVerb.POLICY_RETIRED, object_type="policy_version",
                     object_id=previous.pk, actor=actor, now=now,
                     data={"use_case": use_case.slug, "number": previous.number,
                           "replaced_by": policy.number})
    rollback = reason is not None or policy.status == PolicyStatus.RETIRED
    policy.activate(at=now)
    policy.save(update_fields=["status", "activated_at"])
    data = {"use_case": use_case.slug, "number": policy.number,
            "previous": previous.number if previous else None, "rollback": rollback}
    if reason is not None:
        audit.record(verb=DomainVerb.POLICY_ROLLED_BACK, object_type="policy_version",
                     object_id=policy.pk, actor=actor, now=now, data={**data, "reason": reason})
    else:
        audit.record(verb=DomainVerb.POLICY_ACTIVATED, object_type="policy_version",
                     object_id=policy.pk, actor=actor, now=now, data=data)
    return policy


def _locked(policy: PolicyVersion) -> PolicyVersion:
    """The version as it is now, locked: two steps on one version run one after the other."""
    return (PolicyVersion.objects.select_for_update(of=("self",))
            .select_related("use_case").get(pk=policy.pk))


def _expect(policy: PolicyVersion, transition, step: str, *, statuses=None) -> None:
    """The state machine decides whether ``step`` fits (``statuses`` narrows it)."""
    sources = statuses or [each.source for each in policy.get_all_status_transitions()
                           if each.name == transition.__name__]
    if not can_proceed(transition) or policy.status not in sources:
        wanted = " or ".join(PolicyStatus(status).label.lower() for status in sources)
        raise PolicyConflict(
            f"Cannot {step} {policy}: it is {policy.get_status_display().lower()}, "
            f"and only {wanted} versions can be {_past(step)}.", policy=policy)


def _past(step: str) -> str:
    verb, _, rest = step.partition(" ")
    done = {"send": "sent", "roll": "rolled"}.get(verb, verb.rstrip("e") + "ed")
    return f"{done} {rest}".strip()


def _required(value: str | None, *, field: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: [f"Say {what}."]})
    return value


def _check_accountable(policy: PolicyVersion, actor, step: str) -> None:
    actors.require(actor)
    # The RACI matrix's Accountable for policy changes (else for review) signs off.
    if not may_approve(user=actor, use_case=policy.use_case):
        owners = raci.accountable(process=policy.use_case.process,
                                  activity=DomainActivity.POLICY_CHANGE)
        named = ", ".join(owner.get_username() for owner in owners) or (
            "nobody yet: name one in its RACI matrix")
        raise PermissionDenied(
            f"Only the use case's Accountable owner ({named}) can {step} {policy}.")


def _build_rules(specs: Sequence[RuleSpec], *, use_case: UseCase) -> list[Rule]:
    """Unsaved rules, each checked (its CEL too, typed against the use case's data
    contract); every problem names the rule and position."""
    contract = rule_types.Contract.of(use_case)
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
        else:
            problems.extend(f"Rule {position} '{spec.name}', expression: {problem}"
                            for problem in rule_types.problems(spec.expression,
                                                               contract=contract))
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
