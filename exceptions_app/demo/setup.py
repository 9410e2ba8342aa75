"""The demo: one use case set up the way a business would run it, with work in flight.

``seed_demo`` builds, through the same services the product uses:

- people: ``reviewer`` and ``reviewer2`` (the ``invoice-reviewers`` group) and
  ``manager`` (``managers``: ``workflows.manage_cases``), with the passwords the README
  lists;
- the ``invoice-approval`` use case with its data contracts and reason codes, and its
  written policy with ordered CEL rules: drafted and proposed by the senior reviewer,
  approved and activated by the owner (``services.policies``, four eyes);
- its process: the RACI matrix (``raci.set_assignments``), a Berlin business-hours
  calendar with German public holidays, an SLA policy per queue with targets per
  priority (``sla.publish_sla_policy``) and a two-level escalation chain ending in a
  declared outcome;
- the ``demo-ai`` system, and work in flight: decisions received over the last business
  days and hours (``intake.submit_decisions``), worked by the reviewers through the case
  services (claim, resolve, approve, ask for information), with the engine's periodic
  jobs (SLA sweep, lease expiry) run at the moments they would have run, so that every
  due time, warning, escalation and audit event is the real one.

Safe to run again: what exists is left alone, so a second run changes nothing; the
work in flight is seeded only into a database without decisions.
"""


from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from exceptions_app.activities import UseCaseActivity as Activity
from exceptions_app.demo.data import (
    AI_SYSTEM_SLUG,
    CALENDAR_NAME,
    CALENDAR_TIME_ZONE,
    DEFAULT_REASON,
    DEMO_QUEUES,
    DEMO_USERS,
    ESCALATION_CHAIN,
    HOLIDAY_COUNTRY,
    INPUT_SCHEMA,
    MANAGERS_GROUP,
    OUTPUT_SCHEMA,
    POLICY_RULES,
    POLICY_TEXT,
    RACI_MATRIX,
    REASON_CODES,
    REVIEWERS,
    REVIEWERS_GROUP,
    SLA_POLICIES,
    USE_CASE_SLUG,
    WORKING_HOURS,
)
from exceptions_app.demo.history import seed_work
from exceptions_app.models import AiSystem, PolicyStatus, PolicyVersion, RuleAction, Stage, UseCase
from exceptions_app.services import policies
from exceptions_app.verbs import DomainVerb
from workflows.models import (
    Calendar,
    EscalationLevel,
    Process,
    Queue,
    RaciAssignment,
    SlaPolicy,
)
from workflows.services import audit, raci, sla


@dataclass(frozen=True)
class DemoSeed:
    use_case: UseCase
    policy: PolicyVersion
    ai_system: AiSystem
    process: Process
    decisions_posted: int  # 0 when the database already had decisions


def seed_demo(*, now: datetime | None = None) -> DemoSeed:
    """Set up the demo (see the module's docstring); changes nothing the second time."""
    now = now or timezone.now()
    # The seed dates its events itself (days of history before ``now``): they are marked
    # backfilled, which verification accepts only when told to (never in production).
    with audit.backfilling():
        with transaction.atomic():
            users = seed_people()
            queues = seed_queues(users=users)
            use_case = seed_use_case(actor=users["manager"], queues=queues, now=now)
            process = seed_process(use_case=use_case, queues=queues, users=users, now=now)
            seed_sla_policies(queues=queues, calendar=seed_calendar(), actor=users["manager"],
                              now=now)
            ai_system = seed_ai_system(use_case=use_case, owner=users["manager"], now=now)
        # The policy services own their transactions (durable): they run one after another.
        policy = seed_policy(use_case=use_case, author=users["reviewer2"], now=now)
        posted = seed_work(ai_system=ai_system, users=users, now=now)
    return DemoSeed(use_case=use_case, policy=policy, ai_system=ai_system, process=process,
                    decisions_posted=posted)


# --- People, queues, the use case ---------------------------------------------------------

def seed_people() -> dict:
    """The demo users by username, in their groups; passwords are set on creation only."""
    User = get_user_model()
    managers, _ = Group.objects.get_or_create(name=MANAGERS_GROUP)
    managers.permissions.add(Permission.objects.get(codename="manage_cases",
                                                    content_type__app_label="workflows"))
    reviewers, _ = Group.objects.get_or_create(name=REVIEWERS_GROUP)
    for username, password, first_name, last_name in DEMO_USERS:
        if not User.objects.filter(username=username).exists():
            User.objects.create_user(username=username, password=password,
                                     email=f"{username}@example.com",
                                     first_name=first_name, last_name=last_name)
    users = {user.username: user for user in
             User.objects.filter(username__in=[username for username, *_ in DEMO_USERS])}
    users["manager"].groups.add(managers)
    reviewers.user_set.add(*(users[username] for username in REVIEWERS))
    # Fresh instances: permissions are cached per instance, and the groups just changed.
    return {user.username: user for user in User.objects.filter(pk__in=[
        user.pk for user in users.values()])}


def seed_queues(*, users: dict) -> dict:
    queues = {}
    for slug, (name, description, blind, response, resolution, members) in DEMO_QUEUES.items():
        queue, _ = Queue.objects.get_or_create(slug=slug, defaults={
            "name": name, "description": description, "blind": blind,
            "response_target": response, "resolution_target": resolution})
        queue.members.add(*(users[username] for username in members))
        queues[slug] = queue
    return queues


