"""The generic human-task engine: queues, cases and the audit trail.

Nothing here knows about AI. The domain app creates cases and listens for their
resolution through ``workflows.hooks``.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.db.models import Q
from django_fsm import (
    ConcurrentTransition,
    ConcurrentTransitionMixin,
    FSMField,
    FSMModelMixin,
    transition,
)


class User(AbstractUser):
    """A person who works, owns or audits cases. Django's user, with one home for how a
    person is named on pages, in e-mails and in audit wording."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.get_username()

    @property
    def picker_label(self) -> str:
        """Name and username, for choosing among people who may share a name."""
        full = self.get_full_name()
        return f"{full} ({self.get_username()})" if full else self.get_username()


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


class CaseState(models.TextChoices):
    OPEN = "open", "Open"
    ASSIGNED = "assigned", "Assigned"
    WAITING = "waiting", "Waiting for information"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    ESCALATED = "escalated", "Escalated"
    RESOLVED = "resolved", "Resolved"
    CANCELLED = "cancelled", "Cancelled"


# The case-state groups, each written once and imported wherever it is asked, the
# partial indexes' conditions included (``Case.Meta.indexes``). Tuples, not sets: an
# index condition built from one must render the same SQL in every process.
# Not closed: work still to do (``case_open_idx``).
OPEN_STATES = (CaseState.OPEN, CaseState.ASSIGNED, CaseState.WAITING,
               CaseState.PENDING_APPROVAL, CaseState.ESCALATED)
# Waiting in a queue for anyone to claim (``case_claimable_idx``, ``case_waiting_age_idx``).
CLAIMABLE_STATES = (CaseState.OPEN, CaseState.ESCALATED)
# Open with a running SLA clock; ``waiting`` is paused (``case_sla_check_idx``).
RUNNING_STATES = (CaseState.OPEN, CaseState.ASSIGNED, CaseState.PENDING_APPROVAL,
                  CaseState.ESCALATED)
# Held by a person: a reviewer's load, their own work in hand.
HELD_STATES = (CaseState.ASSIGNED, CaseState.WAITING)
# What ``Case.escalate`` hands up from and ``Case.reassign`` reassigns from; a case
# pending approval keeps its state.
HAND_UP_STATES = (CaseState.OPEN, CaseState.ASSIGNED, CaseState.WAITING, CaseState.ESCALATED)
CLOSED_STATES = (CaseState.RESOLVED, CaseState.CANCELLED)


