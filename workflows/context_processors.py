"""What every page shows about the signed-in person: their unread notifications."""

from django.utils.functional import SimpleLazyObject

from workflows import selectors


def notifications(request) -> dict:
    """``unread_notifications``: the count for the top bar's badge.

    Lazy, so pages that do not show it (and anonymous requests) cost no query; when
    shown it is one COUNT over ``notification_unread_idx``.
    """
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"unread_notifications": 0}
    return {"unread_notifications": SimpleLazyObject(
        lambda: selectors.unread_notification_count(user=user))}
