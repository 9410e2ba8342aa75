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
    POLICY_BACKTEST_REQUESTED = "policy.backtest_requested", "Policy backtest requested"
    POLICY_SHADOW_STARTED = "policy.shadow_started", "Policy version put in shadow"
    POLICY_SHADOW_STOPPED = "policy.shadow_stopped", "Policy shadow stopped"
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
    EVIDENCE_EXPORTED = "evidence.exported", "Audit evidence exported"
    ROLE_PERMISSIONS_SET = "role.permissions_set", "Role's permissions set"
    DRIFT_REFERENCE_SET = "drift.reference_set", "Drift reference window set"
    DRIFT_RAISED = "drift.raised", "Drift alert raised"


class StageVerb(models.TextChoices):
    """Stage moves and guardrails (``services/stages.py``, ``services/guardrails.py``)."""

    STAGE_ADVANCED = "stage.advanced", "Stage advanced with the Accountable's sign-off"
    STAGE_LOWERED = "stage.lowered", "Stage lowered by hand"
    STAGE_DEMOTED = "stage.demoted", "Stage demoted by a guardrail"
    KILL_SWITCH_ON = "guardrail.kill_switch_on", "Kill switch turned on: everything to review"
    KILL_SWITCH_OFF = "guardrail.kill_switch_off", "Kill switch turned off"
    GUARDRAILS_CHANGED = "guardrail.changed", "Stage gates and guardrails changed"
