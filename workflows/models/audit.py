"""The tamper-evident audit trail: append-only events, seals and checkpoints."""


from django.conf import settings
from django.db import models

from .cases import Case


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
            # An object's events, and the audit log page's filters, newest first by id
            # (keyset pages: workflows/audit_log.py).
            models.Index(fields=["object_type", "object_id", "id"], name="audit_object_idx"),
            models.Index(fields=["verb", "id"], name="audit_verb_idx"),
            models.Index(fields=["actor_label", "id"], name="audit_actor_idx"),
            # A period in time order: the log's period filter, the evidence export.
            models.Index(fields=["occurred_at", "id"], name="audit_occurred_idx"),
        ]
        permissions = [
            ("view_audit_trail", "Can read the audit log, case trails and verify the chain"),
            ("export_evidence", "Can export the audit evidence of a period"),
            ("read_everything", "Can read everything and change nothing (the auditor)"),
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


class VerificationStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for a worker"
    RUNNING = "running", "Running"
    PASSED = "passed", "Intact"
    FAILED = "failed", "Problems found"
    ERROR = "error", "Could not finish"


class AuditVerification(models.Model):
    """One check of the whole chain (``services.audit.verify``), run by a Celery worker:
    at a million events it takes minutes, longer than a request may.

    ``checked`` of ``total`` is its progress; ``report`` what ``verify`` found.
    """

    # A checkpoint kept outside the database (seq and chain_hash), to catch a truncated tail.
    expected_head_seq = models.BigIntegerField(null=True, blank=True)
    expected_head_hash = models.CharField(max_length=64, blank=True)
    accept_backfilled = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=VerificationStatus.choices,
                              default=VerificationStatus.QUEUED)
    total = models.PositiveBigIntegerField(default=0)
    checked = models.PositiveBigIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    # Written with each chunk checked: a running check whose heartbeat stops lost its
    # worker, and is handed over again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self):
        return f"audit verification {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (VerificationStatus.PASSED, VerificationStatus.FAILED,
                               VerificationStatus.ERROR)

    @property
    def expected_head(self) -> tuple[int, str] | None:
        if self.expected_head_seq is None:
            return None
        return self.expected_head_seq, self.expected_head_hash


# --- Who owns the work: processes and the RACI matrix -----------------------------
