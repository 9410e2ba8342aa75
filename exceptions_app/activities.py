"""The RACI activities of a use case beyond the engine's (review, escalation, incident):
who changes its policy, moves its stage, updates its model. Registered with the engine in
``ExceptionsAppConfig.ready`` (``workflows.hooks.register_activities``); the values are
what RACI matrices store, so they never change.
"""

from django.db import models

from workflows.models import Activity as EngineActivity


class DomainActivity(models.TextChoices):
    POLICY_CHANGE = "policy_change", "Policy change"
    STAGE_CHANGE = "stage_change", "Stage change"
    MODEL_UPDATE = "model_update", "Model update"


# Every activity of a use case's matrix by name, the engine's and the domain's, for code
# that fills whole matrices (the demo).
UseCaseActivity = models.TextChoices(
    "UseCaseActivity",
    [(member.name, (member.value, member.label))
     for member in (*EngineActivity, *DomainActivity)])
