"""The demo: one use case set up the way a business would run it, with work in flight.

``seed_demo`` builds, through the same services the product uses:

- people: ``reviewer`` and ``reviewer2`` (the ``invoice-reviewers`` group, role
  ``reviewers``), ``manager`` (roles ``managers``: ``workflows.manage_cases``, and
  ``owners``), ``auditor`` (role ``auditors``: reads everything, changes nothing) and
  ``admin`` (a superuser, for the Django admin), with the passwords the README lists; the
  role groups and their permissions come from ``exceptions_app.roles``;
- the ``invoice-approval`` use case with its data contracts and reason codes, and its
  written policy with ordered CEL rules: drafted and proposed by the senior reviewer,
  approved and activated by the owner (``services.policies``, four eyes);
- its process: the RACI matrix (``raci.set_assignments``), a Berlin business-hours
  calendar with German public holidays, an SLA policy per queue with targets per
  priority (``sla.publish_sla_policy``) and a two-level escalation chain ending in a
  declared outcome;
- a second use case, ``intercompany-invoices``, in the *automate* stage: what its
  rules pass is approved and 30% of that is sampled into the blind QA queue; what they
  do not pass goes to a desk that works around the clock (a 24/7 calendar), so cases
  at risk and breached exist whatever the time of day;
- the ``demo-ai`` system, posting to both, with a signing secret and, when bin/demo
  gives one, the callback URL of its webhook receiver (``demo.receiver``); and work in
  flight: decisions received over the last business
  days and hours (``intake.submit_decisions``), worked by the reviewers through the case
  services (claim, resolve, approve, ask for information), with the engine's periodic
  jobs (SLA sweep, lease expiry) run at the moments they would have run, so that every
  due time, warning, escalation and audit event is the real one.

Safe to run again: what exists is left alone, so a second run changes nothing; each
use case's work in flight is seeded only while it has no decisions.
"""


from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from exceptions_app.activities import UseCaseActivity as Activity
from exceptions_app.demo import data
from exceptions_app.demo.history import seed_intercompany_work, seed_work
from exceptions_app.models import AiSystem, PolicyStatus, PolicyVersion, RuleAction, Stage, UseCase
from exceptions_app.roles import setup_roles
from exceptions_app.services import guardrails, policies
from exceptions_app.services import use_cases as ai_systems
from exceptions_app.verbs import DomainVerb
from workflows.actors import SYSTEM
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
    second_use_case: UseCase
    decisions_posted: int  # 0 when the use cases already had decisions


