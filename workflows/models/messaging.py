"""What leaves Backstop: the transactional outbox, its delivery attempts, and notifications."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


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
