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

import heapq
import itertools
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from exceptions_app.activities import UseCaseActivity as Activity
from exceptions_app.models import (
    AiSystem,
    Decision,
    PolicyStatus,
    PolicyVersion,
    RuleAction,
    Stage,
    UseCase,
)
from exceptions_app.services import policies
from exceptions_app.services.intake import submit_decisions
from exceptions_app.services.policies import RuleSpec
from exceptions_app.services.simulation import SyntheticDecision, synthetic_decision
from exceptions_app.verbs import DomainVerb
from workflows.business_time import is_open
from workflows.models import (
    Calendar,
    Case,
    CaseState,
    EscalationLevel,
    EscalationOutcome,
    EscalationTarget,
    Process,
    Queue,
    RaciAssignment,
    RaciRole,
    SlaPolicy,
    Verdict,
)
from workflows.services import audit, claiming, raci, sla, sweeper, transitions

# (username, password, first name, last name): documented in the README.
DEMO_USERS = (
    ("reviewer", "reviewer-demo", "Riley", "Reviewer"),
    ("reviewer2", "reviewer2-demo", "Robin", "Second"),
    ("manager", "manager-demo", "Morgan", "Manager"),
)
MANAGERS_GROUP = "managers"
REVIEWERS_GROUP = "invoice-reviewers"
REVIEWERS = ("reviewer", "reviewer2")

# slug: (name, description, blind, response target, resolution target, members)
DEMO_QUEUES = {
    "invoice-review": ("Invoice review", "Invoices the policy sends to a person.", False,
                       timedelta(hours=1), timedelta(hours=8),
                       ("reviewer", "reviewer2", "manager")),
    "invoice-qa": ("Invoice QA (blind)",
                   "A sample of automatically approved invoices, reviewed without the AI's "
                   "answer so that its accuracy stays measured.", True,
                   timedelta(hours=4), timedelta(hours=24), ("reviewer2", "manager")),
    "invoice-escalations": ("Invoice escalations", "Cases that missed their SLA or need a "
                            "manager's call.", False, timedelta(minutes=30),
                            timedelta(hours=4), ("manager",)),
}

USE_CASE_SLUG = "invoice-approval"
AI_SYSTEM_SLUG = "demo-ai"

MONEY = {"type": "number", "minimum": 0}
INPUT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Supplier invoice",
    "type": "object",
    "required": ["vendor", "invoice_number", "po_number", "po_amount", "currency",
                 "line_items"],
    "properties": {
        "vendor": {"type": "string", "minLength": 1},
        "invoice_number": {"type": "string", "minLength": 1},
        "po_number": {"type": "string", "minLength": 1},
        "po_amount": MONEY,
        "currency": {"enum": ["EUR", "USD", "GBP", "CHF"]},
        "line_items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["description", "quantity", "unit_price"],
                "properties": {
                    "description": {"type": "string", "minLength": 1},
                    "quantity": {"type": "number", "exclusiveMinimum": 0},
                    "unit_price": MONEY,
                },
            },
        },
    },
}
OUTPUT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "The AI's proposal",
    "type": "object",
    "required": ["action", "amount", "vendor"],
    "properties": {
        "action": {"enum": ["approve", "hold", "reject"]},
        "amount": MONEY,
        "vendor": {"type": "string", "minLength": 1},
    },
}
REASON_CODES = [
    {"code": "po-mismatch", "label": "The amount does not match the purchase order"},
    {"code": "wrong-amount", "label": "The AI read the amount wrong"},
    {"code": "wrong-vendor", "label": "The AI read the vendor wrong"},
    {"code": "duplicate", "label": "Duplicate of an invoice already processed"},
    {"code": "missing-info", "label": "Information missing on the invoice"},
    {"code": "policy", "label": "Against the invoice policy"},
]