def seed_demo(*, now: datetime | None = None, callback_url: str | None = None) -> DemoSeed:
    """Set up the demo (see the module's docstring); changes nothing the second time.

    ``callback_url``: where demo-ai's webhooks go (bin/demo's receiver); None leaves the
    system's callback URL as it is.
    """
    now = now or timezone.now()
    # The seed dates its events itself (days of history before ``now``): they are marked
    # backfilled, which verification accepts only when told to (never in production).
    with audit.backfilling():
        with transaction.atomic():
            users = seed_people()
            manager = users["manager"]
            queues = seed_queues(users=users)
            use_case = seed_use_case(actor=manager, queues=queues, now=now)
            process = seed_process(
                use_case=use_case, queues=[queues[slug] for slug in data.USE_CASE_QUEUES],
                users=users, chain=data.ESCALATION_CHAIN, now=now)
            office = seed_calendar(name=data.CALENDAR_NAME, time_zone=data.CALENDAR_TIME_ZONE,
                                   working_hours=data.WORKING_HOURS,
                                   holiday_country=data.HOLIDAY_COUNTRY)
            seed_sla_policies(targets_by_queue=data.SLA_POLICIES, queues=queues, calendar=office,
                              actor=manager, now=now)
            second = seed_intercompany_use_case(actor=manager, queues=queues, now=now)
            seed_process(use_case=second,
                         queues=[queues[slug] for slug in data.INTERCOMPANY_QUEUES],
                         users=users, chain=data.INTERCOMPANY_ESCALATION_CHAIN, now=now)
            always_open = seed_calendar(name=data.ALWAYS_OPEN_CALENDAR_NAME, time_zone="UTC",
                                        working_hours=data.ALWAYS_OPEN_HOURS)
            seed_sla_policies(targets_by_queue=data.INTERCOMPANY_SLA_POLICIES, queues=queues,
                              calendar=always_open, actor=manager, now=now)
            ai_system = seed_ai_system(use_cases=[use_case, second], owner=manager,
                                       callback_url=callback_url, now=now)
        # The policy services own their transactions (durable): they run one after another.
        policy = seed_policy(use_case=use_case, author=users["reviewer2"], text=data.POLICY_TEXT,
                             rules=data.POLICY_RULES, default_action=RuleAction.REVIEW,
                             default_reason=data.DEFAULT_REASON, now=now)
        seed_policy(use_case=second, author=users["reviewer2"],
                    text=data.INTERCOMPANY_POLICY_TEXT, rules=data.INTERCOMPANY_RULES,
                    default_action=RuleAction.AUTO,
                    default_reason=data.INTERCOMPANY_DEFAULT_REASON, now=now)
        posted = seed_work(ai_system=ai_system, users=users, now=now)
        posted += seed_intercompany_work(ai_system=ai_system, now=now)
        seed_proposed_revision(use_case=use_case, author=users["reviewer2"], now=now)
        seed_guardrails(use_cases={use_case.slug: use_case, second.slug: second},
                        actor=manager, now=now)
    return DemoSeed(use_case=use_case, policy=policy, ai_system=ai_system, process=process,
                    second_use_case=second, decisions_posted=posted)


def seed_guardrails(*, use_cases: dict, actor, now: datetime) -> None:
    """Gates at the demo's scale (its history is days, not months) and the guardrails of
    the automated use case, set by the owner through the service like any change."""
    for slug, settings in data.GUARDRAILS.items():
        guardrails.update_guardrails(use_case=use_cases[slug], actor=actor, now=now,
                                     **settings)


# --- People, queues, the use cases --------------------------------------------------------

def seed_people() -> dict:
    """The demo users by username, in their groups, and the admin's superuser; passwords
    are set on creation only."""
    User = get_user_model()
    roles = setup_roles(actor=SYSTEM)
    reviewers, _ = Group.objects.get_or_create(name=data.REVIEWERS_GROUP)
    for username, password, first_name, last_name in data.DEMO_USERS:
        if not User.objects.filter(username=username).exists():
            User.objects.create_user(username=username, password=password,
                                     email=f"{username}@example.com",
                                     first_name=first_name, last_name=last_name)
    username, password, first_name, last_name = data.DEMO_ADMIN
    if not User.objects.filter(username=username).exists():
        User.objects.create_superuser(username=username, password=password,
                                      email=f"{username}@example.com",
                                      first_name=first_name, last_name=last_name)
    usernames = [username for username, *_ in data.DEMO_USERS]
    users = {user.username: user for user in User.objects.filter(username__in=usernames)}
    for group, usernames in data.ROLE_MEMBERS.items():
        roles[group].user_set.add(*(users[username] for username in usernames))
    reviewers.user_set.add(*(users[username] for username in data.REVIEWERS))
    # Fresh instances: permissions are cached per instance, and the groups just changed.
    return {user.username: user for user in User.objects.filter(pk__in=[
        user.pk for user in users.values()])}


def seed_queues(*, users: dict) -> dict:
    queues = {}
    for slug, (name, description, blind, response, resolution, members) in (
            data.DEMO_QUEUES.items()):
        queue, _ = Queue.objects.get_or_create(slug=slug, defaults={
            "name": name, "description": description, "blind": blind,
            "response_target": response, "resolution_target": resolution})
        queue.members.add(*(users[username] for username in members))
        queues[slug] = queue
    return queues


