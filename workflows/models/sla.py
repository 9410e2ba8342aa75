"""Time: calendars, SLA policies and targets, escalation chains and what they did."""


from django.conf import settings
from django.db import models
from django.db.models import Q

from .queues import Process, Queue


class Calendar(models.Model):
    """Business hours for SLA clocks; turned into ``business_time.BusinessCalendar``."""

    name = models.CharField(max_length=200, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    # {"0": [["09:00", "17:00"]], ..., "4": [["09:00", "12:00"], ["13:00", "17:00"]]};
    # Monday is "0"; a missing weekday is closed.
    working_hours = models.JSONField(default=dict)
    holiday_country = models.CharField(max_length=10, blank=True)
    holiday_subdivision = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class CalendarClosure(models.Model):
    """A custom closed period: a shutdown, a company holiday, an afternoon off."""

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="closures")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")),
                                              name="closure_ends_after_it_starts")]

    def __str__(self):
        return f"{self.calendar}: {self.reason or 'closed'} {self.starts_at:%Y-%m-%d}"


class SlaPolicy(models.Model):
    """One version of a queue's SLA. Versions never change once cases use them:
    editing a policy writes a new version, and cases keep the one they started under."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="sla_policies")
    version = models.PositiveIntegerField()
    is_current = models.BooleanField(default=True)
    calendar = models.ForeignKey(Calendar, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+", help_text="Empty: the clock runs 24x7.")
    # Warn when this fraction of a target has elapsed.
    warning_fraction = models.FloatField(default=0.75)
    # Resume and reassignment restart the resolution clock from the remaining time;
    # with this set, reassignment restarts it in full.
    restart_on_reassign = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["queue", "-version"]
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["queue", "version"], name="sla_version_unique"),
            models.UniqueConstraint(fields=["queue"], condition=Q(is_current=True),
                                    name="sla_one_current_per_queue"),
            models.CheckConstraint(condition=Q(warning_fraction__gt=0, warning_fraction__lt=1),
                                   name="sla_warning_is_a_fraction"),
        ]

    def __str__(self):
        return f"{self.queue} SLA v{self.version}"


class SlaTarget(models.Model):
    """Targets for cases of at least ``min_priority``; the highest matching row applies."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    min_priority = models.PositiveSmallIntegerField(default=0)
    response_target = models.DurationField(help_text="Time to first response (claim).")
    resolution_target = models.DurationField(help_text="Time to resolution.")

    class Meta:
        ordering = ["policy", "-min_priority"]
        constraints = [models.UniqueConstraint(fields=["policy", "min_priority"],
                                               name="sla_target_priority_unique")]

    def __str__(self):
        return f"{self.policy} priority>={self.min_priority}"


# --- Escalation ---------------------------------------------------------------------


class EscalationTarget(models.TextChoices):
    RESPONSIBLE = "R", "The Responsible for review"
    ACCOUNTABLE = "A", "The Accountable owner"
    USERS = "users", "Named people"


class EscalationOutcome(models.TextChoices):
    NONE = "none", "Wait at this level"
    HOLD_FOR_OWNER = "hold", "Hold for the Accountable owner"
    REJECT = "reject", "Resolve as rejected"
    FALLBACK = "fallback", "Apply the fallback verdict"


class EscalationLevel(models.Model):
    """One step of a process's chain; level 1 is the first escalation."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE,
                                related_name="escalation_levels")
    level = models.PositiveSmallIntegerField()
    target = models.CharField(max_length=10, choices=EscalationTarget.choices,
                              default=EscalationTarget.ACCOUNTABLE)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # Re-queue into this queue (e.g. an escalations queue) instead of assigning a person.
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    # How long a case may stay at this level before the next one.
    time_limit = models.DurationField()
    notify_informed = models.BooleanField(default=True)
    consult = models.BooleanField(default=False, help_text="Ask the Consulted for input.")
    consult_required = models.BooleanField(
        default=False, help_text="The case cannot resolve before the Consulted answer.")
    # What happens when this level's time runs out too; only the last level needs one.
    outcome = models.CharField(max_length=10, choices=EscalationOutcome.choices,
                               default=EscalationOutcome.NONE)

    class Meta:
        ordering = ["process", "level"]
        constraints = [
            models.UniqueConstraint(fields=["process", "level"], name="escalation_level_unique"),
            models.CheckConstraint(condition=Q(level__gte=1), name="escalation_level_from_one"),
        ]

    def __str__(self):
        return f"{self.process} level {self.level}"


class EscalationCause(models.TextChoices):
    RESPONSE_BREACH = "response_breach", "First response overdue"
    RESOLUTION_BREACH = "resolution_breach", "Resolution overdue"
    MANUAL = "manual", "Escalated by hand"


class Escalation(models.Model):
    """I2: at most one escalation per (case, level), whoever races to write it."""

    case = models.ForeignKey("Case", on_delete=models.PROTECT, related_name="escalations")
    level = models.PositiveSmallIntegerField()
    cause = models.CharField(max_length=20, choices=EscalationCause.choices)
    reason = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+")
    due_at = models.DateTimeField(null=True, blank=True)  # the deadline that was missed
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["case", "level"]
        constraints = [models.UniqueConstraint(fields=["case", "level"],
                                               name="one_escalation_per_case_level")]
        indexes = [models.Index(fields=["created_at"], name="escalation_created_idx")]

    def __str__(self):
        return f"case {self.case_id} level {self.level}"


class SlaClock(models.TextChoices):
    RESPONSE = "response", "First response"
    RESOLUTION = "resolution", "Resolution"


class SlaWarning(models.Model):
    """At most one warning per (case, clock, escalation level)."""

    case = models.ForeignKey("Case", on_delete=models.PROTECT, related_name="sla_warnings")
    clock = models.CharField(max_length=10, choices=SlaClock.choices)
    level = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "clock", "level"],
                                               name="one_warning_per_case_clock_level")]

    def __str__(self):
        return f"case {self.case_id} {self.clock} warning (level {self.level})"


class ConsultRequest(models.Model):
    """A question to a Consulted person, answered on the case page."""

    case = models.ForeignKey("Case", on_delete=models.PROTECT, related_name="consults")
    consultee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="consult_requests")
    question = models.TextField()
    required = models.BooleanField(default=False)
    answer = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    escalation = models.ForeignKey(Escalation, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="consults")

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["escalation", "consultee"],
                                               condition=Q(escalation__isnull=False),
                                               name="one_consult_per_escalation_person")]
        indexes = [models.Index(fields=["consultee"], condition=Q(answered_at__isnull=True),
                                name="consult_unanswered_idx")]

    def __str__(self):
        return f"consult {self.consultee} on case {self.case_id}"


# --- Side effects: the outbox (I5) and in-app notifications ---------------------------