POLICY_TEXT = """\
# Invoice approval policy, version 1

Owner: Finance operations (Morgan Manager). Applies to every supplier invoice that the
invoice extractor reads. Amounts are in the invoice's own currency.

1. **Large invoices need two people.** Any invoice over 50,000 is checked by a reviewer
   and confirmed by a second person, whatever the AI proposes.
2. **Unsure readings are checked.** When the AI's confidence is under 0.9, a reviewer
   compares its reading with the invoice.
3. **The vendor must be the one on the purchase order.** If the vendor the AI read is
   not the PO's vendor, a reviewer checks it.
4. **The amount must match the purchase order.** An invoice more than 2% above or below
   its PO amount goes to review as a PO mismatch.
5. **Only approvals pass on their own.** When the AI proposes to hold or reject an
   invoice, a reviewer confirms it.
6. **Small matching invoices are approved.** An invoice under 5,000 that passes all of
   the above is approved without review.
7. **Everything else is reviewed.** While this use case is in the *assist* stage,
   invoices from 5,000 to 50,000 that match their PO still go to a reviewer.
"""

# (name, description, CEL expression, action, priority, four eyes), first match wins.
_RULES = (
    ("large-invoice", "Over 50,000: a reviewer and a second person confirm it",
     "output.amount > 50000.0", RuleAction.REVIEW, 90, True),
    ("low-confidence", "Confidence under 0.9: a person checks the reading",
     "confidence < 0.9", RuleAction.REVIEW, 70, False),
    ("vendor-mismatch", "The vendor read is not the purchase order's vendor",
     "output.vendor != input.vendor", RuleAction.REVIEW, 65, False),
    ("po-mismatch", "The amount is more than 2% off its purchase order",
     "output.amount > input.po_amount * 1.02 || output.amount < input.po_amount * 0.98",
     RuleAction.REVIEW, 60, False),
    ("not-an-approval", "The AI proposes to hold or reject: a person confirms it",
     'output.action != "approve"', RuleAction.REVIEW, 50, False),
    ("small-matching", "Under 5,000 and matches its PO: approved",
     "output.amount < 5000.0", RuleAction.AUTO, 0, False),
)
DEFAULT_REASON = "From 5,000 to 50,000: a reviewer approves it (assist stage)"

POLICY_RULES = tuple(
    RuleSpec(name=name, description=description, expression=expression, action=action,
             priority=priority, four_eyes=four_eyes)
    for name, description, expression, action, priority, four_eyes in _RULES)

# --- Who owns what: the RACI matrix ------------------------------------------------------
# activity: {role: (usernames, group names)}
RACI_MATRIX = {
    Activity.REVIEW: {RaciRole.RESPONSIBLE: ((), (REVIEWERS_GROUP,)),
                      RaciRole.ACCOUNTABLE: (("manager",), ())},
    Activity.ESCALATION: {RaciRole.RESPONSIBLE: (("manager",), ()),
                          RaciRole.ACCOUNTABLE: (("manager",), ()),
                          RaciRole.CONSULTED: (("reviewer2",), ()),
                          RaciRole.INFORMED: ((), (REVIEWERS_GROUP,))},
    Activity.POLICY_CHANGE: {RaciRole.RESPONSIBLE: (("reviewer2",), ()),
                             RaciRole.ACCOUNTABLE: (("manager",), ()),
                             RaciRole.CONSULTED: ((), (REVIEWERS_GROUP,)),
                             RaciRole.INFORMED: ((), (MANAGERS_GROUP,))},
    Activity.STAGE_CHANGE: {RaciRole.RESPONSIBLE: (("manager",), ()),
                            RaciRole.ACCOUNTABLE: (("manager",), ()),
                            RaciRole.CONSULTED: (("reviewer2",), ()),
                            RaciRole.INFORMED: ((), (REVIEWERS_GROUP,))},
    Activity.MODEL_UPDATE: {RaciRole.RESPONSIBLE: (("reviewer2",), ()),
                            RaciRole.ACCOUNTABLE: (("manager",), ()),
                            RaciRole.CONSULTED: ((), (REVIEWERS_GROUP,)),
                            RaciRole.INFORMED: ((), (MANAGERS_GROUP,))},
    Activity.INCIDENT: {RaciRole.RESPONSIBLE: (("manager",), ()),
                        RaciRole.ACCOUNTABLE: (("manager",), ()),
                        RaciRole.CONSULTED: (("reviewer2",), ()),
                        RaciRole.INFORMED: ((), (REVIEWERS_GROUP, MANAGERS_GROUP))},
}