def seed_use_case(*, actor, queues: dict, now: datetime) -> UseCase:
    """The invoice use case; its owner is the Accountable of its RACI matrix
    (``seed_process``)."""
    return _use_case(
        actor=actor, now=now, slug=data.USE_CASE_SLUG, name="Invoice approval",
        stage=Stage.ASSIST,
        description="Supplier invoices read by the invoice extractor: approve, hold or reject.",
        review_queue=queues["invoice-review"], qa_queue=queues["invoice-qa"])


def seed_intercompany_use_case(*, actor, queues: dict, now: datetime) -> UseCase:
    """The automated use case whose approvals are sampled into the blind QA queue."""
    return _use_case(
        actor=actor, now=now, slug=data.INTERCOMPANY_SLUG, name="Intercompany invoices",
        stage=Stage.AUTOMATE,
        description="Invoices between the group's own companies, read by the same "
                    "extractor: approved automatically, a sample checked blind.",
        review_queue=queues["intercompany-review"], qa_queue=queues["invoice-qa"],
        automate_qa_rate=data.INTERCOMPANY_QA_RATE)


def _use_case(*, actor, now: datetime, slug: str, stage: str, **settings) -> UseCase:
    """A use case with the invoice contracts and reason codes, created at ``stage``.

    The stage is given at creation: a stage is earned with months of evidence and the
    owner's sign-off (``services/stages.py``), and the demo starts where a business would
    be after that.
    """
    use_case = UseCase.objects.filter(slug=slug).first()
    if use_case is not None:
        return use_case
    use_case = UseCase(slug=slug, stage=stage, input_schema=data.INPUT_SCHEMA,
                       output_schema=data.OUTPUT_SCHEMA, reason_codes=data.REASON_CODES,
                       summary_fields=data.SUMMARY_FIELDS, **settings)
    use_case.full_clean()
    use_case.save()
    audit.record(verb=DomainVerb.USE_CASE_CREATED, object_type="use_case", object_id=use_case.pk,
                 actor=actor, now=now, data={"slug": use_case.slug, "stage": use_case.stage})
    return use_case


def seed_policy(*, use_case: UseCase, author, text: str, rules, default_action: str,
                default_reason: str, now: datetime) -> PolicyVersion:
    """Version 1 through its whole life: drafted and proposed by ``author``, approved and
    activated by the owner. A version 1 that exists is taken on from where it stands
    (and left alone once it is past approval and another version is active)."""
    owner = raci.accountable(process=use_case.process, activity=Activity.POLICY_CHANGE)[0]
    policy = PolicyVersion.objects.filter(use_case=use_case, number=1).first()
    if policy is None:
        policy = policies.policy_create_draft(
            use_case=use_case, text=text, rules=rules, author=author,
            default_action=default_action, default_reason=default_reason,
            default_priority=40, now=now)
    if policy.status == PolicyStatus.DRAFT:
        policy = policies.policy_propose(policy=policy, actor=author, now=now)
    if policy.status == PolicyStatus.PROPOSED:
        policy = policies.policy_approve(policy=policy, actor=owner, now=now)
    if (policy.status == PolicyStatus.APPROVED and not PolicyVersion.objects.filter(
            use_case=use_case, status=PolicyStatus.ACTIVE).exists()):
        policy = policies.policy_activate(policy=policy, actor=owner, now=now)
    return policy


def seed_proposed_revision(*, use_case: UseCase, author, now: datetime) -> PolicyVersion:
    """Version 2 of the invoice policy, drafted and proposed by ``author`` and waiting for
    the owner: what the backtest, the shadow and the diff are tried on. Seeded once."""
    policy = PolicyVersion.objects.filter(use_case=use_case, number=2).first()
    if policy is None:
        policy = policies.policy_create_draft(
            use_case=use_case, text=data.REVISED_POLICY_TEXT, rules=data.REVISED_POLICY_RULES,
            author=author, default_action=RuleAction.REVIEW,
            default_reason=data.DEFAULT_REASON, default_priority=40, now=now)
    if policy.status == PolicyStatus.DRAFT:
        policy = policies.policy_propose(policy=policy, actor=author, now=now)
    return policy