def seed_use_case(*, actor, queues: dict, now: datetime) -> UseCase:
    """The invoice use case; its owner is the Accountable of its RACI matrix
    (``seed_process``)."""
    use_case = UseCase.objects.filter(slug=USE_CASE_SLUG).first()
    if use_case is not None:
        return use_case
    use_case = UseCase(
        slug=USE_CASE_SLUG, name="Invoice approval", stage=Stage.ASSIST,
        description="Supplier invoices read by the invoice extractor: approve, hold or reject.",
        input_schema=INPUT_SCHEMA, output_schema=OUTPUT_SCHEMA, reason_codes=REASON_CODES,
        review_queue=queues["invoice-review"], qa_queue=queues["invoice-qa"])
    use_case.full_clean()
    use_case.save()
    audit.record(verb=DomainVerb.USE_CASE_CREATED, object_type="use_case", object_id=use_case.pk,
                 actor=actor, now=now, data={"slug": use_case.slug, "stage": use_case.stage})
    return use_case


def seed_policy(*, use_case: UseCase, author, now: datetime) -> PolicyVersion:
    """Version 1 through its whole life: drafted and proposed by ``author``, approved and
    activated by the owner. A version 1 that exists is taken on from where it stands
    (and left alone once it is past approval and another version is active)."""
    owner = raci.accountable(process=use_case.process, activity=Activity.POLICY_CHANGE)[0]
    policy = PolicyVersion.objects.filter(use_case=use_case, number=1).first()
    if policy is None:
        policy = policies.policy_create_draft(
            use_case=use_case, text=POLICY_TEXT, rules=POLICY_RULES, author=author,
            default_action=RuleAction.REVIEW, default_reason=DEFAULT_REASON,
            default_priority=40, now=now)
    if policy.status == PolicyStatus.DRAFT:
        policy = policies.policy_propose(policy=policy, actor=author, now=now)
    if policy.status == PolicyStatus.PROPOSED:
        policy = policies.policy_approve(policy=policy, actor=owner, now=now)
    if (policy.status == PolicyStatus.APPROVED and not PolicyVersion.objects.filter(
            use_case=use_case, status=PolicyStatus.ACTIVE).exists()):
        policy = policies.policy_activate(policy=policy, actor=owner, now=now)
    return policy


def seed_ai_system(*, use_case: UseCase, owner, now: datetime) -> AiSystem:
    ai_system, created = AiSystem.objects.get_or_create(slug=AI_SYSTEM_SLUG, defaults={
        "name": "Demo invoice extractor", "owner": owner})
    ai_system.use_cases.add(use_case)
    if created:
        audit.record(verb=DomainVerb.AI_SYSTEM_CREATED, object_type="ai_system",
                     object_id=ai_system.pk, actor=owner, now=now,
                     data={"slug": ai_system.slug, "use_cases": [use_case.slug]})
    return ai_system


# --- The process: RACI, calendar, SLA, escalation ----------------------------------------

def seed_process(*, use_case: UseCase, queues: dict, users: dict, now: datetime) -> Process:
    """The use case's process, its queues, its RACI matrix and escalation chain.

    The matrix and the chain are written only while the process has none, so a
    manager's later edits survive another run.
    """
    process = use_case.process
    if process is None:
        process, _ = Process.objects.get_or_create(slug=use_case.slug,
                                                   defaults={"name": use_case.name})
        use_case.process = process
        use_case.save(update_fields=["process"])
    for queue in queues.values():
        if queue.process_id is None:
            queue.process = process
            queue.save(update_fields=["process"])
    if not RaciAssignment.objects.filter(process=process).exists():
        groups = {group.name: group for group in Group.objects.filter(
            name__in=[MANAGERS_GROUP, REVIEWERS_GROUP])}
        for activity, row in RACI_MATRIX.items():
            for role, (usernames, group_names) in row.items():
                raci.set_assignments(
                    process=process, activity=activity, role=role,
                    users=[users[name] for name in usernames],
                    groups=[groups[name] for name in group_names],
                    actor=users["manager"], now=now)
    if not EscalationLevel.objects.filter(process=process).exists():
        for level, target, queue, time_limit, consult, outcome in ESCALATION_CHAIN:
            EscalationLevel.objects.create(
                process=process, level=level, target=target,
                queue=queues[queue] if queue else None, time_limit=time_limit,
                notify_informed=True, consult=consult, outcome=outcome)
        audit.record(verb=DomainVerb.ESCALATION_CHAIN_CREATED, object_type="process",
                     object_id=process.pk, actor=users["manager"], now=now,
                     data={"process": process.slug, "levels": [
                         {"level": level, "target": target, "queue": queue,
                          "time_limit": str(time_limit), "consult": consult,
                          "outcome": outcome}
                         for level, target, queue, time_limit, consult, outcome
                         in ESCALATION_CHAIN]})
    return process


def seed_calendar() -> Calendar:
    calendar, _ = Calendar.objects.get_or_create(name=CALENDAR_NAME, defaults={
        "time_zone": CALENDAR_TIME_ZONE, "working_hours": WORKING_HOURS,
        "holiday_country": HOLIDAY_COUNTRY})
    return calendar


def seed_sla_policies(*, queues: dict, calendar: Calendar, actor, now: datetime) -> None:
    """Version 1 of each queue's SLA policy, for a queue that has none yet."""
    for slug, (warning_fraction, targets) in SLA_POLICIES.items():
        if SlaPolicy.objects.filter(queue=queues[slug]).exists():
            continue
        sla.publish_sla_policy(
            queue=queues[slug], calendar=calendar, warning_fraction=warning_fraction,
            targets=[{"min_priority": priority, "response_target": response,
                      "resolution_target": resolution}
                     for priority, response, resolution in targets],
            actor=actor, now=now)
