"""The engine's own pages: a person's notifications, and the managers' delivery log.

Views read through ``workflows.selectors``, write through ``workflows.services`` and
render; nothing clever happens here.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from workflows import selectors
from workflows.models import MANAGE_CASES, Channel, Notification, OutboxStatus
from workflows.services import notifications, outbox
from workflows.services.errors import Conflict

PAGE_SIZE = 50


def _page(request, rows):
    return Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))


def _back(request, default: str):
    """Where a form came from (a notification's case link, the list), if it is ours."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(default)


@require_GET
@login_required
def notification_list(request):
    unread_only = request.GET.get("unread") == "1"
    rows = selectors.user_notifications(user=request.user)
    if unread_only:
        rows = rows.filter(read_at__isnull=True)
    return render(request, "workflows/notifications.html", {
        "nav": "notifications", "page": _page(request, rows), "unread_only": unread_only})


@require_POST
@login_required
def notification_read(request, pk: int):
    try:
        notification = notifications.mark_read(user=request.user, notification_id=pk)
    except Notification.DoesNotExist as exc:
        raise Http404("No such notification.") from exc
    if request.POST.get("open") and notification.case_id:
        return redirect("case", pk=notification.case_id)
    return _back(request, "notifications")


@require_POST
@login_required
def notifications_read_all(request):
    notifications.mark_all_read(user=request.user)
    return _back(request, "notifications")


@require_GET
@login_required
@permission_required(MANAGE_CASES, raise_exception=True)
def delivery_log(request):
    status = request.GET.get("status", "")
    channel = request.GET.get("channel", "")
    status = status if status in OutboxStatus.values else ""
    channel = channel if channel in Channel.values else ""
    rows = selectors.delivery_log(status=status, channel=channel)
    return render(request, "workflows/delivery_log.html", {
        "nav": "delivery-log", "page": _page(request, rows), "status": status,
        "channel": channel, "statuses": OutboxStatus.choices, "channels": Channel.choices})


@require_POST
@login_required
@permission_required(MANAGE_CASES, raise_exception=True)
def redeliver_message(request, message_id: str):
    try:
        outbox.redeliver(message_id=message_id, actor=request.user)
    except Conflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Sent again: its new attempts appear here.")
    return _back(request, "delivery-log")
