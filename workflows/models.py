"""The generic human-task engine: queues, cases and the audit trail.

Nothing here knows about AI. The domain app creates cases and listens for their
resolution through ``workflows.hooks``.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django_fsm import ConcurrentTransitionMixin, FSMField, FSMModelMixin, transition


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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def lease_time(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


class CaseState(models.TextChoices):
    OPEN = "open", "Open"
    ASSIGNED = "assigned", "Assigned"
    WAITING = "waiting", "Waiting for information"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    ESCALATED = "escalated", "Escalated"
    RESOLVED = "resolved", "Resolved"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATES = (CaseState.OPEN, CaseState.ASSIGNED, CaseState.WAITING,
               CaseState.PENDING_APPROVAL, CaseState.ESCALATED)
CLAIMABLE_STATES = (CaseState.OPEN, CaseState.ESCALATED)
CLOSED_STATES = (CaseState.RESOLVED, CaseState.CANCELLED)


class Verdict(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    CORRECTED = "corrected", "Corrected"
    REJECTED = "rejected", "Rejected"


def _is_manager(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm("workflows.manage_cases"))


def _can_manage(case, user) -> bool:
    return _is_manager(user)


def _is_assignee(case, user) -> bool:
    return bool(user and user.is_authenticated and case.assignee_id == user.pk)


def _is_member(case, user) -> bool:
    """A member of the case's queue, directly or through a group (I8)."""
    if not (user and user.is_authenticated and user.pk):
        return False
    return Queue.objects.filter(
        Q(members=user) | Q(member_groups__user=user), pk=case.queue_id).exists()


def _can_work(case, user) -> bool:
    return _is_assignee(case, user) or _is_manager(user)


def _can_claim(case, user) -> bool:
    return _is_manager(user) or _is_member(case, user)


def _can_approve(case, user) -> bool:
    # Four eyes: the approver is never the person who resolved first.
    if not (user and user.is_authenticated) or user.pk == case.first_reviewer_id:
        return False
    return _is_manager(user) or _is_member(case, user)


def _system_only(case, user) -> bool:
    # Done by the engine itself (lease sweep, an upstream withdrawal), never by a person.
    return False