# --- SLA: business hours and targets ----------------------------------------------------
CALENDAR_NAME = "Finance office, Berlin"
CALENDAR_TIME_ZONE = "Europe/Berlin"
WORKING_HOURS = {str(weekday): [["09:00", "17:00"]] for weekday in range(5)}  # Mon-Fri
HOLIDAY_COUNTRY = "DE"
# queue: (warning fraction, [(min priority, first response, resolution)])
SLA_POLICIES = {
    "invoice-review": (0.75, [(0, timedelta(hours=2), timedelta(hours=16)),
                              (60, timedelta(hours=1), timedelta(hours=8)),
                              (90, timedelta(minutes=30), timedelta(hours=4))]),
    "invoice-qa": (0.8, [(0, timedelta(hours=8), timedelta(hours=24))]),
    "invoice-escalations": (0.75, [(0, timedelta(minutes=30), timedelta(hours=4))]),
}

# --- Escalation: Responsible, then Accountable (asking the Consulted), then an outcome ----
# (level, target, re-queue into, time at the level, consult the C, outcome past it)
ESCALATION_CHAIN = (
    (1, EscalationTarget.RESPONSIBLE, None, timedelta(hours=2), False,
     EscalationOutcome.NONE),
    (2, EscalationTarget.ACCOUNTABLE, "invoice-escalations", timedelta(hours=4), True,
     EscalationOutcome.HOLD_FOR_OWNER),
)

# --- Work in flight -----------------------------------------------------------------------
DEMO_SEED = 2025  # the same invoices every time, every rule represented
HISTORY_DAYS = 3  # business days before today with worked (mostly closed) cases
HISTORY_PER_DAY = 8  # decisions received on each of them
RECENT_DECISIONS = 40  # received over the last two hours
ERROR_RATE = 0.15
# The last cases of the latest business day nobody picked up: the clocks escalate them.
LEFT_UNCLAIMED = 2


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


# --- Work in flight ------------------------------------------------------------------------

def seed_work(*, ai_system: AiSystem, users: dict, now: datetime) -> int:
    """Decisions and the reviewers' work on them, into a database without decisions.

    History: on each of the last ``HISTORY_DAYS`` business days, invoices arrive during
    office hours and the reviewers claim and decide them in time (a second person
    approves the large ones), except the last ones of the latest day, which nobody
    picks up: the SLA clock escalates them along the chain. Today: ``RECENT_DECISIONS``
    arrive over the last two hours and the reviewers are busy with some (one claimed,
    one waiting for the vendor, one large invoice pending approval and, if the chain
    has not yet moved it on, the forgotten case sent up to the owner by hand). Between
    events the engine's periodic jobs run at the instants they come due. Answers the
    decisions posted.
    """
    if Decision.objects.exists():
        return 0
    calendar = sla.business_calendar(Calendar.objects.get(name=CALENDAR_NAME))
    zone = ZoneInfo(CALENDAR_TIME_ZONE)
    rng = random.Random(DEMO_SEED)
    timeline = _Timeline(users=users)
    numbers = itertools.count(1)
    days = _business_days_before(now.astimezone(zone).date(), count=HISTORY_DAYS,
                                 calendar=calendar, zone=zone)
    for day_index, day in enumerate(days):  # the oldest first
        latest_day = day_index == len(days) - 1
        for slot in range(HISTORY_PER_DAY):
            received = datetime.combine(day, time(9, 10), tzinfo=zone) + timedelta(
                minutes=40 * slot + rng.randint(0, 15))
            synthetic = synthetic_decision(rng, external_id=f"demo-{next(numbers):04d}",
                                           error_rate=ERROR_RATE)
            unclaimed = latest_day and slot >= HISTORY_PER_DAY - LEFT_UNCLAIMED
            timeline.add(received, "receive", synthetic=synthetic, work=not unclaimed,
                         reviewer=REVIEWERS[slot % 2])
    for n in range(1, RECENT_DECISIONS + 1):
        synthetic = synthetic_decision(rng, external_id=f"demo-{next(numbers):04d}",
                                       error_rate=ERROR_RATE)
        received = now - timedelta(minutes=3 * (RECENT_DECISIONS - n), seconds=17 * n % 60)
        timeline.add(received, "receive", synthetic=synthetic, work=False)
    # Today's work in progress, in the order it happened.
    timeline.add(now - timedelta(minutes=50), "escalate_by_hand", reviewer="reviewer")
    timeline.add(now - timedelta(minutes=31), "ask_vendor", reviewer="reviewer2")
    timeline.add(now - timedelta(minutes=19), "four_eyes", reviewer="reviewer")
    timeline.add(now - timedelta(minutes=4), "claim_next", reviewer="reviewer")
    return timeline.run(ai_system=ai_system, until=now)


