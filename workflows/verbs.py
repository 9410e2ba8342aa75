"""The audit trail's vocabulary: every verb an ``AuditEvent`` may carry, with its wording.

A verb is written once, as a member of an enumeration whose label is what a person
reading a case's history sees; call sites pass the member, never a bare string, so the
timeline cannot drift from what is emitted. The engine's verbs are ``AuditVerb``; the
domain declares its own enumeration the same way and registers it in its
``AppConfig.ready()`` (the engine never imports the domain).
"""

from django.db import models
from django.utils.text import capfirst


class AuditVerb(models.TextChoices):
    # -- a case's life ------------------------------------------------------------------
    CASE_OPENED = "case.opened", "Case opened"
    CASE_CLAIMED = "case.claimed", "Claimed"
    CASE_ASSIGNED = "case.assigned", "Assigned by the queue"
    CASE_DELEGATED = "case.delegated", "Handed to the reviewer's delegate"
    CASE_RELEASED = "case.released", "Released back to the queue"
    CASE_LEASE_EXPIRED = "case.lease_expired", "Claim expired: back to the queue"
    CASE_RESOLVED = "case.resolved", "Resolved"
    CASE_SUBMITTED_FOR_APPROVAL = ("case.submitted_for_approval",
                                   "Submitted for four-eyes approval")
    CASE_APPROVED = "case.approved", "Approved"
    CASE_SENT_BACK = "case.sent_back", "Sent back to the first reviewer"
    CASE_INFO_REQUESTED = "case.info_requested", "Information requested"
    CASE_RESUMED = "case.resumed", "Resumed"
    CASE_ESCALATED = "case.escalated", "Escalated"
    CASE_REASSIGNED = "case.reassigned", "Reassigned"
    CASE_PRIORITY_CHANGED = "case.priority_changed", "Priority changed"
    CASE_CANCELLED = "case.cancelled", "Cancelled"
    CASE_WITHDRAWN = "case.withdrawn", "Withdrawn upstream"
    CASE_SLA_WARNING = "case.sla_warning", "SLA warning"
    CASE_SLA_REAPPLIED = "case.sla_reapplied", "SLA clocks recalculated for a new policy"
    CASE_SLA_CALENDAR_CHANGED = ("case.sla_calendar_changed",
                                 "SLA clocks moved by a calendar change")
    CASE_CONSULT_ANSWERED = "case.consult_answered", "Consult answered"
    CASE_COMMENTED = "case.commented", "Comment"
    # -- queues, people, SLA and RACI configuration -----------------------------------
    QUEUE_CREATED = "queue.created", "Queue created"
    QUEUE_CHANGED = "queue.changed", "Queue changed"
    QUEUE_ASSIGNMENT_CHANGED = "queue.assignment_changed", "Queue assignment mode changed"
    PROCESS_CREATED = "process.created", "Process created"
    PROCESS_CHANGED = "process.changed", "Process changed"
    PROCESS_DELETED = "process.deleted", "Process deleted"
    ESCALATION_CHAIN_CHANGED = "escalation_chain.changed", "Escalation chain changed"
    MESSAGE_REDELIVERED = "outbox.redelivered", "Failed message sent again"
    AUDIT_VERIFICATION_REQUESTED = ("audit.verification_requested",
                                    "Check of the audit trail asked for")
    AUDIT_VERIFIED = "audit.verified", "Audit trail checked"
    USER_TOKEN_ISSUED = "user_token.issued", "API token issued"
    USER_TOKEN_ROTATED = "user_token.rotated", "API token replaced"
    USER_TOKEN_SHOWN = "user_token.shown", "API token shown again"
    REVIEWER_AWAY = "reviewer.away", "Reviewer away"
    USER_PREFERENCES_CHANGED = "user.preferences_changed", "Preferences changed"
    REVIEWER_AVAILABLE = "reviewer.available", "Reviewer available"
    USER_TIME_ZONE_CHANGED = "user.time_zone_changed", "Time zone changed"
    RACI_CHANGED = "raci.changed", "RACI matrix changed"
    SLA_POLICY_PUBLISHED = "sla_policy.published", "SLA policy published"
    SLA_POLICY_REAPPLIED = "sla_policy.reapplied", "SLA policy applied to open cases"
    CALENDAR_CREATED = "calendar.created", "Business calendar created"
    CALENDAR_CHANGED = "calendar.changed", "Business calendar changed"
    CALENDAR_CLOSURE_ADDED = "calendar.closure_added", "Calendar closure added"
    CALENDAR_CLOSURE_REMOVED = "calendar.closure_removed", "Calendar closure removed"
    CALENDAR_CLOCKS_MOVED = "calendar.clocks_moved", "SLA clocks moved by a calendar change"


# The enumerations whose members are known verbs: the engine's, then the domain's.
_vocabularies: list[type[models.TextChoices]] = [AuditVerb]
_wording: dict[str, str] = {}


def register(vocabulary: type[models.TextChoices]) -> type[models.TextChoices]:
    """Add a domain's verbs; a verb is defined once, so a clash is a programming error."""
    if vocabulary in _vocabularies:
        return vocabulary  # ready() may run twice
    clash = set(vocabulary.values) & set(known())
    if clash:
        raise ValueError(f"audit verbs defined twice: {sorted(clash)}")
    _vocabularies.append(vocabulary)
    _wording.clear()
    return vocabulary


def known() -> dict[str, str]:
    """Every registered verb and its wording."""
    if not _wording:
        for vocabulary in _vocabularies:
            _wording.update(vocabulary.choices)
    return _wording


def wording(verb: str) -> str:
    """What ``verb`` means to a person; an unknown verb (an old row) is spelt out."""
    return known().get(verb) or capfirst(verb.split(".")[-1].replace("_", " "))