class Case(ConcurrentTransitionMixin, FSMModelMixin, models.Model):
    """A piece of work that needs a person.

    Transitions here only check and change state; the services in
    ``workflows/services/`` save, audit and fire side effects around them.
    """

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="cases")
    state = FSMField(default=CaseState.OPEN, choices=CaseState.choices, protected=True)
    title = models.CharField(max_length=300, blank=True)
    priority = models.PositiveSmallIntegerField(default=50)  # higher is more urgent
    requires_four_eyes = models.BooleanField(default=False)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="assigned_cases")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    first_reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="+")
    escalation_level = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    first_claimed_at = models.DateTimeField(null=True, blank=True)
    response_due_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    time_spent_seconds = models.PositiveIntegerField(default=0)
    # When the current assignee's stint began; the stint's length is added to
    # ``time_spent_seconds`` when it ends (release, resolve, request info, escalate...).
    work_started_at = models.DateTimeField(null=True, blank=True)
    # Since when the case waits for information (the SLA clock pauses meanwhile).
    waiting_since = models.DateTimeField(null=True, blank=True)
    # Optimistic lock for fields beside ``state`` (I4): every write bumps it.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [
            # claim-next and the queue page: open work of a queue by urgency.
            models.Index(fields=["queue", "-priority", "due_at", "id"],
                         condition=Q(state__in=["open", "escalated"]),
                         name="case_claimable_idx"),
            # lease expiry sweep (expire_claim_leases).
            models.Index(fields=["lease_expires_at"], condition=Q(state="assigned"),
                         name="case_lease_idx"),
            # the reviewer's own work on the home page.
            models.Index(fields=["assignee", "state"], name="case_assignee_idx"),
        ]
        constraints = [
            # I3: an assigned case always has exactly one holder of its claim.
            models.CheckConstraint(condition=~Q(state="assigned") | Q(assignee__isnull=False),
                                   name="case_assigned_has_assignee"),
        ]
        permissions = [("manage_cases", "Can reassign and cancel any case")]

    def __str__(self):
        return f"Case {self.pk}: {self.title}" if self.title else f"Case {self.pk}"

    def save(self, *args, **kwargs):
        """Write only if nobody else wrote since this instance was read (I4).

        ``ConcurrentTransitionMixin`` guards ``state``; the version guards every other
        field: the UPDATE carries ``WHERE version = <read>`` and bumps it, so a stale
        writer changes no row and gets ``ConcurrentTransition`` (HTTP 409).
        """
        if self._state.adding:
            return super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "version"}
        self._version_read = self.version
        self.version += 1
        try:
            super().save(*args, **kwargs)
        except BaseException:
            self.version = self._version_read
            raise
        finally:
            self._version_read = None

    def _do_update(self, base_qs, *args, **kwargs):
        version_read = getattr(self, "_version_read", None)
        if version_read is not None:
            base_qs = base_qs.filter(version=version_read)
        return super()._do_update(base_qs, *args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @transition(field=state, source=CLAIMABLE_STATES, target=CaseState.ASSIGNED,
                permission=_can_claim)
    def claim(self, *, by, until):
        self.assignee = by
        self.lease_expires_at = until

    @transition(field=state, source=CaseState.ASSIGNED, target=CaseState.OPEN,
                permission=_can_work)
    def release(self):
        self.assignee = None
        self.lease_expires_at = None

    @transition(field=state, source=CaseState.ASSIGNED, target=CaseState.OPEN,
                permission=_system_only)
    def expire_lease(self):
        self.assignee = None
        self.lease_expires_at = None

    @transition(field=state, source=CaseState.ASSIGNED, target=CaseState.RESOLVED,
                permission=_can_work, conditions=[lambda case: not case.requires_four_eyes])
    def resolve(self, *, by):
        self.first_reviewer = by
        self.lease_expires_at = None

    @transition(field=state, source=CaseState.ASSIGNED, target=CaseState.PENDING_APPROVAL,
                permission=_can_work, conditions=[lambda case: case.requires_four_eyes])
    def submit_for_approval(self, *, by):
        self.first_reviewer = by
        self.assignee = None
        self.lease_expires_at = None

    @transition(field=state, source=CaseState.PENDING_APPROVAL, target=CaseState.RESOLVED,
                permission=_can_approve)
    def approve(self):
        pass

    @transition(field=state, source=CaseState.PENDING_APPROVAL, target=CaseState.ASSIGNED,
                permission=_can_approve)
    def send_back(self, *, until):
        self.assignee_id = self.first_reviewer_id
        self.lease_expires_at = until

    @transition(field=state, source=CaseState.ASSIGNED, target=CaseState.WAITING,
                permission=_can_work)
    def request_info(self):
        self.lease_expires_at = None

    @transition(field=state, source=CaseState.WAITING, target=CaseState.ASSIGNED,
                permission=_can_work)
    def resume(self, *, until):
        self.lease_expires_at = until

    @transition(field=state,
                source=[CaseState.OPEN, CaseState.ASSIGNED, CaseState.WAITING,
                        CaseState.ESCALATED],
                target=CaseState.ESCALATED, permission=_can_work)
    def escalate(self):
        self.escalation_level += 1
        self.assignee = None
        self.lease_expires_at = None

    @transition(field=state,
                source=[CaseState.OPEN, CaseState.ASSIGNED, CaseState.ESCALATED,
                        CaseState.WAITING],
                target=CaseState.ASSIGNED, permission=_can_manage)
    def reassign(self, *, to, until):
        self.assignee = to
        self.lease_expires_at = until

    @transition(field=state, source=OPEN_STATES, target=CaseState.CANCELLED,
                permission=_can_manage)
    def cancel(self):
        self.assignee = None
        self.lease_expires_at = None

    @transition(field=state, source=OPEN_STATES, target=CaseState.CANCELLED,
                permission=_system_only)
    def withdraw(self):
        """The upstream system took its request back."""
        self.assignee = None
        self.lease_expires_at = None


class Resolution(models.Model):
    """The human decision on a case; four-eyes cases carry the approver too."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="resolution")
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    output = models.JSONField(null=True, blank=True)
    reason_code = models.CharField(max_length=100, blank=True)
    notes = models.TextField(blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="resolutions")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="approvals")
    time_spent_seconds = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.get_verdict_display()} by {self.resolved_by} on case {self.case_id}"


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One append-only audit record (I7).

    Writers insert events with their own ``row_hash`` and take no lock, so intake
    never serializes on the chain. ``services.audit.seal`` later links committed
    events into one hash chain (``AuditSeal``) and signs the head
    (``AuditCheckpoint``). On PostgreSQL a trigger refuses UPDATE and DELETE.
    """

    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=200)  # "reviewer", "ai:demo-ai", "system"
    verb = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="audit_events", db_constraint=False)
    data = models.JSONField(default=dict, blank=True)  # before/after and context
    row_hash = models.CharField(max_length=64)

    objects = AuditQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["case", "id"], name="audit_case_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.verb}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")


class AuditSeal(models.Model):
    """An event's place in the chain: chain_hash = sha256(previous chain_hash + row_hash)."""

    seq = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(AuditEvent, on_delete=models.PROTECT, related_name="seal")
    chain_hash = models.CharField(max_length=64)

    def __str__(self):
        return f"#{self.seq} {self.chain_hash[:12]}"


class AuditCheckpoint(models.Model):
    """The signed head of the chain after each sealing run; detects a truncated tail."""

    seq = models.BigIntegerField(unique=True)
    chain_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    def __str__(self):
        return f"checkpoint #{self.seq} {self.chain_hash[:12]}"