def _business_days_before(today: date, *, count: int, calendar, zone: ZoneInfo) -> list[date]:
    """The ``count`` business days before ``today``, oldest first (open at noon)."""
    days, day = [], today
    while len(days) < count:
        day -= timedelta(days=1)
        if is_open(calendar, datetime.combine(day, time(12), tzinfo=zone)):
            days.append(day)
    return days[::-1]


class _Timeline:
    """Events in time order, with the engine's periodic jobs run in between."""

    def __init__(self, *, users: dict):
        self.users = users
        self.events: list = []
        self.order = itertools.count()
        self.posted = 0

    def add(self, at: datetime, kind: str, **details) -> None:
        heapq.heappush(self.events, (at, next(self.order), kind, details))

    def run(self, *, ai_system: AiSystem, until: datetime) -> int:
        while self.events:
            at, _, kind, details = heapq.heappop(self.events)
            run_periodic_jobs(until=at)
            getattr(self, f"_{kind}")(at, ai_system=ai_system, **details)
        run_periodic_jobs(until=until)
        return self.posted

    def _receive(self, at: datetime, *, ai_system: AiSystem, synthetic: SyntheticDecision,
                 work: bool, reviewer: str = "") -> None:
        [result] = submit_decisions(ai_system=ai_system, items=[synthetic.body], now=at)
        self.posted += result.status == 201
        case = result.decision.case if result.decision else None
        if case is None or not work:
            return
        # Claimed well inside the first-response window, decided within minutes.
        claim_at = at + (case.response_due_at - at) * 0.4
        self.add(claim_at, "claim", case_id=case.pk, reviewer=reviewer)
        self.add(claim_at + timedelta(minutes=4 + case.pk % 11), "decide", case_id=case.pk,
                 reviewer=reviewer, synthetic=synthetic)

    def _claim(self, at: datetime, *, case_id: int, reviewer: str, **_) -> None:
        claiming.claim(case_id=case_id, user=self.users[reviewer], now=at)

    def _decide(self, at: datetime, *, case_id: int, reviewer: str,
                synthetic: SyntheticDecision, **_) -> None:
        case = _resolve_as_a_reviewer_would(case_id=case_id, user=self.users[reviewer],
                                            synthetic=synthetic, now=at)
        if case.state == CaseState.PENDING_APPROVAL:
            self.add(at + timedelta(minutes=20), "approve", case_id=case_id)

    def _approve(self, at: datetime, *, case_id: int, **_) -> None:
        transitions.approve(case_id=case_id, user=self.users["manager"], now=at)

    def _ask_vendor(self, at: datetime, *, reviewer: str, **_) -> None:
        """Claim an invoice that disagrees with its PO; ask the vendor a few minutes later."""
        open_cases = list(Case.objects.filter(
            state=CaseState.OPEN, escalation_level=0, requires_four_eyes=False,
            decision__reasons__0__rule="po-mismatch").order_by("created_at")[:1])
        if not open_cases:
            return
        case = claiming.claim(case_id=open_cases[0].pk, user=self.users[reviewer], now=at)
        self.add(at + timedelta(minutes=6), "request_info", case_id=case.pk, reviewer=reviewer)

    def _request_info(self, at: datetime, *, case_id: int, reviewer: str, **_) -> None:
        transitions.request_info(
            case_id=case_id, user=self.users[reviewer], now=at,
            reason="Asked the vendor for the delivery note: the invoice and the purchase "
                   "order disagree on the quantities.")

    def _four_eyes(self, at: datetime, *, reviewer: str, **_) -> None:
        """Claim a large invoice; the reviewer's resolution then waits for a second person."""
        large = list(Case.objects.filter(state=CaseState.OPEN, escalation_level=0,
                                         requires_four_eyes=True)
                     .order_by("created_at")[:1])
        if not large:
            return
        claiming.claim(case_id=large[0].pk, user=self.users[reviewer], now=at)
        self.add(at + timedelta(minutes=7), "submit_for_approval", case_id=large[0].pk,
                 reviewer=reviewer)

    def _submit_for_approval(self, at: datetime, *, case_id: int, reviewer: str, **_) -> None:
        decision = Decision.objects.get(case=case_id)
        transitions.resolve(case_id=case_id, user=self.users[reviewer],
                            verdict=Verdict.ACCEPTED, output=None, reason_code="", now=at,
                            notes=f"Checked the {len(decision.input['line_items'])} line "
                                  f"item(s) against {decision.input['po_number']}.")

    def _escalate_by_hand(self, at: datetime, *, reviewer: str, **_) -> None:
        """A reviewer takes a case the chain handed to the reviewers and sends it up to
        the owner: the next level re-queues it on the escalations desk and asks the
        Consulted."""
        user = self.users[reviewer]
        handed = list(Case.objects.filter(
            state__in=(CaseState.OPEN, CaseState.ESCALATED, CaseState.ASSIGNED),
            escalation_level=1, queue__slug="invoice-review").order_by("created_at")[:1])
        if not handed:
            return
        case = handed[0]
        if case.assignee_id != user.pk:
            if case.state == CaseState.ASSIGNED:
                return  # someone else holds it: theirs to decide
            case = claiming.claim(case_id=case.pk, user=user, now=at)
        transitions.escalate(
            case_id=case.pk, user=user, now=at + timedelta(minutes=3),
            reason="The vendor's bank account on this invoice differs from the one in our "
                   "vendor master data: the owner should decide before anything is paid.")

    def _claim_next(self, at: datetime, *, reviewer: str, **_) -> None:
        claiming.claim_next(user=self.users[reviewer], now=at)


