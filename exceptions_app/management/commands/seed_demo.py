"""Seed the demo: people, queues, the invoice-approval use case, its policy and an AI system.

Safe to run again: everything is looked up before it is created, so a second run
changes nothing (it only issues another API key, unless ``--no-key``). Demo
decisions are posted through the intake service only into an empty database.
"""

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from exceptions_app.management.commands.issue_api_key import issue_api_key
from exceptions_app.management.commands.simulate import synthetic_decision
from exceptions_app.models import (
    AiSystem,
    Decision,
    PolicyStatus,
    PolicyVersion,
    Rule,
    RuleAction,
    Stage,
    UseCase,
)
from exceptions_app.services.intake import submit_decisions
from workflows.models import Queue
from workflows.services import audit

# (username, password, first name, last name): documented in the README.
DEMO_USERS = (
    ("reviewer", "reviewer-demo", "Riley", "Reviewer"),
    ("reviewer2", "reviewer2-demo", "Robin", "Second"),
    ("manager", "manager-demo", "Morgan", "Manager"),
)
MANAGERS_GROUP = "managers"

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
DEMO_DECISIONS = 40

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
POLICY_RULES = (
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


class Command(BaseCommand):
    help = ("Create the demo users, queues, invoice-approval use case, its active policy and "
            "the demo-ai system; print a new API key for it. Safe to run again.")

    def add_arguments(self, parser):
        parser.add_argument("--no-key", action="store_true",
                            help="do not issue a new API key for demo-ai")

    def handle(self, *args, **options):
        with transaction.atomic():
            users = seed_users()
            queues = seed_queues(users)
            manager = users["manager"]
            use_case = seed_use_case(owner=manager, queues=queues)
            policy = seed_policy(use_case=use_case, owner=manager)
            ai_system = seed_ai_system(use_case=use_case, owner=manager)
        posted = seed_decisions(ai_system=ai_system)
        key = None if options["no_key"] else issue_api_key(
            ai_system=ai_system, name="demo key", actor_label="cli:seed_demo")

        if options["verbosity"] == 0:
            if key:
                self.stdout.write(key)
            return
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))
        for username, password, *_ in DEMO_USERS:
            self.stdout.write(f"  login {username:<10} password {password}")
        self.stdout.write(f"  use case {use_case.slug} (stage {use_case.stage}), "
                          f"active policy v{policy.number} with {policy.rules.count()} rules")
        self.stdout.write(f"  demo decisions posted: {posted} (only into an empty database)")
        if key:
            self.stdout.write(f"\nNew API key for the AI system '{ai_system.slug}' "
                              f"(shown once; only its hash is stored):")
            self.stdout.write(self.style.SUCCESS(f"  BACKSTOP_API_KEY={key}"))


def seed_users() -> dict:
    User = get_user_model()
    managers, _ = Group.objects.get_or_create(name=MANAGERS_GROUP)
    managers.permissions.add(Permission.objects.get(codename="manage_cases",
                                                    content_type__app_label="workflows"))
    users = {}
    for username, password, first_name, last_name in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            # The password is set only on creation: a second run must change nothing.
            user = User.objects.create_user(username=username, password=password,
                                            email=f"{username}@example.com",
                                            first_name=first_name, last_name=last_name)
        users[username] = user
    users["manager"].groups.add(managers)
    return users


def seed_queues(users: dict) -> dict:
    queues = {}
    for slug, (name, description, blind, response, resolution, members) in DEMO_QUEUES.items():
        queue, _ = Queue.objects.get_or_create(slug=slug, defaults={
            "name": name, "description": description, "blind": blind,
            "response_target": response, "resolution_target": resolution})
        queue.members.add(*(users[username] for username in members))
        queues[slug] = queue
    return queues


def seed_use_case(*, owner, queues: dict) -> UseCase:
    use_case = UseCase.objects.filter(slug=USE_CASE_SLUG).first()
    if use_case is not None:
        return use_case
    use_case = UseCase(
        slug=USE_CASE_SLUG, name="Invoice approval", owner=owner, stage=Stage.ASSIST,
        description="Supplier invoices read by the invoice extractor: approve, hold or reject.",
        input_schema=INPUT_SCHEMA, output_schema=OUTPUT_SCHEMA, reason_codes=REASON_CODES,
        review_queue=queues["invoice-review"], qa_queue=queues["invoice-qa"])
    use_case.full_clean()
    use_case.save()
    audit.record(verb="use_case.created", object_type="use_case", object_id=use_case.pk,
                 actor=owner, data={"slug": use_case.slug, "stage": use_case.stage})
    return use_case


def seed_policy(*, use_case: UseCase, owner) -> PolicyVersion:
    """Version 1, active, unless the use case already has a version 1 (then left alone)."""
    policy = PolicyVersion.objects.filter(use_case=use_case, number=1).first()
    if policy is not None:
        return policy
    # Rules are added while the version is a draft; approving it freezes them.
    policy = PolicyVersion.objects.create(
        use_case=use_case, number=1, text=POLICY_TEXT, status=PolicyStatus.DRAFT,
        default_action=RuleAction.REVIEW, default_reason=DEFAULT_REASON, default_priority=40,
        created_by=owner)
    for position, (name, description, expression, action, priority, four_eyes) in enumerate(
            POLICY_RULES, start=1):
        rule = Rule(policy=policy, position=position, name=name, description=description,
                    expression=expression, action=action, priority=priority,
                    four_eyes=four_eyes)
        rule.full_clean()  # refuses CEL that does not compile
        rule.save()
    if not PolicyVersion.objects.filter(use_case=use_case, status=PolicyStatus.ACTIVE).exists():
        now = timezone.now()
        policy.status = PolicyStatus.ACTIVE
        policy.approved_by, policy.approved_at, policy.activated_at = owner, now, now
        policy.save(update_fields=["status", "approved_by", "approved_at", "activated_at"])
        audit.record(verb="policy.activated", object_type="policy_version",
                     object_id=policy.pk, actor=owner,
                     data={"use_case": use_case.slug, "number": policy.number,
                           "rules": [rule[0] for rule in POLICY_RULES]})
    return policy


def seed_ai_system(*, use_case: UseCase, owner) -> AiSystem:
    ai_system, created = AiSystem.objects.get_or_create(slug=AI_SYSTEM_SLUG, defaults={
        "name": "Demo invoice extractor", "owner": owner})
    ai_system.use_cases.add(use_case)
    if created:
        audit.record(verb="ai_system.created", object_type="ai_system", object_id=ai_system.pk,
                     actor=owner, data={"slug": ai_system.slug, "use_cases": [use_case.slug]})
    return ai_system


def seed_decisions(*, ai_system: AiSystem) -> int:
    """Fill the demo queues with realistic decisions received over the last two hours."""
    if Decision.objects.exists():
        return 0
    rng = random.Random(2025)  # the same demo every time, every rule represented
    now = timezone.now()
    stored = 0
    for n in range(1, DEMO_DECISIONS + 1):
        synthetic = synthetic_decision(rng, external_id=f"demo-{n:04d}", error_rate=0.15)
        received = now - timedelta(minutes=3 * (DEMO_DECISIONS - n), seconds=17 * n % 60)
        [result] = submit_decisions(ai_system=ai_system, items=[synthetic.body], now=received)
        stored += result.status == 201
    return stored
