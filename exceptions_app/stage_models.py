"""Stages earned from evidence and the guardrails that hold autonomy back: a use case's
gates and guardrail settings, the counters intake keeps for them, and every stage move.

Kept apart from ``models.py`` (imported at its end, so Django sees them as the app's
models): ``services/stages.py`` and ``services/guardrails.py`` are their only writers.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from exceptions_app.models import Stage, UseCase

# The stages in order, lowest first: a move up or down is one step along this.
STAGE_ORDER = [Stage.AUDIT, Stage.ASSIST, Stage.AUTOMATE, Stage.OPTIMIZE]


def stage_above(stage: str) -> str | None:
    index = STAGE_ORDER.index(stage)
    return STAGE_ORDER[index + 1] if index + 1 < len(STAGE_ORDER) else None


def stage_below(stage: str) -> str | None:
    index = STAGE_ORDER.index(stage)
    return STAGE_ORDER[index - 1] if index else None


def validate_qa_strata(value) -> None:
    """QA sampling by stratum: ``{}`` (the flat rate of the stage), or

    - ``{"by": "confidence", "bands": [{"below": 0.9, "rate": 0.5}, {"rate": 0.05}]}``:
      bands of confidence in rising order, the last one open-ended;
    - ``{"by": "input.<field>", "rates": {"DE": 0.1, "FR": 0.2}, "other": 0.05}``:
      a rate per value of a declared input field, ``other`` for the rest.
    """
    if value in (None, {}):
        return
    example = ('QA strata are {"by": "confidence", "bands": [{"below": 0.9, "rate": 0.5}, '
               '{"rate": 0.05}]} or {"by": "input.country", "rates": {"DE": 0.1}, '
               '"other": 0.05}')
    if not isinstance(value, dict) or not isinstance(value.get("by"), str):
        raise ValidationError(f"{example}.", code="qa_strata_shape")

    def rate(candidate, where: str) -> None:
        if isinstance(candidate, bool) or not isinstance(candidate, int | float) \
                or not 0 <= candidate <= 1:
            raise ValidationError(f"QA strata: the rate of {where} must be a fraction "
                                  f"between 0 and 1, not {candidate!r}.", code="qa_strata_rate")

    if value["by"] == "confidence":
        bands = value.get("bands")
        if not isinstance(bands, list) or not bands:
            raise ValidationError(f"{example}: confidence strata need a list of bands.",
                                  code="qa_strata_shape")
        previous = 0.0
        for index, band in enumerate(bands):
            if not isinstance(band, dict):
                raise ValidationError(f"{example}: band {index + 1} is not an object.",
                                      code="qa_strata_shape")
            last = index == len(bands) - 1
            below = band.get("below")
            if last and below is not None:
                raise ValidationError("QA strata: the last confidence band is open-ended "
                                      "(no \"below\"), so every confidence has a band.",
                                      code="qa_strata_bands")
            if not last and (isinstance(below, bool) or not isinstance(below, int | float)
                             or not previous < below <= 1):
                raise ValidationError(
                    f"QA strata: band {index + 1}'s \"below\" must be a confidence above "
                    f"{previous:g} and at most 1 (bands rise), not {below!r}.",
                    code="qa_strata_bands")
            rate(band.get("rate"), f"band {index + 1}")
            previous = below if below is not None else previous
        return
    if not value["by"].startswith("input.") or not value["by"].removeprefix("input."):
        raise ValidationError(f'{example}: "by" is "confidence" or "input.<field>", not '
                              f'{value["by"]!r}.', code="qa_strata_shape")
    rates = value.get("rates")
    if not isinstance(rates, dict) or not rates:
        raise ValidationError(f"{example}: strata by a field need a rate per value.",
                              code="qa_strata_shape")
    for key, candidate in rates.items():
        rate(candidate, f"'{key}'")
    rate(value.get("other", 0.0), "the other values")


class Guardrails(models.Model):
    """A use case's stage gates and guardrails. Absent, the defaults apply
    (``Guardrails.defaults_for``): written only by ``services/guardrails.py``."""

    use_case = models.OneToOneField(UseCase, on_delete=models.CASCADE,
                                    related_name="guardrails")
    # --- Gates: the evidence a move up needs, over the last ``evidence_days``.
    evidence_days = models.PositiveSmallIntegerField(default=30)
    min_reviewed = models.PositiveIntegerField(default=500)
    min_agreement = models.FloatField(default=0.95)
    min_sla_compliance = models.FloatField(default=0.90)
    min_qa_reviewed = models.PositiveIntegerField(default=200)
    min_qa_accuracy_low = models.FloatField(default=0.95)
    max_exception_rate = models.FloatField(null=True, blank=True)
    # --- Guardrails.
    kill_switch = models.BooleanField(default=False)
    kill_switch_reason = models.CharField(max_length=500, blank=True)
    kill_switch_at = models.DateTimeField(null=True, blank=True)
    daily_auto_cap = models.PositiveIntegerField(null=True, blank=True)
    daily_value_cap = models.FloatField(null=True, blank=True)
    value_field = models.CharField(max_length=200, blank=True,
                                   help_text="A numeric field of the input, by name.")
    qa_error_bound = models.FloatField(default=0.05)
    qa_error_min_sample = models.PositiveIntegerField(default=20)
    probation_decisions = models.PositiveIntegerField(default=0)
    qa_strata = models.JSONField(default=dict, blank=True, validators=[validate_qa_strata])
    # When the use case entered its stage: a QA-error demotion weighs only what the
    # stage itself produced.
    stage_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "guardrails"
        constraints = [
            models.CheckConstraint(
                condition=Q(min_agreement__gte=0, min_agreement__lte=1)
                & Q(min_sla_compliance__gte=0, min_sla_compliance__lte=1)
                & Q(min_qa_accuracy_low__gte=0, min_qa_accuracy_low__lte=1)
                & Q(qa_error_bound__gte=0, qa_error_bound__lte=1),
                name="guardrail_rates_are_fractions"),
        ]

    def __str__(self):
        return f"guardrails of {self.use_case_id}"

    @property
    def slug(self) -> str:  # the audit event of an edit names the use case
        return self.use_case.slug

    @classmethod
    def defaults_for(cls, use_case: UseCase) -> "Guardrails":
        return cls(use_case=use_case)

    def clean(self):
        errors = {}
        for name in ("min_agreement", "min_sla_compliance", "min_qa_accuracy_low",
                     "qa_error_bound", "max_exception_rate"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                errors[name] = [f"A fraction between 0 and 1 (0.95 is 95%), not {value:g}."]
        if self.evidence_days is not None and self.evidence_days < 1:
            errors["evidence_days"] = ["The evidence window is at least one day."]
        if self.daily_value_cap is not None:
            if self.daily_value_cap < 0:
                errors["daily_value_cap"] = ["The daily value cap cannot be negative."]
            if not self.value_field:
                errors["value_field"] = ["A daily value cap needs the input field that "
                                         "holds each decision's value."]
        if self.value_field:
            problem = self._value_field_problem()
            if problem:
                errors["value_field"] = [problem]
        if self.qa_strata and self.qa_strata.get("by", "").startswith("input."):
            name = self.qa_strata["by"].removeprefix("input.")
            properties = (self.use_case.input_schema or {}).get("properties") or {}
            if self.use_case.input_schema and name not in properties:
                errors["qa_strata"] = [f'QA strata: the input schema declares no field '
                                       f'"{name}".']
        if errors:
            raise ValidationError(errors)

    def _value_field_problem(self) -> str | None:
        properties = (self.use_case.input_schema or {}).get("properties") or {}
        declared = properties.get(self.value_field)
        if not isinstance(declared, dict):
            return (f'The input schema declares no field "{self.value_field}"; the value '
                    f'cap reads a declared numeric input field.')
        if declared.get("type") not in ("number", "integer"):
            return (f'The input field "{self.value_field}" is not a number in the input '
                    f'schema; the value cap adds numbers.')
        return None


class AutoPassTally(models.Model):
    """What a use case passed automatically on one day (UTC): the daily caps' counter,
    added to by intake in the decisions' transaction (one statement per batch)."""

    use_case = models.ForeignKey(UseCase, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    passed = models.PositiveIntegerField(default=0)
    value = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["use_case", "day"],
                                               name="auto_pass_tally_key")]

    def __str__(self):
        return f"{self.use_case_id} {self.day}: {self.passed} passed"