class Verdict(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    CORRECTED = "corrected", "Corrected"
    REJECTED = "rejected", "Rejected"


# Who is a manager: the one permission pages, API, services and transitions ask about.
MANAGE_CASES = "workflows.manage_cases"


def is_manager(user) -> bool:
    """A manager (``MANAGE_CASES``: directly, through a group, or a superuser) sees and
    manages every case."""
    return bool(user and user.is_authenticated and user.has_perm(MANAGE_CASES))


def _can_manage(case, user) -> bool:
    return is_manager(user)


def _is_assignee(case, user) -> bool:
    return bool(user and user.is_authenticated and case.assignee_id == user.pk)


def _is_member(case, user) -> bool:
    """A member of the case's queue, directly or through a group (I8)."""
    from workflows.selectors import works_queue  # selectors read these models

    return works_queue(user=user, queue_id=case.queue_id)


def _can_work(case, user) -> bool:
    return _is_assignee(case, user) or is_manager(user)


def _can_claim(case, user) -> bool:
    return is_manager(user) or _is_member(case, user)


def _can_approve(case, user) -> bool:
    # Four eyes: the approver is never the person who resolved first.
    if not (user and user.is_authenticated) or user.pk == case.first_reviewer_id:
        return False
    return is_manager(user) or _is_member(case, user)


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
    # SLA (I6): the policy version the case started under, and its clocks. The sweep
    # reads ``sla_next_check_at`` only: the earliest warning or deadline still ahead.
    sla_policy = models.ForeignKey("SlaPolicy", null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="cases")
    response_warn_at = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    # Business time left on the resolution clock while it is paused (waiting).
    sla_remaining = models.DurationField(null=True, blank=True)
    sla_next_check_at = models.DateTimeField(null=True, blank=True)
    # Optimistic lock for fields beside ``state`` (I4): every write bumps it.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [
            # claim-next and the queue page: open work of a queue by urgency.
            models.Index(fields=["queue", "-priority", "due_at", "id"],
                         condition=Q(state__in=list(CLAIMABLE_STATES)),
                         name="case_claimable_idx"),
            # the home page's oldest waiting case per queue (selectors.queue_summaries).
            models.Index(fields=["queue", "created_at"],
                         condition=Q(state__in=list(CLAIMABLE_STATES)),
                         name="case_waiting_age_idx"),
            # lease expiry sweep (expire_claim_leases).
            models.Index(fields=["lease_expires_at"], condition=Q(state=CaseState.ASSIGNED),
                         name="case_lease_idx"),
            # the reviewer's own work on the home page.
            models.Index(fields=["assignee", "state"], name="case_assignee_idx"),
            # the SLA sweep (sweep_sla_clocks): open cases whose next check is due.
            models.Index(fields=["sla_next_check_at"],
                         condition=Q(state__in=list(RUNNING_STATES)),
                         name="case_sla_check_idx"),
            # the SLA dashboard and /metrics: open work by queue, whatever the history.
            models.Index(fields=["queue", "due_at"],
                         condition=Q(state__in=list(OPEN_STATES)),
                         name="case_open_idx"),
            # the dashboard's closed-case figures over a period.
            models.Index(fields=["queue", "closed_at"], condition=Q(closed_at__isnull=False),
                         name="case_closed_idx"),
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
        self.bump_version()
        try:
            super().save(*args, **kwargs)
        except BaseException:
            self.version = self._version_read
            raise
        finally:
            self._version_read = None

    def _do_update(self, base_qs, using, pk_val, *args, **kwargs):
        version_read = getattr(self, "_version_read", None)
        if version_read is None:
            return super()._do_update(base_qs, using, pk_val, *args, **kwargs)
        updated = super()._do_update(base_qs.filter(version=version_read), using, pk_val,
                                     *args, **kwargs)
        if not updated and base_qs.filter(pk=pk_val).using(using).exists():
            # The row is there but moved on: refuse, rather than let Django try an INSERT.
            raise ConcurrentTransition(
                "Cannot save the case: it was changed since it was fetched from the database.")
        return updated

    def bump_version(self) -> None:
        """Every write moves the version on by one (I4), whoever writes: ``save`` calls
        this, and so does a bulk write of rows it holds locked before ``bulk_update``.
        (The escalation guard's conditional UPDATE bumps it in SQL, as ``version + 1``.)"""
        self.version += 1

    def field_values(self) -> dict:
        """Every column's value as it stands, by attribute name (``queue_id``...)."""
        return {field.attname: getattr(self, field.attname)
                for field in self._meta.concrete_fields}

    def changed_since(self, values: dict) -> list[str]:
        """The columns changed since ``field_values`` answered ``values``: what a partial
        write must store, so that no field, however new, is silently left out."""
        return [name for name, value in self.field_values().items() if values[name] != value]

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
                source=HAND_UP_STATES, target=CaseState.ESCALATED, permission=_can_work)
    def escalate(self):
        self.escalation_level += 1
        self.assignee = None
        self.lease_expires_at = None

    @transition(field=state,
                source=HAND_UP_STATES, target=CaseState.ASSIGNED, permission=_can_manage)
    def reassign(self, *, to, until):
        self.assignee = to
        self.lease_expires_at = until

    # target=None: the case keeps its state (django-fsm leaves it unchanged).
    @transition(field=state, source=[CaseState.ASSIGNED, CaseState.WAITING], target=None,
                permission=_system_only)
    def hand_over(self, *, to, until):
        """The holder is away: their delegate takes the case as it stands (a claimed
        case with a fresh lease; a waiting one still waiting for its information).

        Never offered as an action on the case: going away runs it
        (``transitions.hand_over``), which checks who may do that."""
        self.assignee = to
        if self.state == CaseState.ASSIGNED:
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
        raise PermissionError("Audit rows are append-only.")

    def delete(self):
        raise PermissionError("Audit rows are append-only.")


