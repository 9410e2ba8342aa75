"""Cases, their state machine and their resolution."""


from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import (
    ConcurrentTransition,
    ConcurrentTransitionMixin,
    FSMField,
    FSMModelMixin,
    transition,
)

from .queues import Queue


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


# The auditor: reads everything (every case, configuration and the audit trail) and
# changes nothing; a person holding it is refused every change, whatever else they hold
# (separation of duties; workflows.middleware.AuditorChangesNothingMiddleware). A
# superuser holds every permission, so only a person given it on purpose is an auditor.
READ_EVERYTHING = "workflows.read_everything"
# The audit log, its case trails and chain verification: managers and auditors (and
# owners, through their role: exceptions_app/roles.py).
VIEW_AUDIT_TRAIL = "workflows.view_audit_trail"
# The evidence export for a period, a privileged action (audited).
EXPORT_EVIDENCE = "workflows.export_evidence"


def is_auditor(user) -> bool:
    return bool(user and user.is_authenticated and not user.is_superuser
                and user.has_perm(READ_EVERYTHING))


def reads_everything(user) -> bool:
    """Sees every case and configuration: a manager or an auditor (I8's exceptions)."""
    return is_manager(user) or is_auditor(user)


def reads_audit_trail(user) -> bool:
    return bool(user and user.is_authenticated
                and (is_manager(user) or user.has_perm(VIEW_AUDIT_TRAIL)
                     or user.has_perm(READ_EVERYTHING)))


def exports_evidence(user) -> bool:
    return bool(user and user.is_authenticated
                and (user.has_perm(EXPORT_EVIDENCE) or user.has_perm(READ_EVERYTHING)))


def _can_manage(case, user) -> bool:
    return is_manager(user)


def _is_assignee(case, user) -> bool:
    return bool(user and user.is_authenticated and case.assignee_id == user.pk)


def _is_member(case, user) -> bool:
    """A member of the case's queue, directly or through a group (I8).

    Asked once per case object and person: the transitions a page or an answer offers
    (approve and send back, claim) each ask it, and the case object lives for one
    request or one service call.
    """
    from workflows.selectors import works_queue  # selectors read these models

    asked = case.__dict__.setdefault("_members_asked", {})
    key = (user.pk, case.queue_id)
    if key not in asked:
        asked[key] = works_queue(user=user, queue_id=case.queue_id)
    return asked[key]


def remember_membership(case, user, *, works_queue: bool) -> None:
    """What a read of the case already answered about ``_is_member`` (the case page
    reads it with ``selectors.with_membership``), so the question is not asked again."""
    case.__dict__.setdefault("_members_asked", {})[(user.pk, case.queue_id)] = works_queue


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
    # What the case list's search reads: the title and the values the domain gives
    # (``hooks.search_values``), lower-cased, written once when the case is opened
    # (``services.cases.new_cases``). On PostgreSQL a trigram GIN index serves
    # ``LIKE '%term%'`` on it (migration 0003, ``case_search_trgm_idx``).
    search_text = models.TextField(blank=True, default="", editable=False)

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
            # the case list's filters on open cases (breached, at risk, open states):
            # newest first, read without the table (``case_filters.narrow``), so it
            # holds every column the scope and those filters test. PostgreSQL only
            # covers (``include``); elsewhere it is a plain partial index.
            models.Index(fields=["id"], condition=Q(state__in=list(OPEN_STATES)),
                         include=["queue", "state", "assignee", "first_reviewer", "priority",
                                  "due_at", "warn_at", "response_warn_at", "waiting_since",
                                  "first_claimed_at", "escalation_level"],
                         name="case_open_list_idx"),
            # the top bar's count of approvals waiting (``selectors.pending_approvals``):
            # without it the planner counts them by reading every open case's entry of
            # the index above.
            models.Index(fields=["first_reviewer"],
                         condition=Q(state=CaseState.PENDING_APPROVAL),
                         name="case_pending_approval_idx"),
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

    @property
    def state_fields(self):
        # django-fsm would filter every field of the model each time a case is built (50
        # times for a page of the API); the state field is one, and fixed.
        return (self._meta.get_field("state"),)

    @property
    def label(self) -> str:
        """How pages, notifications and e-mails name the case: its title (the domain's,
        e.g. "Invoice approval: inv-2026-000123"), else its number."""
        return self.title or f"Case {self.pk}"

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

    def holds_live_lease(self, user, now) -> bool:
        """Does ``user`` hold this case on a lease that has not lapsed? (An escalation's
        owner holds it without a lease.) Only then does the holder's activity renew it."""
        return (self.state == CaseState.ASSIGNED and self.assignee_id == getattr(user, "pk", None)
                and self.lease_expires_at is not None and self.lease_expires_at > now)

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


class SavedCaseView(models.Model):
    """A person's own filters of the case list, under a name they chose."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="saved_case_views")
    name = models.CharField(max_length=80)
    # The list's query string as it was saved (``queue=intake&sla=breached``).
    query = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"],
                                               name="saved_case_view_name_once")]

    def __str__(self):
        return f"{self.name} ({self.user})"


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


class CaseComment(models.Model):
    """A note on a case while it is worked: Markdown, shown sanitised in the timeline.

    ``mentioned`` are the people its ``@username`` mentions reached (each may see the
    case, and was notified). Written by ``workflows.services.comments`` only, audited.
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="case_comments")
    body = models.TextField(help_text="Markdown.")
    mentioned = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                       related_name="case_mentions")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["case", "created_at"], name="comment_case_idx")]

    def __str__(self):
        return f"comment by {self.author} on case {self.case_id}"
