"""Where work waits and who may do it: queues, processes and their RACI matrix."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q


class AssignmentMode(models.TextChoices):
    PULL = "pull", "Reviewers pull (claim next)"
    ROUND_ROBIN = "round_robin", "Push: round-robin"
    LEAST_LOADED = "least_loaded", "Push: least loaded"


class Queue(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                     related_name="review_queues")
    member_groups = models.ManyToManyField(Group, blank=True, related_name="review_queues")
    # A claim is a lease: untouched this long, the case goes back to the queue (I3).
    lease_seconds = models.PositiveIntegerField(default=30 * 60)
    # Blind review: reviewers decide from the input alone; the suggestion is hidden.
    blind = models.BooleanField(default=False)
    # Wall-clock targets for new cases until business-hours SLA policies take over.
    response_target = models.DurationField(default=timedelta(hours=1))
    resolution_target = models.DurationField(default=timedelta(hours=8))
    process = models.ForeignKey("Process", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="queues")
    assignment_mode = models.CharField(max_length=20, choices=AssignmentMode.choices,
                                       default=AssignmentMode.PULL)
    # Push assignment gives nobody more open cases than this.
    max_open_per_reviewer = models.PositiveSmallIntegerField(default=10)
    # Round-robin: the member who got the last pushed case.
    last_pushed_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def lease_time(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


class Process(models.Model):
    """A line of work the engine runs: it owns a RACI matrix and an escalation chain.

    The domain gives each of its use cases one; queues belong to a process.
    """

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "processes"

    def __str__(self):
        return self.name


class Activity(models.TextChoices):
    """The engine's activities; the domain registers its own (``hooks.register_activities``)
    and ``activity_choices`` lists them all, the engine's first."""

    REVIEW = "review", "Review"
    ESCALATION = "escalation", "Escalation"
    INCIDENT = "incident", "Incident"


def activity_choices() -> list[tuple[str, str]]:
    """Every activity a RACI matrix has a row for: the engine's, then the domain's."""
    from workflows import hooks

    return [*Activity.choices, *hooks.activity_choices()]


def activity_values() -> list[str]:
    return [value for value, _ in activity_choices()]


def activity_label(value: str) -> str:
    return dict(activity_choices()).get(value, value)


class RaciRole(models.TextChoices):
    RESPONSIBLE = "R", "Responsible"
    ACCOUNTABLE = "A", "Accountable"
    CONSULTED = "C", "Consulted"
    INFORMED = "I", "Informed"


class RaciAssignment(models.Model):
    """One cell entry of the matrix: a user or a group holds a role for an activity."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="raci")
    activity = models.CharField(max_length=20, choices=activity_choices)
    role = models.CharField(max_length=1, choices=RaciRole.choices)
    # Deleting a holder would change the matrix without an audit event: hand their
    # roles over (raci service) or deactivate the account instead.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.PROTECT, related_name="raci_assignments")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="raci_assignments")

    class Meta:
        ordering = ["process", "activity", "role"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="raci_user_xor_group"),
            models.UniqueConstraint(fields=["process", "activity", "role", "user"],
                                    condition=Q(user__isnull=False), name="raci_user_once"),
            models.UniqueConstraint(fields=["process", "activity", "role", "group"],
                                    condition=Q(group__isnull=False), name="raci_group_once"),
        ]

    def __str__(self):
        holder = self.user or self.group
        return f"{self.process}: {self.get_activity_display()} {self.role} {holder}"