def seed_ai_system(*, use_cases: list[UseCase], owner, callback_url: str | None,
                   now: datetime) -> AiSystem:
    """demo-ai, set up by its owner as the admin would: a signing secret, the use cases
    it posts to and, when given, the callback URL its resolutions go to."""
    settings = {} if callback_url is None else {"callback_url": callback_url}
    ai_system = AiSystem.objects.filter(slug=data.AI_SYSTEM_SLUG).first()
    if ai_system is None:
        return ai_systems.ai_system_create(
            actor=owner, now=now, use_cases=use_cases, slug=data.AI_SYSTEM_SLUG,
            name="Demo invoice extractor", owner=owner, **settings)
    if not ai_system.signing_secret:  # a demo database from before the webhooks
        ai_systems.ai_system_rotate_secret(ai_system=ai_system, actor=owner, now=now)
    changes = {name: value for name, value in settings.items()
               if getattr(ai_system, name) != value}
    posts_to = list(ai_system.use_cases.all())
    if not set(posts_to).issuperset(use_cases):
        changes["use_cases"] = [*posts_to, *(u for u in use_cases if u not in posts_to)]
    if changes:
        ai_system = ai_systems.ai_system_update(ai_system=ai_system, actor=owner, now=now,
                                                **changes)
    return ai_system


# --- The processes: RACI, calendars, SLA, escalation -------------------------------------

def seed_process(*, use_case: UseCase, queues: list[Queue], users: dict, chain,
                 now: datetime) -> Process:
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
    for queue in queues:
        if queue.process_id is None:
            queue.process = process
            queue.save(update_fields=["process"])
    if not RaciAssignment.objects.filter(process=process).exists():
        groups = {group.name: group for group in Group.objects.filter(
            name__in=[data.MANAGERS_GROUP, data.REVIEWERS_GROUP])}
        for activity, row in data.RACI_MATRIX.items():
            for role, (usernames, group_names) in row.items():
                raci.set_assignments(
                    process=process, activity=activity, role=role,
                    users=[users[name] for name in usernames],
                    groups=[groups[name] for name in group_names],
                    actor=users["manager"], now=now)
    if not EscalationLevel.objects.filter(process=process).exists():
        queues_by_slug = {queue.slug: queue for queue in Queue.objects.all()}
        for level, target, queue, time_limit, consult, outcome in chain:
            EscalationLevel.objects.create(
                process=process, level=level, target=target,
                queue=queues_by_slug[queue] if queue else None, time_limit=time_limit,
                notify_informed=True, consult=consult, outcome=outcome)
        audit.record(verb=DomainVerb.ESCALATION_CHAIN_CREATED, object_type="process",
                     object_id=process.pk, actor=users["manager"], now=now,
                     data={"process": process.slug, "levels": [
                         {"level": level, "target": target, "queue": queue,
                          "time_limit": str(time_limit), "consult": consult,
                          "outcome": outcome}
                         for level, target, queue, time_limit, consult, outcome in chain]})
    return process


def seed_calendar(*, name: str, time_zone: str, working_hours: dict,
                  holiday_country: str = "") -> Calendar:
    calendar, _ = Calendar.objects.get_or_create(name=name, defaults={
        "time_zone": time_zone, "working_hours": working_hours,
        "holiday_country": holiday_country})
    return calendar


def seed_sla_policies(*, targets_by_queue: dict, queues: dict, calendar: Calendar, actor,
                      now: datetime) -> None:
    """Version 1 of each queue's SLA policy, for a queue that has none yet."""
    for slug, (warning_fraction, targets) in targets_by_queue.items():
        if SlaPolicy.objects.filter(queue=queues[slug]).exists():
            continue
        sla.publish_sla_policy(
            queue=queues[slug], calendar=calendar, warning_fraction=warning_fraction,
            targets=[{"min_priority": priority, "response_target": response,
                      "resolution_target": resolution}
                     for priority, response, resolution in targets],
            actor=actor, now=now)
