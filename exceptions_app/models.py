"""The AI-exception domain: who posts decisions, under which policy, and what came of them."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition
from rest_framework_api_key.models import AbstractAPIKey

from workflows.models import Case, Process, Queue, Verdict
from workflows.webhook_addresses import validate_callback_url


class Stage(models.TextChoices):
    AUDIT = "audit", "Audit: every decision is reviewed"
    ASSIST = "assist", "Assist: the rules decide, people take the rest"
    AUTOMATE = "automate", "Automate: in-scope decisions pass, a sample is checked"
    OPTIMIZE = "optimize", "Optimize: as automate, with a lower QA sample"


class Route(models.TextChoices):
    AUTO = "auto", "Passed automatically"
    REVIEW = "review", "Sent to review"
    REJECT = "reject", "Rejected by policy"


def validate_reason_codes(value) -> None:
    """A use case's reason codes: a list of ``{"code": ..., "label": ...}`` objects.

    The one check of their shape, run wherever they are written (the admin's form,
    ``full_clean`` in the services): a plain list of strings once got through and made
    every resolution and case page of the use case fail.
    """
    expected = ('reason_codes must be a list of objects like {"code": "po-mismatch", '
                '"label": "Amount does not match the PO"}')
    if not isinstance(value, list):
        raise ValidationError(f"{expected}; got {type(value).__name__}.", code="reason_codes_shape")
    # Not code "invalid": JSONField would swap the message for its own "valid JSON" one.
    seen = set()
    for index, item in enumerate(value):
        code = item.get("code") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code.strip():
            raise ValidationError(
                f"{expected}; item {index + 1} ({item!r}) has no non-empty \"code\".",
                code="reason_codes_shape")
        label = item.get("label", "")
        if not isinstance(label, str):
            raise ValidationError(f"{expected}; item {index + 1}'s \"label\" must be text.",
                                  code="reason_codes_shape")
        if code in seen:
            raise ValidationError(f"reason_codes: the code '{code}' is listed twice.",
                                  code="reason_codes_shape")
        seen.add(code)


# Where a summary field is read: the decision's input, or the output being decided.
SUMMARY_SOURCES = ("input", "output")


def schema_at(schema, path: list[str]):
    """The JSON Schema of ``path`` inside ``schema`` (through "properties"), or None."""
    for key in path:
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(properties, dict) or key not in properties:
            return None
        schema = properties[key]
    return schema


class UseCase(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Its business owner is not kept here: the process's RACI matrix names the
    # Accountable ("A"), once (``raci.accountable``).
    input_schema = models.JSONField(null=True, blank=True)
    output_schema = models.JSONField(null=True, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.AUDIT)
    # [{"code": "po-mismatch", "label": "Amount does not match the PO"}, ...]
    reason_codes = models.JSONField(default=list, blank=True,
                                    validators=[validate_reason_codes])
    # The engine's process for this use case: its RACI matrix and escalation chain.
    process = models.OneToOneField(Process, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="use_case")
    review_queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="+")
    qa_queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    automate_qa_rate = models.FloatField(default=0.10)
    optimize_qa_rate = models.FloatField(default=0.02)
    # The figures an approver must see, in order: ["input.vendor", "output.amount"].
    summary_fields = models.JSONField(
        default=list, blank=True,
        help_text='The fields lists show for each case, in order, as "input.<field>" or '
                  '"output.<field>" (deeper fields with dots), e.g. ["input.vendor", '
                  '"output.amount"]. The approvals list offers approving only with them.')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(automate_qa_rate__gte=0, automate_qa_rate__lte=1)
                & Q(optimize_qa_rate__gte=0, optimize_qa_rate__lte=1),
                name="use_case_qa_rates_are_fractions"),
        ]

    def __str__(self):
        return self.slug

    def clean(self):
        from exceptions_app.contracts import check_schema

        for field in ("input_schema", "output_schema"):
            if getattr(self, field):
                try:
                    check_schema(getattr(self, field))
                except ValidationError as exc:
                    raise ValidationError({field: exc.messages}) from exc
        if self.summary_fields is None:  # the admin's empty JSON field: none declared
            self.summary_fields = []
        problems = self.summary_field_problems()
        if problems:
            raise ValidationError({"summary_fields": problems})

    def summary_field_problems(self) -> list[str]:
        """Why ``summary_fields`` cannot be shown, in words; [] when they can."""
        if not isinstance(self.summary_fields, list):
            return ['Summary fields are a list of field paths, like ["input.vendor", '
                    '"output.amount"].']
        problems = []
        for path in self.summary_fields:
            source, _, rest = path.partition(".") if isinstance(path, str) else ("", "", "")
            if source not in SUMMARY_SOURCES or not rest:
                problems.append(f'{path!r} is not a field path: start it with "input." or '
                                f'"output.", like "input.vendor".')
                continue
            schema = self.input_schema if source == "input" else self.output_schema
            if schema and schema_at(schema, rest.split(".")) is None:
                problems.append(f'"{path}": the {source} schema has no field "{rest}".')
        if len(set(map(str, self.summary_fields))) != len(self.summary_fields):
            problems.append("Each summary field is listed once.")
        return problems

    @property
    def reason_code_values(self) -> list[str]:
        return [item["code"] for item in self.reason_codes]


def validate_document_hosts(value) -> None:
    """An AI system's document hosts: a list of host names (``docs.example.com``), the only
    hosts a document URL of its decisions may name. A name, not a URL: no scheme or path."""
    expected = 'document_hosts must be a list of host names like ["docs.example.com"]'
    if not isinstance(value, list):
        raise ValidationError(f"{expected}; got {type(value).__name__}.",
                              code="document_hosts_shape")
    for index, host in enumerate(value):
        if not isinstance(host, str) or not HOST_NAME.fullmatch(host):
            raise ValidationError(f"{expected}; item {index + 1} ({host!r}) is not a host name.",
                                  code="document_hosts_shape")


# Lower-case DNS labels joined by dots, the last one alphabetic: no scheme, port or path.
HOST_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


class AiSystem(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="owned_ai_systems")
    use_cases = models.ManyToManyField(UseCase, blank=True, related_name="ai_systems")
    callback_url = models.URLField(blank=True, validators=[validate_callback_url])
    signing_secret = models.CharField(max_length=200, blank=True)
    # After a rotation the old secret signs too, until the receiver has the new one.
    previous_signing_secret = models.CharField(max_length=200, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    document_hosts = models.JSONField(
        default=list, blank=True, validators=[validate_document_hosts],
        help_text='Hosts its decisions\' document URLs may name, e.g. ["docs.example.com"].')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    @property
    def actor_label(self) -> str:
        return f"ai:{self.slug}"


class AiSystemAPIKey(AbstractAPIKey):
    """Hashed at rest (SHA-512 of a high-entropy key); the key is shown once."""

    ai_system = models.ForeignKey(AiSystem, on_delete=models.CASCADE, related_name="api_keys")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "AI system API key"
        verbose_name_plural = "AI system API keys"


class PolicyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


# Once approved, a policy version and its rules never change (SPEC).
FROZEN_POLICY_STATUSES = (PolicyStatus.APPROVED, PolicyStatus.ACTIVE, PolicyStatus.RETIRED)


class RuleAction(models.TextChoices):
    AUTO = "auto", "Accept automatically"
    REVIEW = "review", "Send to review"
    REJECT = "reject", "Reject"


# Who may take a step of a version's life is the services' question (the use case's
# RACI matrix, ``services/policies.py``): the transitions below only say which steps
# fit which status.
class PolicyVersion(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    use_case = models.ForeignKey(UseCase, on_delete=models.PROTECT, related_name="policies")
    number = models.PositiveIntegerField()
    text = models.TextField(help_text="The policy in business language (Markdown).")
    # The lifecycle (SPEC): draft -> proposed -> approved -> active -> retired, a proposed
    # version sent back to draft, and a retired or approved one (re-)activated: a rollback.
    status = FSMField(max_length=20, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT,
                      protected=True)
    default_action = models.CharField(max_length=10, choices=RuleAction.choices,
                                      default=RuleAction.REVIEW)
    default_reason = models.CharField(max_length=300,
                                      default="No rule matched: the policy's default applies")
    default_priority = models.PositiveSmallIntegerField(default=50)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["use_case", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["use_case", "number"],
                                    name="policy_number_unique_per_use_case"),
            models.UniqueConstraint(fields=["use_case"], condition=Q(status="active"),
                                    name="one_active_policy_per_use_case"),
        ]

    def __str__(self):
        return f"{self.use_case.slug} v{self.number}"

    @property
    def is_frozen(self) -> bool:
        return self.status in FROZEN_POLICY_STATUSES

    @transition(field=status, source=PolicyStatus.DRAFT, target=PolicyStatus.PROPOSED)
    def propose(self):
        pass

    @transition(field=status, source=PolicyStatus.PROPOSED, target=PolicyStatus.DRAFT)
    def send_back(self):
        pass

    @transition(field=status, source=PolicyStatus.PROPOSED, target=PolicyStatus.APPROVED)
    def approve(self, *, by, at):
        self.approved_by = by
        self.approved_at = at

    @transition(field=status, source=[PolicyStatus.APPROVED, PolicyStatus.RETIRED],
                target=PolicyStatus.ACTIVE)
    def activate(self, *, at):
        self.activated_at = at

    @transition(field=status, source=PolicyStatus.ACTIVE, target=PolicyStatus.RETIRED)
    def retire(self):
        pass


class Rule(models.Model):
    """A CEL expression over input, output, confidence, model_version and meta."""

    policy = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField()
    name = models.SlugField(max_length=100)
    description = models.CharField(max_length=300,
                                   help_text="Why this rule exists, in a reviewer's words.")
    expression = models.TextField()
    action = models.CharField(max_length=10, choices=RuleAction.choices)
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", help_text="Defaults to the use case's queue.")
    priority = models.PositiveSmallIntegerField(default=50)
    four_eyes = models.BooleanField(default=False)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"],
                                    name="rule_position_unique_per_policy"),
            models.UniqueConstraint(fields=["policy", "name"],
                                    name="rule_name_unique_per_policy"),
        ]

    def __str__(self):
        return f"{self.name}: {self.expression}"

    def clean(self):
        from exceptions_app import rule_types
        from exceptions_app.policy import check_rule

        try:
            check_rule(self.expression)
        except ValueError as exc:
            raise ValidationError({"expression": str(exc)}) from exc
        # Typed against the contract when the rule knows its version (the admin's rows);
        # the policy services check their rules themselves (``_build_rules``).
        policy = self._meta.get_field("policy").get_cached_value(self, default=None)
        if policy is not None and policy.use_case_id is not None:
            found = rule_types.problems(
                self.expression, contract=rule_types.Contract.of(policy.use_case))
            if found:
                raise ValidationError({"expression": found})


class Decision(models.Model):
    """One AI output as posted. Immutable once stored."""

    ai_system = models.ForeignKey(AiSystem, on_delete=models.PROTECT, related_name="decisions")
    use_case = models.ForeignKey(UseCase, on_delete=models.PROTECT, related_name="decisions")
    external_id = models.CharField(max_length=200)
    # sha256 of the canonical body: a replay with another body answers 422 (I1).
    body_hash = models.CharField(max_length=64)
    model_version = models.CharField(max_length=200)
    confidence = models.FloatField()
    input = models.JSONField()
    output = models.JSONField()
    explanation = models.TextField(blank=True)
    meta = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT,
                                       related_name="decisions")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    route = models.CharField(max_length=10, choices=Route.choices)
    # [{"rule": "name" | null, "action": "...", "text": "words"}], first the deciding one.
    reasons = models.JSONField(default=list)
    qa_sampled = models.BooleanField(default=False)
    case = models.OneToOneField(Case, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="decision")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Its resolution's place in the AI system's resolution feed (GET /resolutions/),
    # given when the case is resolved under a per-system lock held until commit: places
    # follow commit order, so a reader's cursor never passes one that commits late.
    feed_position = models.PositiveBigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            # I1: one decision per (AI system, external_id).
            models.UniqueConstraint(fields=["ai_system", "external_id"],
                                    name="decision_external_id_unique_per_ai_system"),
            models.CheckConstraint(condition=Q(confidence__gte=0, confidence__lte=1),
                                   name="decision_confidence_is_a_fraction"),
            # Also the feed's index: a page and the next place are one range scan each.
            models.UniqueConstraint(fields=["ai_system", "feed_position"],
                                    condition=Q(feed_position__isnull=False),
                                    name="decision_feed_position_unique"),
        ]
        indexes = [
            models.Index(fields=["use_case", "received_at"], name="decision_use_case_idx"),
        ]

    def __str__(self):
        return f"{self.ai_system.slug}/{self.external_id}"


class LabelledExample(models.Model):
    """A resolution fed back as training and evaluation data."""

    # Its place in the export, given under one lock held until the resolution commits:
    # places follow commit order, so an export read by cursor never passes a late one.
    position = models.PositiveBigIntegerField(unique=True, editable=False)
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT,
                                    related_name="labelled_example")
    use_case = models.ForeignKey(UseCase, on_delete=models.PROTECT, related_name="+")
    input = models.JSONField()
    ai_output = models.JSONField()
    human_output = models.JSONField(null=True)
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    reason_code = models.CharField(max_length=100, blank=True)
    notes = models.TextField(blank=True)
    model_version = models.CharField(max_length=200)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    ai_confidence = models.FloatField()
    blind = models.BooleanField(default=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="+")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    time_spent_seconds = models.PositiveIntegerField(default=0)
    decided_at = models.DateTimeField()
    created_at = models.DateTimeField()
    # The decision's provenance, copied with the label so that an export of millions reads
    # this table alone, in position order.
    external_id = models.CharField(max_length=200)
    stage = models.CharField(max_length=20, choices=Stage.choices)
    route = models.CharField(max_length=10, choices=Route.choices)
    rules_fired = models.JSONField(default=list)  # names of the rules that decided the route
    qa_sample = models.BooleanField(default=False)
    received_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["use_case", "created_at"], name="label_use_case_idx")]

    def __str__(self):
        return f"{self.get_verdict_display()}: decision {self.decision_id}"


# Calibration: agreement with the people by confidence tenth ([0, 0.1), ..., [0.9, 1]).
CONFIDENCE_BINS = 10
# Seconds from post to final resolution, bucketed for p50/p90 without keeping every
# figure: upper edges of 1 min, 5 min, 15 min, 1 h, 4 h, 1 day, 3 days, then longer.
LATENCY_BUCKET_EDGES = (60, 300, 900, 3_600, 14_400, 86_400, 259_200)


class DailyQuality(models.Model):
    """What came of one day's decisions of a use case, model version and route.

    Kept up to date as things happen rather than by a sweep, so the monitoring page
    reads a few hundred rows however many decisions there are: intake adds the
    decisions (one upsert per batch, ``quality.count_intake``) and the final resolution
    adds what people said (one update, ``quality.counting_resolution``). Both run in the
    transaction that stores the decision or its resolution, so a rollup never counts
    what did not commit. The day is the one the decision was received (UTC): a
    resolution counts on its decision's day, so each day's rates are of one cohort.
    """

    day = models.DateField()
    use_case = models.ForeignKey(UseCase, on_delete=models.CASCADE, related_name="+")
    model_version = models.CharField(max_length=200)
    route = models.CharField(max_length=10, choices=Route.choices)
    # At intake.
    decisions = models.PositiveIntegerField(default=0)
    qa_sampled = models.PositiveIntegerField(default=0)
    # At final resolution.
    resolved = models.PositiveIntegerField(default=0)
    # Resolved within the case's due time (or with no due time): SLA compliance.
    resolved_in_time = models.PositiveIntegerField(default=0)
    overridden = models.PositiveIntegerField(default=0)  # corrected or rejected
    qa_reviewed = models.PositiveIntegerField(default=0)
    qa_agreed = models.PositiveIntegerField(default=0)
    # Four-eyes: first resolutions a second person looked at, and those sent back.
    second_reviewed = models.PositiveIntegerField(default=0)
    sent_back = models.PositiveIntegerField(default=0)
    reviewer_seconds = models.PositiveBigIntegerField(default=0)
    seconds_to_decision = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            # The key intake's upsert adds to.
            models.UniqueConstraint(fields=["use_case", "day", "model_version", "route"],
                                    name="daily_quality_key"),
        ]

    def __str__(self):
        return f"{self.use_case_id} {self.day} {self.model_version} {self.route}"


def confidence_bin_fields(n: int) -> tuple[str, str, str]:
    """The columns of confidence bin ``n``: resolved, agreed, sum of confidences."""
    return (f"confidence_bin_{n}_resolved", f"confidence_bin_{n}_agreed",
            f"confidence_bin_{n}_confidence_sum")


def latency_bucket_field(n: int) -> str:
    return f"latency_bucket_{n}"


# Histograms as columns, not rows: a resolution adds to all of them in one UPDATE, and
# every database the project runs on can add to a column.
for _bin in range(CONFIDENCE_BINS):
    _resolved, _agreed, _confidence_sum = confidence_bin_fields(_bin)
    DailyQuality.add_to_class(_resolved, models.PositiveIntegerField(default=0))
    DailyQuality.add_to_class(_agreed, models.PositiveIntegerField(default=0))
    DailyQuality.add_to_class(_confidence_sum, models.FloatField(default=0))
for _bucket in range(len(LATENCY_BUCKET_EDGES) + 1):
    DailyQuality.add_to_class(latency_bucket_field(_bucket),
                              models.PositiveIntegerField(default=0))


class DriftReference(models.Model):
    """What a use case's decisions looked like in a window its owner chose: the
    distribution of the confidence and of each declared input feature, against which
    recent decisions are compared (population stability index, ``services.drift``).

    Kept as the distributions, not the window: a check reads only recent decisions.
    ``distributions`` maps a feature (``confidence``, ``input.<property>``) to
    ``{"kind": "numeric", "edges": [...], "shares": [...]}`` (bins between the reference's
    deciles, then one for a missing value) or ``{"kind": "categorical", "categories":
    [...], "shares": [...]}`` (the common categories, then "other").
    """

    use_case = models.OneToOneField(UseCase, on_delete=models.CASCADE,
                                    related_name="drift_reference")
    since = models.DateTimeField()
    until = models.DateTimeField()
    decisions = models.PositiveIntegerField()
    distributions = models.JSONField()
    warn_threshold = models.FloatField(default=0.1)
    alert_threshold = models.FloatField(default=0.25)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    set_at = models.DateTimeField()
    # The last check: when, over how many recent decisions, and each feature's PSI.
    checked_at = models.DateTimeField(null=True, blank=True)
    checked_decisions = models.PositiveIntegerField(default=0)
    last_psi = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(warn_threshold__gt=0, alert_threshold__gt=F("warn_threshold")),
                name="drift_thresholds_rise"),
        ]

    def __str__(self):
        return f"drift reference of {self.use_case_id}"


class DriftLevel(models.TextChoices):
    WARN = "warn", "Warning"
    ALERT = "alert", "Alert"


class DriftAlert(models.Model):
    """A feature whose recent distribution moved past a threshold; open until it falls
    back under the warning threshold or the owner sets a new reference."""

    use_case = models.ForeignKey(UseCase, on_delete=models.CASCADE, related_name="drift_alerts")
    feature = models.CharField(max_length=200)
    level = models.CharField(max_length=10, choices=DriftLevel.choices)
    psi = models.FloatField()  # at the highest level reached
    raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            # A re-run or concurrent check cannot raise the same drift twice.
            models.UniqueConstraint(fields=["use_case", "feature"],
                                    condition=Q(cleared_at__isnull=True),
                                    name="one_open_drift_alert_per_feature"),
        ]

    def __str__(self):
        return f"{self.get_level_display()}: {self.feature} of {self.use_case_id}"


class DocumentKind(models.TextChoices):
    UPLOAD = "upload", "Uploaded"
    URL = "url", "Fetched from a URL"


class FetchStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be fetched"
    STORED = "stored", "Stored"
    FAILED = "failed", "Could not be fetched"


class DecisionDocument(models.Model):
    """A source document of a decision (the invoice the AI read), uploaded by its AI system
    or fetched from a URL on the system's document hosts; its bytes live in the
    ``documents`` storage under ``storage_name``. Its type is sniffed from the bytes."""

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(max_length=10, choices=DocumentKind.choices)
    original_filename = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    storage_name = models.CharField(max_length=500, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    fetch_status = models.CharField(max_length=10, choices=FetchStatus.choices,
                                    default=FetchStatus.STORED)
    fetch_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["decision", "id"]
        constraints = [
            # One fetch per URL per decision: a replayed intake body does not fetch twice.
            models.UniqueConstraint(fields=["decision", "source_url"],
                                    condition=Q(kind="url"),
                                    name="decision_document_url_unique"),
        ]

    def __str__(self):
        return self.original_filename or self.source_url or f"document {self.pk}"

    @property
    def is_pdf(self) -> bool:
        return self.content_type == "application/pdf"


class BacktestStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Backtest(models.Model):
    """A policy version judged against recorded decisions, beside the version then active.

    Runs as a Celery job (``services/backtests.py``); ``processed`` of ``total`` is its
    progress, ``result`` what it found once done.
    """

    use_case = models.ForeignKey(UseCase, on_delete=models.PROTECT, related_name="backtests")
    policy = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    baseline = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    # The window: the last ``last`` decisions received, or those received in [since, until).
    last = models.PositiveIntegerField(null=True, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=BacktestStatus.choices,
                              default=BacktestStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    # Written with each progress step: a running backtest whose heartbeat stops lost its
    # worker, and is handed over again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(last__isnull=False, since__isnull=True, until__isnull=True)
                           | Q(last__isnull=True, since__isnull=False, until__isnull=False)),
                name="backtest_window_is_last_or_period"),
        ]

    def __str__(self):
        return f"backtest of {self.policy} against {self.baseline.number}"

    @property
    def is_finished(self) -> bool:
        return self.status in (BacktestStatus.DONE, BacktestStatus.FAILED)

    @property
    def changed(self) -> int | None:
        """How many decisions the version would route otherwise (None until done)."""
        if self.status != BacktestStatus.DONE:
            return None
        return self.result["decisions"] - self.result["unchanged"]


class ShadowStatus(models.TextChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    STOPPED = "stopped", "Stopped"


class Shadow(models.Model):
    """A proposed policy version run beside the active one for a period: every decision
    received meanwhile is also routed by it, and what it would have done is recorded
    (``ShadowOutcome``), to be compared as a backtest is (``services/shadows.py``)."""

    use_case = models.ForeignKey(UseCase, on_delete=models.PROTECT, related_name="shadows")
    policy = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    baseline = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=ShadowStatus.choices,
                              default=ShadowStatus.RUNNING)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    started_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    # The last decision routed (decisions are taken in id order) and how many so far.
    cursor = models.PositiveBigIntegerField(default=0)
    judged = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["policy"], condition=Q(status="running"),
                                    name="one_running_shadow_per_policy_version"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("started_at")),
                                   name="shadow_ends_after_it_starts"),
        ]

    def __str__(self):
        return f"shadow of {self.policy}"


class ShadowOutcome(models.Model):
    """What a shadowed version did with one decision, beside the active version."""

    shadow = models.ForeignKey(Shadow, on_delete=models.CASCADE, related_name="outcomes")
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="+")
    baseline_route = models.CharField(max_length=10, choices=Route.choices)
    route = models.CharField(max_length=10, choices=Route.choices)
    rule = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shadow", "decision"],
                                    name="one_outcome_per_decision_per_shadow"),
        ]

    def __str__(self):
        return f"{self.baseline_route} -> {self.route}: decision {self.decision_id}"


# Stage gates, guardrails and their counters live in their own module (``stage_models``).
from exceptions_app.stage_models import (  # noqa: E402, F401
    AutoPassTally,
    Guardrails,
    ModelVersionRecord,
    StageChange,
)
