"""A person's in-app notifications: read, or all read. Only their own (I8)."""

from datetime import datetime

from django.utils import timezone

from workflows import selectors
from workflows.models import Notification


def mark_read(*, user, notification_id: int, now: datetime | None = None) -> Notification:
    """Mark one of the user's notifications read (again: unchanged).

    Another person's notification does not exist for this user
    (``Notification.DoesNotExist``, 404).
    """
    now = now or timezone.now()
    notification = selectors.user_notifications(user=user).get(pk=notification_id)
    if notification.read_at is None:
        # Conditional: a second tab marking it at once keeps the first time.
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=now)
        notification.refresh_from_db(fields=["read_at"])
    return notification


def mark_all_read(*, user, now: datetime | None = None) -> int:
    """Mark every unread notification of the user read; answer how many changed."""
    now = now or timezone.now()
    return (selectors.user_notifications(user=user).filter(read_at__isnull=True)
            .update(read_at=now))
