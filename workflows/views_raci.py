"""Pages for who owns the work: the RACI matrix (managers), a reviewer's availability,
and the consults a person was asked.

Views read, call a service and render; every write is audited by its service.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST

from workflows import selectors
from workflows.models import (
    ConsultRequest,
    Process,
    RaciAssignment,
    RaciRole,
    ReviewerStatus,
    activity_label,
    activity_values,
)
from workflows.presentation import matrix_rows
from workflows.services import assignment, consults, raci
from workflows.services.errors import CaseConflict


def _require_manager(user) -> None:
    if not raci.may_edit(user):
        raise PermissionDenied("Only managers can see and change who owns each process's "
                               "decisions.")


class PeopleField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return obj.picker_label


class CellForm(forms.Form):
    users = PeopleField(queryset=get_user_model().objects.none(), required=False,
                        widget=forms.CheckboxSelectMultiple, label="People")
    groups = forms.ModelMultipleChoiceField(queryset=Group.objects.none(), required=False,
                                            widget=forms.CheckboxSelectMultiple,
                                            label="Groups (everyone in them)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["users"].queryset = User.objects.filter(is_active=True).order_by(
            User.USERNAME_FIELD)
        self.fields["groups"].queryset = Group.objects.order_by("name")


def _cell(process: Process, activity: str, role: str) -> dict:
    if activity not in activity_values() or role not in RaciRole.values:
        raise Http404("No such cell of the matrix.")
    rows = (RaciAssignment.objects.filter(process=process, activity=activity, role=role)
            .select_related("user", "group"))
    holders = sorted(
        [row.user.display_name if row.user_id
         else f"{row.group.name} (group)" for row in rows], key=str.casefold)
    return {"process": process, "activity": activity, "role": role,
            "activity_label": activity_label(activity), "role_label": RaciRole(role).label,
            "holders": holders,
            "initial": {"users": [row.user_id for row in rows if row.user_id],
                        "groups": [row.group_id for row in rows if row.group_id]}}


def _require_reader(user) -> None:
    if not selectors.reads_everything(user):
        raise PermissionDenied("Only managers and auditors can see who owns each process's "
                               "decisions.")


@login_required
def raci_index(request):
    _require_reader(request.user)
    processes = Process.objects.prefetch_related("queues").order_by("name")
    return render(request, "workflows/raci/index.html",
                  {"nav": "raci", "processes": processes})


@login_required
def raci_matrix(request, slug: str):
    _require_reader(request.user)
    process = get_object_or_404(Process, slug=slug)
    return render(request, "workflows/raci/matrix.html",
                  {"nav": "raci", "process": process, "rows": matrix_rows(process),
                   "roles": RaciRole.choices})


@login_required
@require_http_methods(["GET", "POST"])
def raci_cell(request, slug: str, activity: str, role: str):
    """One cell: its form (GET), or its change (POST). htmx swaps the cell in place."""
    _require_manager(request.user)
    process = get_object_or_404(Process, slug=slug)
    cell = _cell(process, activity, role)
    partial = bool(getattr(request, "htmx", False))
    if request.method == "POST" and request.POST.get("cancel"):
        if partial:
            return render(request, "workflows/raci/_cell.html", cell)
        return redirect("raci-matrix", slug=process.slug)
    # An empty POST is a cell cleared, not a form unsent.
    form = CellForm(request.POST if request.method == "POST" else None,
                    initial=cell["initial"])
    if request.method == "POST" and form.is_valid():
        try:
            raci.set_assignments(process=process, activity=activity, role=role,
                                 users=form.cleaned_data["users"],
                                 groups=form.cleaned_data["groups"], actor=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            cell = _cell(process, activity, role)
            if partial:
                return render(request, "workflows/raci/_cell.html", {**cell, "saved": True})
            messages.success(request, f"Saved: {cell['role_label']} for "
                                      f"{cell['activity_label'].lower()}.")
            return redirect("raci-matrix", slug=process.slug)
    context = {**cell, "form": form, "nav": "raci"}
    status = 400 if request.method == "POST" else 200
    template = "workflows/raci/_cell_form.html" if partial else "workflows/raci/cell.html"
    return render(request, template, context, status=status)


# -- availability ---------------------------------------------------------------------------

class PersonField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.picker_label


class AwayForm(forms.Form):
    delegate = PersonField(queryset=get_user_model().objects.none(), required=False,
                           label="Who takes over your open cases?",
                           help_text="Leave empty to give your claimed cases back to "
                                     "their queues.")

    def __init__(self, *args, user, own: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        User = get_user_model()
        # Only people who may work one of their queues (the service refuses others).
        choices = [person.pk for person in assignment.delegate_choices(user=user)]
        self.fields["delegate"].queryset = (User.objects.filter(pk__in=choices)
                                            .order_by(User.USERNAME_FIELD))
        if not own:
            self.fields["delegate"].label = f"Who takes over {user.picker_label}'s open cases?"
            self.fields["delegate"].help_text = ("Leave empty to give their claimed cases "
                                                 "back to their queues.")


class PersonPickForm(forms.Form):
    """Managers: whose availability the page shows and changes (``?user=<username>``)."""

    user = PersonField(queryset=get_user_model().objects.none(), label="Person",
                       to_field_name=get_user_model().USERNAME_FIELD)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["user"].queryset = User.objects.filter(is_active=True).order_by(
            User.USERNAME_FIELD)


def _availability_subject(request):
    """The person whose availability the page is about: the signed-in user, or for
    managers whoever ``?user=`` names (others asking for someone else: 403, as the API)."""
    username = request.GET.get("user")
    if not username or username == request.user.get_username():
        return request.user
    if not selectors.is_manager(request.user):
        raise PermissionDenied("Only managers see and set someone else's availability.")
    User = get_user_model()
    return get_object_or_404(User, **{User.USERNAME_FIELD: username})


def _plural_cases(count: int) -> str:
    return f"{count} open case{'' if count == 1 else 's'}"


@login_required
@require_http_methods(["GET", "POST"])
def availability(request):
    """A reviewer marks themself away (with a delegate) or back; a manager can do the same
    for anyone, through the same service and audit trail as the API."""
    subject = _availability_subject(request)
    own = subject.pk == request.user.pk
    here = reverse("availability") + (
        "" if own else "?" + urlencode({"user": subject.get_username()}))
    who = "You are" if own else f"{subject.picker_label} is"
    form = AwayForm(request.POST if request.method == "POST" else None, user=subject, own=own)
    if request.method == "POST":
        if request.POST.get("action") == "available":
            assignment.set_available(user=subject, actor=request.user)
            messages.success(request, "Welcome back: new cases can be given to you again."
                             if own else f"{who} available again: new cases can be given "
                                         f"to them.")
            # The home page's "I am available" returns there; only to this site.
            back = request.POST.get("next", "")
            if own and url_has_allowed_host_and_scheme(
                    back, allowed_hosts={request.get_host()},
                    require_https=request.is_secure()):
                return redirect(back)
            return redirect(here)
        if form.is_valid():
            delegate = form.cleaned_data["delegate"]
            try:
                moved = assignment.set_away(user=subject, delegate=delegate,
                                            actor=request.user)
            except ValidationError as exc:
                form.add_error(None, exc)  # a dict of errors lands on its fields
            else:
                where = (f"to {delegate.picker_label}" if delegate
                         else "back to their queues")
                messages.success(request, f"{who} away. {_plural_cases(moved)} moved "
                                          f"{where}.")
                return redirect(here)
    status = assignment.statuses([subject.pk]).get(subject.pk)
    context = {"nav": "availability", "form": form, "status": status,
               "available": status is None or status.available, "subject": subject,
               "own": own}
    if selectors.is_manager(request.user):
        context["pick"] = PersonPickForm(initial={"user": subject})
        context["away"] = (ReviewerStatus.objects.filter(available=False)
                           .select_related("user", "delegate")
                           .order_by("away_since"))
    status_code = 400 if request.method == "POST" else 200
    return render(request, "workflows/raci/availability.html", context, status=status_code)


# -- consults -------------------------------------------------------------------------------

class AnswerForm(forms.Form):
    answer = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Your answer")


@login_required
def my_consults(request):
    consults = (ConsultRequest.objects.filter(consultee=request.user.pk)
                .select_related("case", "escalation").order_by("-created_at"))
    # A case closed without the answer no longer waits for it.
    waiting = [c for c in consults if c.answered_at is None and c.case.is_open]
    answered = [c for c in consults if c.answered_at is not None][:50]
    return render(request, "workflows/raci/consults.html",
                  {"nav": "consults", "waiting": waiting, "answered": answered})


@login_required
@require_POST
def consult_answer(request, pk: int):
    """Answer a consult, from "My consults" or from the case page (``return_to=case``)."""
    form = AnswerForm(request.POST)
    consult = ConsultRequest.objects.filter(pk=pk, consultee=request.user.pk).first()
    if consult is None:
        raise Http404("No such consult for you.")
    if form.is_valid():
        try:
            consults.answer_consult(consult_id=pk, user=request.user,
                                      answer=form.cleaned_data["answer"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except CaseConflict as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Thank you: your answer is on the case.")
    else:
        messages.error(request, "Write your answer before sending it.")
    if request.POST.get("return_to") == "case" and selectors.visible_cases(
            user=request.user).filter(pk=consult.case_id).exists():
        return redirect(reverse("case", args=[consult.case_id]) + f"#consult-{consult.pk}")
    return redirect("my-consults")
