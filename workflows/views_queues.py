"""Queue membership for managers: who works each queue, and changing its members.

A person works a queue as a member (directly or through a group) or as Responsible in
the RACI matrix of the queue's process (``workflows.db``, the one membership selector);
this page changes the members, through the audited ``queue_update`` service, and shows
the Responsible beside them, with a link to the matrix where they are changed.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from workflows import selectors
from workflows.models import Queue, RaciAssignment, RaciRole
from workflows.services import queues
from workflows.views_raci import PeopleField


def _require_manager(user) -> None:
    if not selectors.is_manager(user):
        raise PermissionDenied("Only managers can see and change who works each queue.")


class MembersForm(forms.Form):
    members = PeopleField(queryset=get_user_model().objects.none(), required=False,
                          widget=forms.CheckboxSelectMultiple, label="People")
    member_groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        label="Groups (everyone in them)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["members"].queryset = User.objects.filter(is_active=True).order_by(
            User.USERNAME_FIELD)
        self.fields["member_groups"].queryset = Group.objects.order_by("name")


@login_required
def queue_index(request):
    _require_manager(request.user)
    all_queues = Queue.objects.select_related("process").order_by("name")
    workers = selectors.queue_worker_ids(queue.pk for queue in all_queues)
    rows = [{"queue": queue, "workers": len(workers.get(queue.pk, ()))} for queue in all_queues]
    return render(request, "workflows/queues/index.html", {"nav": "queues", "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def queue_members(request, slug):
    _require_manager(request.user)
    queue = get_object_or_404(Queue.objects.select_related("process"), slug=slug)
    if request.method == "POST":
        form = MembersForm(request.POST)
        if form.is_valid():
            queues.queue_update(queue=queue, actor=request.user, **form.cleaned_data)
            messages.success(request, f"Members of {queue.name} saved.")
            return redirect("queue-members", slug=queue.slug)
    else:
        form = MembersForm(initial={"members": list(queue.members.values_list("pk", flat=True)),
                                    "member_groups": list(queue.member_groups.values_list(
                                        "pk", flat=True))})
    responsible = (RaciAssignment.objects.filter(process=queue.process_id,
                                                 role=RaciRole.RESPONSIBLE)
                   .select_related("user", "group").order_by("activity")
                   if queue.process_id else [])
    return render(request, "workflows/queues/members.html", {
        "nav": "queues", "queue": queue, "form": form, "responsible": responsible,
        "workers": selectors.queue_workers(queue_id=queue.pk).order_by("username")})
