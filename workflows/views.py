"""The engine's own pages: a person's notifications and profile, and the managers'
delivery log.

Views read through ``workflows.selectors``, write through ``workflows.services`` and
render; nothing clever happens here.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from workflows import selectors, time_zones
from workflows.models import MANAGE_CASES, Channel, Notification, OutboxStatus
from workflows.services import notifications, outbox, people
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
    page = _page(request, selectors.delivery_log(status=status, channel=channel))
    page.object_list = list(page.object_list)
    # An in-app message is addressed to a user id: the page names whom it reached.
    in_app = [message for message in page.object_list
              if message.channel == Channel.IN_APP and message.recipient.isdigit()]
    people = selectors.display_names(user_ids=[int(message.recipient) for message in in_app])
    for message in in_app:
        message.recipient_name = people.get(int(message.recipient), "")
    return render(request, "workflows/delivery_log.html", {
        "nav": "delivery-log", "page": page, "status": status,
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
class ProfileForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Show times in", required=False,
        help_text="Every time on your pages is shown in this zone, and names it.")

    def __init__(self, *args, browser_zone: str, office_zone: str, **kwargs):
        super().__init__(*args, **kwargs)
        automatic = (f"Automatic: your browser's ({browser_zone})" if browser_zone
                     else f"Automatic: your browser's, else the office's ({office_zone})")
        self.fields["time_zone"].choices = [("", automatic)] + [
            (name, name.replace("_", " ")) for name in sorted(time_zones.known_zones())]


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    """A person's own settings: the time zone their pages show times in."""
    browser_zone = time_zones.browser_time_zone(request)
    office_zone = time_zones.office_time_zone()
    form = ProfileForm(request.POST if request.method == "POST" else None,
                       initial={"time_zone": request.user.time_zone},
                       browser_zone=browser_zone, office_zone=office_zone)
    if request.method == "POST" and form.is_valid():
        try:
            people.set_time_zone(user=request.user, time_zone=form.cleaned_data["time_zone"],
                                 actor=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)  # a dict of errors lands on its fields
        else:
            zone = time_zones.zone_name_for(request)
            messages.success(request, f"Saved: times are shown in {zone} now.")
            return redirect("profile")
    source = ("you chose it" if request.user.time_zone
              else "your browser's zone" if browser_zone
              else "the office's zone: your browser has not said its own")
    return render(request, "workflows/profile.html", {
        "nav": "profile", "form": form, "zone": timezone.get_current_timezone_name(),
        "source": source, "now": timezone.now()},
        status=400 if request.method == "POST" else 200)