def _resolve_as_a_reviewer_would(*, case_id: int, user, synthetic: SyntheticDecision,
                                 now: datetime) -> Case:
    """The careful answer: accept a right output, correct a wrong one with the truth."""
    if synthetic.wrong:
        return transitions.resolve(
            case_id=case_id, user=user, verdict=Verdict.CORRECTED, output=synthetic.truth,
            reason_code=f"wrong-{synthetic.error}", now=now,
            notes="The invoice says otherwise; corrected from the document.")
    reason_code = {"reject": "duplicate", "hold": "po-mismatch"}.get(
        synthetic.body["output"]["action"], "")
    return transitions.resolve(case_id=case_id, user=user, verdict=Verdict.ACCEPTED,
                               output=None, reason_code=reason_code, now=now)


def run_periodic_jobs(*, until: datetime, max_rounds: int = 10_000) -> None:
    """What beat would have run up to ``until``: every SLA check and lease expiry, each at
    the instant it came due, in time order (``sweeper.sweep``, ``claiming.expire_leases``)."""
    for _ in range(max_rounds):
        next_check = (sweeper.due_cases(now=until)
                      .aggregate(at=Min("sla_next_check_at"))["at"])
        next_expiry = (Case.objects.filter(state=CaseState.ASSIGNED,
                                           lease_expires_at__lte=until)
                       .aggregate(at=Min("lease_expires_at"))["at"])
        if next_check is None and next_expiry is None:
            return
        if next_expiry is not None and (next_check is None or next_expiry <= next_check):
            claiming.expire_leases(now=next_expiry)
        else:
            sweeper.sweep(now=next_check)
    raise RuntimeError(f"The periodic jobs did not catch up with {until} in {max_rounds} "
                       "rounds; a case's clock does not move forward.")
