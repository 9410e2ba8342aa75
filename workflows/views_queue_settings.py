"""A queue's settings for managers: create a queue, change its name, process, lease,
wall-clock targets and assignment. Through the audited ``queues`` services (I7), as the
admin; members are changed on the queue's members page (``views_queues``)."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from workflows import selectors
from workflows.models import AssignmentMode, Process, Queue
from workflows.services import queues

DURATION_HELP = "As hh:mm:ss, e.g. 02:00:00 for two hours, or 1 00:00:00 for a day."


class QueueSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=50, help_text="Its name in the API, e.g. "
                                                    "claims-review. Fixed once created.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    process = forms.ModelChoiceField(queryset=Process.objects.none(), required=False,
                                     help_text="The process (use case) whose RACI matrix "
                                               "and escalation chain its cases follow.")
    blind = forms.BooleanField(required=False, label="Blind review",
                               help_text="Reviewers decide from the input alone.")
    lease = forms.DurationField(initial=timedelta(minutes=30), label="Claim lease",
                                help_text="A claimed case untouched this long goes back to the "
                                          "queue. " + DURATION_HELP)
    response_target = forms.DurationField(initial=timedelta(hours=1),
                                          label="First response target",
                                          help_text="Wall-clock, until an SLA policy applies. "
                                                    + DURATION_HELP)
    resolution_target = forms.DurationField(initial=timedelta(hours=8),
                                            label="Resolution target", help_text=DURATION_HELP)
    assignment_mode = forms.ChoiceField(choices=AssignmentMode.choices,
                                        initial=AssignmentMode.PULL)
    max_open_per_reviewer = forms.IntegerField(min_value=1, max_value=1000, initial=10,
                                               label="Most open cases pushed to one person")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["process"].queryset = Process.objects.order_by("name")
        if editing:
            del self.fields["slug"]

    def values(self) -> dict:
        values = dict(self.cleaned_data)
        values["lease_seconds"] = int(values.pop("lease").total_seconds())
        return values


def _require_manager(user) -> None:
    if not selectors.is_manager(user):
        raise PermissionDenied("Only managers can create and change queues.")


def _save(form, call):
    try:
        return call()
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
        for name, problems in errors.items():
            name = "lease" if name == "lease_seconds" else name
            form.add_error(name if name in form.fields else None, problems)
        return None


@login_required
@require_http_methods(["GET", "POST"])
def queue_create(request):
    _require_manager(request.user)
    form = QueueSettingsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        queue = _save(form, lambda: queues.queue_create(actor=request.user, **form.values()))
        if queue is not None:
            messages.success(request, f"{queue.name} is created; add the people who work it.")
            return redirect("queue-members", slug=queue.slug)
    return render(request, "workflows/queues/settings.html",
                  {"nav": "queues", "form": form}, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def queue_settings(request, slug: str):
    _require_manager(request.user)
    queue = get_object_or_404(Queue, slug=slug)
    if request.method == "POST":
        form = QueueSettingsForm(request.POST, editing=True)
        if form.is_valid():
            values = form.values()
            changes = {name: value for name, value in values.items()
                       if getattr(queue, name) != value}
            if _save(form, lambda: queues.queue_update(queue=queue, actor=request.user,
                                                       **changes)) is not None:
                messages.success(request, f"{queue.name} saved.")
                return redirect("queue-settings", slug=queue.slug)
    else:
        form = QueueSettingsForm(editing=True, initial={
            "name": queue.name, "description": queue.description, "process": queue.process_id,
            "blind": queue.blind, "lease": queue.lease_time,
            "response_target": queue.response_target,
            "resolution_target": queue.resolution_target,
            "assignment_mode": queue.assignment_mode,
            "max_open_per_reviewer": queue.max_open_per_reviewer})
    return render(request, "workflows/queues/settings.html",
                  {"nav": "queues", "form": form, "queue": queue},
                  status=400 if form.errors else 200)
