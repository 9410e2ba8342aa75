"""The demo's data: people, queues, the use cases' contracts and policies, the RACI
matrix, the calendars and SLA targets, the escalation chains, how much work to seed."""


from dataclasses import replace
from datetime import timedelta

from exceptions_app.activities import UseCaseActivity as Activity
from exceptions_app.models import RuleAction
from exceptions_app.services.policies import RuleSpec
from workflows.models import EscalationOutcome, EscalationTarget, RaciRole

DEMO_USERS = (
    ("reviewer", "reviewer-demo", "Riley", "Reviewer"),
    ("reviewer2", "reviewer2-demo", "Robin", "Second"),
    ("manager", "manager-demo", "Morgan", "Manager"),
    ("auditor", "auditor-demo", "Alex", "Auditor"),
)
# The Django admin's login (a superuser): the banner's Admin link needs a staff user.
DEMO_ADMIN = ("admin", "admin-demo", "Avery", "Admin")
MANAGERS_GROUP = "managers"
REVIEWERS_GROUP = "invoice-reviewers"
REVIEWERS = ("reviewer", "reviewer2")
# Who holds which role (exceptions_app.roles); "managers" is also the RACI's group.
ROLE_MEMBERS = {"reviewers": REVIEWERS, "managers": ("manager",), "owners": ("manager",),
                "auditors": ("auditor",)}

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
                            timedelta(hours=4), ("manager", "reviewer2")),
    "intercompany-review": ("Intercompany invoices (24/7)",
                            "Invoices between the group's companies worldwide: the shared-"
                            "service desk works them around the clock.", False,
                            timedelta(minutes=30), timedelta(hours=2),
                            ("reviewer", "reviewer2", "manager")),
}

USE_CASE_SLUG = "invoice-approval"
USE_CASE_QUEUES = ("invoice-review", "invoice-qa", "invoice-escalations")
AI_SYSTEM_SLUG = "demo-ai"
# Where bin/demo's webhook receiver (``demo.receiver``) listens for demo-ai's webhooks.
CALLBACK_PATH = "/webhooks/backstop"

MONEY = {"type": "number", "minimum": 0}
# Every field has a title: the case page's labels and its error messages use it.
INPUT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Supplier invoice",
    "type": "object",
    "required": ["vendor", "invoice_number", "po_number", "po_amount", "currency",
                 "line_items"],
    "properties": {
        "vendor": {"title": "Vendor", "type": "string", "minLength": 1},
        "invoice_number": {"title": "Invoice number", "type": "string", "minLength": 1},
        "po_number": {"title": "PO number", "type": "string", "minLength": 1},
        "po_amount": {"title": "PO amount", **MONEY},
        "currency": {"title": "Currency", "enum": ["EUR", "USD", "GBP", "CHF"]},
        "line_items": {
            "title": "Line items",
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["description", "quantity", "unit_price"],
                "properties": {
                    "description": {"title": "Description", "type": "string",
                                    "minLength": 1},
                    "quantity": {"title": "Quantity", "type": "number",
                                 "exclusiveMinimum": 0},
                    "unit_price": {"title": "Unit price", **MONEY},
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
        "action": {"title": "Action", "enum": ["approve", "hold", "reject"]},
        "amount": {"title": "Amount", **MONEY},
        "vendor": {"title": "Vendor", "type": "string", "minLength": 1},
    },
}
# What an approver must see of an invoice before approving it from the list.
SUMMARY_FIELDS = ["input.vendor", "output.amount"]

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

# Version 2, proposed and waiting for the owner: unsure readings from 0.85 rather than 0.9.
REVISED_POLICY_TEXT = POLICY_TEXT.replace("version 1", "version 2").replace(
    "When the AI's confidence is under 0.9", "When the AI's confidence is under 0.85")
REVISED_POLICY_RULES = tuple(
    replace(rule, expression="confidence < 0.85",
            description="Confidence under 0.85: a person checks the reading")
    if rule.name == "low-confidence" else rule
    for rule in POLICY_RULES)

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

# --- The second use case: automated, sampled for blind QA, worked around the clock --------
INTERCOMPANY_SLUG = "intercompany-invoices"
INTERCOMPANY_QUEUES = ("intercompany-review",)
INTERCOMPANY_QA_RATE = 0.3
INTERCOMPANY_POLICY_TEXT = """\
# Intercompany invoice policy, version 1

Owner: Finance operations (Morgan Manager). Applies to invoices between the group's own
companies, which arrive around the clock from every time zone. The extractor has read
them well for months: this use case is in the *automate* stage.

1. **Large invoices need two people**, as for supplier invoices (over 50,000).
2. **Unsure readings, a vendor or amount off the purchase order, and proposed holds or
   rejections** go to the shared-service desk, which works around the clock.
3. **Everything else is approved**, and a sample of 30% of those approvals is checked
   again by a reviewer who does not see the AI's answer (the blind QA queue), so that
   the extractor's accuracy stays measured.
"""
INTERCOMPANY_RULES = tuple(rule for rule in POLICY_RULES if rule.action == RuleAction.REVIEW)
INTERCOMPANY_DEFAULT_REASON = ("Matches its purchase order: approved (automate stage; a "
                               "sample goes to blind QA)")
ALWAYS_OPEN_CALENDAR_NAME = "Shared-service desk, around the clock"
ALWAYS_OPEN_HOURS = {str(weekday): [["00:00", "24:00"]] for weekday in range(7)}
INTERCOMPANY_SLA_POLICIES = {
    "intercompany-review": (0.5, [(0, timedelta(minutes=30), timedelta(hours=2)),
                                  (90, timedelta(minutes=15), timedelta(hours=1))]),
}
# A case that misses its first response goes to a reviewer, who has an hour; past that
# it waits where it is, breached, and the owner is told.
INTERCOMPANY_ESCALATION_CHAIN = (
    (1, EscalationTarget.RESPONSIBLE, None, timedelta(hours=1), False,
     EscalationOutcome.NONE),
)
# Received over the last hours, whatever the time of day: the older ones nobody has
# picked up are at risk or breached on the desk's round-the-clock clock.
INTERCOMPANY_DECISIONS = 36
INTERCOMPANY_MINUTES_APART = 5

# Stage gates and guardrails (``services/guardrails.py``), by use case. The gates are at the
# scale of the demo's few days of history, so the stage page shows some met and some not;
# the automated use case has daily caps, probation of a new model version and a QA error
# bound that would move it back to assist.
GUARDRAILS = {
    "invoice-approval": {"min_reviewed": 10, "min_agreement": 0.95, "evidence_days": 14},
    INTERCOMPANY_SLUG: {"daily_auto_cap": 500, "daily_value_cap": 2_000_000,
                        "value_field": "po_amount", "probation_decisions": 25,
                        "qa_error_bound": 0.10, "qa_error_min_sample": 20},
}