class ModelVersionRecord(models.Model):
    """A model version a use case has seen, and how many of its decisions: a new one is
    on probation for its first ``Guardrails.probation_decisions``."""

    use_case = models.ForeignKey(UseCase, on_delete=models.CASCADE, related_name="+")
    model_version = models.CharField(max_length=200)
    decisions = models.PositiveIntegerField(default=0)
    # False for a version seen before probation was switched on: it is not new.
    probation = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["use_case", "model_version"],
                                               name="model_version_record_key")]

    def __str__(self):
        return f"{self.use_case_id} {self.model_version}: {self.decisions} decisions"


class StageMove(models.TextChoices):
    ADVANCED = "advanced", "Advanced with sign-off"
    LOWERED = "lowered", "Lowered by hand"
    DEMOTED = "demoted", "Demoted by a guardrail"


class StageChange(models.Model):
    """One move of a use case's stage, with who or what moved it and the evidence."""

    use_case = models.ForeignKey(UseCase, on_delete=models.CASCADE,
                                 related_name="stage_changes")
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    move = models.CharField(max_length=10, choices=StageMove.choices)
    # What demoted it ("drift:<alert>", "qa-error:<stage change>"): one demotion per
    # trigger, however many checks see it.
    trigger = models.CharField(max_length=100, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["use_case", "trigger"], condition=~Q(trigger=""),
                                    name="one_demotion_per_trigger"),
        ]

    def __str__(self):
        return f"{self.use_case_id}: {self.from_stage} -> {self.to_stage}"
