"""The domain's audit verbs, registered with the engine's vocabulary (``workflows.verbs``)."""

from django.db import models


class DomainVerb(models.TextChoices):
    DECISION_RECEIVED = "decision.received", "Decision received"
    DECISION_WITHDRAWN = "decision.withdrawn", "Decision withdrawn by the AI system"
    POLICY_DRAFTED = "policy.drafted", "Policy drafted"
    POLICY_EDITED = "policy.edited", "Policy edited"
    POLICY_PROPOSED = "policy.proposed", "Policy proposed for approval"
    POLICY_SENT_BACK = "policy.sent_back", "Policy sent back to draft"
    POLICY_APPROVED = "policy.approved", "Policy approved"
    POLICY_ACTIVATED = "policy.activated", "Policy activated"
    POLICY_RETIRED = "policy.retired", "Policy retired"
    POLICY_ROLLED_BACK = "policy.rolled_back", "Policy rolled back to an earlier version"
    USE_CASE_CREATED = "use_case.created", "Use case created"
    USE_CASE_CHANGED = "use_case.changed", "Use case changed"
    AI_SYSTEM_CREATED = "ai_system.created", "AI system created"
    AI_SYSTEM_CHANGED = "ai_system.changed", "AI system changed"
    AI_SYSTEM_SECRET_ROTATED = "ai_system.secret_rotated", "AI system's signing secret rotated"
    ESCALATION_CHAIN_CREATED = "escalation_chain.created", "Escalation chain created"
    API_KEY_ISSUED = "api_key.issued", "API key issued"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    DOCUMENT_STORED = "document.stored", "Source document stored"
    DOCUMENT_REFUSED = "document.refused", "Source document could not be fetched"
    LABELS_EXPORTED = "labels.exported", "Labelled data exported"
    DRIFT_REFERENCE_SET = "drift.reference_set", "Drift reference window set"
    DRIFT_RAISED = "drift.raised", "Drift alert raised"