class AppendOnlyModel(models.Model):
    """Rows that are inserted once and never changed (I7).

    PostgreSQL enforces it with a trigger (migration 0002); these guards cover the
    ORM everywhere, SQLite included.
    """

    objects = AuditQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Audit rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit rows are append-only.")


class AuditEvent(AppendOnlyModel):
    """One append-only audit record (I7).

    Writers insert events with their own ``row_hash`` and take no lock, so intake
    never serializes on the chain. ``services.audit.seal`` later links committed
    events into one hash chain (``AuditSeal``) and signs the head
    (``AuditCheckpoint``). A trigger refuses UPDATE and DELETE (migration 0002).
    Each row carries a keyed MAC and a database-assigned ``recorded_at`` (docs/AUDIT.md).
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
    # HMAC-SHA256 of row_hash with AUDIT_SIGNING_KEY: a row written without the key
    # (a plain INSERT, however correct its row_hash) does not verify.
    row_mac = models.CharField(max_length=64, blank=True, default="")
    # Set by the database at insert, never by the application (a trigger refuses any
    # other value, migration 0002): verification compares it with occurred_at, so an
    # event cannot be backdated.
    recorded_at = models.DateTimeField(db_default=models.functions.Now(), editable=False)
    # occurred_at was set in the past on purpose (the demo seed replays days of history);
    # verification accepts such events only when asked to. Covered by row_hash.
    backfilled = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["case", "id"], name="audit_case_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ]

    def __str__(self):
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.verb}"

class AuditSeal(AppendOnlyModel):
    """An event's place in the chain: chain_hash = sha256(previous chain_hash + row_hash)."""

    seq = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(AuditEvent, on_delete=models.PROTECT, related_name="seal")
    chain_hash = models.CharField(max_length=64)

    def __str__(self):
        return f"#{self.seq} {self.chain_hash[:12]}"


class AuditCheckpoint(AppendOnlyModel):
    """The signed head of the chain after each sealing run; detects a truncated tail."""

    seq = models.BigIntegerField(unique=True)
    chain_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    def __str__(self):
        return f"checkpoint #{self.seq} {self.chain_hash[:12]}"


# --- Who owns the work: processes and the RACI matrix -----------------------------


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


class ReviewerStatus(models.Model):
    """Availability for push assignment; away reviewers hand their work to a delegate."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="reviewer_status")
    available = models.BooleanField(default=True)
    away_since = models.DateTimeField(null=True, blank=True)
    delegate = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "reviewer statuses"

    def __str__(self):
        return f"{self.user}: {'available' if self.available else 'away'}"


# --- SLA: calendars and versioned policies ------------------------------------------


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


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"
    IN_APP = "in_app", "In-app notification"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed for good"


class OutboxMessage(models.Model):
    """A side effect written in the transaction that causes it, relayed by Celery.

    ``id`` is stable across retries, so receivers deduplicate by it (``webhook-id``).
    ``dedup_key`` makes writing the same effect twice impossible.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    dedup_key = models.CharField(max_length=200, unique=True)
    recipient = models.CharField(max_length=500)  # e-mail address, URL or user id
    subject = models.CharField(max_length=300, blank=True)
    payload = models.JSONField(default=dict)
    case = models.ForeignKey("Case", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="outbox_messages", db_constraint=False)
    status = models.CharField(max_length=10, choices=OutboxStatus.choices,
                              default=OutboxStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # the relay's sweep (relay_outbox).
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"),
                         name="outbox_pending_idx"),
        ]

    def __str__(self):
        return f"{self.channel} to {self.recipient} ({self.status})"


class DeliveryAttempt(models.Model):
    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE,
                                related_name="delivery_attempts")
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["message", "attempted_at"]

    def __str__(self):
        return f"{self.message_id} at {self.attempted_at:%H:%M:%S}: {self.succeeded}"


class Notification(models.Model):
    """In-app notification; created by relaying an in-app outbox message (once)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notifications")
    message = models.OneToOneField(OutboxMessage, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="notification")
    case = models.ForeignKey("Case", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"], name="notification_user_idx"),
                   models.Index(fields=["user"], condition=Q(read_at__isnull=True),
                                name="notification_unread_idx")]

    def __str__(self):
        return f"to {self.user}: {self.text[:40]}"
