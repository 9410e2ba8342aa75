"""The case pages: the queue home, a case with its actions, the approvals list.

Each view reads through ``workflows.selectors``, acts through ``workflows.services`` and
renders; what a person may do is the case model's answer
(``get_available_user_state_transitions``), never a rule repeated here. What a case is
about (its subject, the machine's suggestion, the domain's panels and output fields)
comes from ``workflows.hooks``.
"""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from workflows import db, hooks, selectors
from workflows.context_processors import main_nav
from workflows.forms import (
    CaseActionForm,
    CaseCommentForm,
    CommentForm,
    NextCaseForm,
    PreferencesForm,
    ReasonForm,
    ReassignForm,
    ResolveForm,
)
from workflows.models import (
    Case,
    CaseState,
    is_auditor,
    reads_audit_trail,
    reads_everything,
    remember_membership,
)
from workflows.presentation import ChangesSince, changes_since, output_changes, people_in
from workflows.services import claiming, comments, consults, transitions
from workflows.services import preferences as preferences_service
from workflows.services.errors import CaseConflict, ReviewerAway

# What a stale page or a lost race raises; the page answers 409 with a reload link.
CONFLICTS = (CaseConflict, TransitionNotAllowed, ConcurrentTransition)
APPROVALS_PAGE_SIZE = 25

# Model transition -> the page's action. The model decides which are available.
ACTION_FOR_TRANSITION = {
    "claim": "claim",
    "release": "release",
    "resolve": "resolve",
    "submit_for_approval": "resolve",
    "request_info": "request_info",
    "resume": "resume",
    "escalate": "escalate",
    "approve": "approve",
    "send_back": "send_back",
    "reassign": "reassign",
    "cancel": "cancel",
}


@require_GET
@login_required
def home(request):
    return _home_page(request)


def _home_page(request, *, status=200):
    context = {"nav": "home", "summaries": selectors.queue_summaries(user=request.user)}
    if request.htmx and request.GET.get("fragment") == "queues":
        return render(request, "workflows/_queues.html", context)
    away = db.reviewer_status(request.user.pk)
    context.update(
        my_cases=selectors.my_cases(user=request.user),
        preferences=PreferencesForm(initial={
            "open_next_after_resolving": request.user.open_next_after_resolving}),
        away=away if away is not None and not away.available else None)
    return render(request, "workflows/home.html", context, status=status)


@require_POST
@login_required
def preferences(request):
    form = PreferencesForm(request.POST)
    if form.is_valid():
        preferences_service.set_preferences(user=request.user, **form.cleaned_data)
        messages.success(request, "After resolving a case, the next one opens."
                         if form.cleaned_data["open_next_after_resolving"]
                         else "After resolving a case, you come back here.")
    return redirect("home")


@require_POST
@login_required
def next_case(request):
    form = NextCaseForm(request.POST)
    queue = None
    if form.is_valid() and form.cleaned_data["queue"]:
        queue = get_object_or_404(selectors.member_queues(user=request.user),
                                  slug=form.cleaned_data["queue"])
    try:
        case = claiming.claim_next(user=request.user, queue=queue)
    except ReviewerAway as refusal:
        messages.error(request, str(refusal))
        return _home_page(request, status=409)
    if case is None:
        where = f" in {queue.name}" if queue else ""
        messages.info(request, f"Nothing is waiting for you{where} right now. "
                               f"New cases appear here as they arrive.")
        return redirect("home")
    return redirect("case", pk=case.pk)


def _visible_case(request, pk):
    # One plain statement: the case if it is there and in the person's scope (I8: out of
    # scope is "not found"), with what the page shows of it, whether they work its queue
    # (which actions the page offers) and whether it has consults (most have none).
    case = db.case_for_page(case_id=pk, user_id=request.user.pk,
                            reads_everything=reads_everything(request.user))
    if case is None:
        raise Http404("No Case matches the given query.")
    remember_membership(case, request.user, works_queue=case.user_works_queue)
    return case


def _read_again(case) -> None:
    """The case as it is now, after a refused action (what was read with it is asked
    again: an escalation meanwhile may have asked for a consult)."""
    case.refresh_from_db()
    case.__dict__.pop("has_consults", None)


@dataclass
class Conflict:
    """What the page says when a stale form or a lost race was refused."""

    detail: str  # the service's words when they add something, else ""
    state: str  # the case's state now
    # Who changed the case since the page's version, and how; None when unknown.
    since: ChangesSince | None = None


def _case_page(request, case, *, bound: dict | None = None, conflict=None,
               consults_refusal: str = "", comment_form: CaseCommentForm | None = None,
               status=200):
    """The case page; ``bound`` carries a submitted form back with its errors, and
    ``comment_form`` a refused comment.

    ``consults_refusal``: why resolving or approving was refused (a required consult
    is still unanswered); nothing was saved.
    """
    bound = bound or {}
    user = request.user
    presentation = hooks.present_case(case=case)
    available = {ACTION_FOR_TRANSITION[transition.name]
                 for transition in case.get_available_user_state_transitions(user)
                 if transition.name in ACTION_FOR_TRANSITION}
    hide_suggestion = selectors.hides_suggestion(case=case, user=user)

    timeline = selectors.case_timeline(case=case)

    forms = {}
    if "resolve" in available:
        forms["resolve"] = bound.get("resolve") or _resolve_form(case, presentation, user=user)
    for action in ("escalate", "request_info", "cancel"):
        if action in available:
            forms[action] = bound.get(action) or _reason_form(case, action)
    if "send_back" in available:
        forms["send_back"] = bound.get("send_back") or CommentForm(case=case, prefix="send_back")
    if "reassign" in available:
        forms["reassign"] = bound.get("reassign") or ReassignForm(
            case=case, prefix="reassign", candidates=_reassign_candidates(case))
    for action in ("claim", "release", "resume", "approve"):
        if action in available:
            forms[action] = bound.get(action) or CaseActionForm(case=case, prefix=action)

    consults = (list(case.consults.select_related("consultee"))
                if getattr(case, "has_consults", True) else [])
    resolution = getattr(case, "resolution", None)
    context = {
        "case": case,
        "presentation": presentation,
        "hide_suggestion": hide_suggestion,
        "consults": consults,
        "consults_blocking": [c for c in consults if c.required and c.answered_at is None],
        "consults_refusal": consults_refusal,
        "asked_of_me": any(c.consultee_id == user.pk and c.answered_at is None
                           for c in consults),
        "comparison": _comparison(presentation.content, resolution, hidden=hide_suggestion,
                                  blind=case.queue.blind),
        "available": available,
        "forms": forms,
        "timeline": timeline,
        "people": _names(people_in(timeline), known=_people_read(case, resolution, timeline,
                                                                 user=user)),
        "resolution": resolution,
        "conflict": conflict,
        "not_saved": any(form.errors for form in bound.values()),
        # An auditor changes nothing, comments included.
        "comment_form": (comment_form or CaseCommentForm(prefix="comment")
                         if case.is_open and not is_auditor(user) else None),
        "shows_audit_trail": reads_audit_trail(user),
    }
    if request.htmx and request.GET.get("fragment") == "sla":
        return render(request, "workflows/_sla.html", context)
    return render(request, "workflows/case.html", context, status=status)


REASON_QUESTIONS = {
    "escalate": ("Why escalate?",
                 "The next level takes the case over. Say what they should look at."),
    "request_info": ("What information is missing?",
                     "The case waits, its SLA clock paused, until you resume it."),
    "cancel": ("Why cancel?", "A cancelled case leaves every queue and is not labelled."),
}


def _reason_form(case, action, data=None):
    label, help_text = REASON_QUESTIONS[action]
    return ReasonForm(data, case=case, prefix=action, label=label, help_text=help_text)


def _label(case) -> str:
    """How a message names a case: its title, else its number."""
    return case.label


def _person(user) -> str:
    return user.display_name if user else ""


def _people_read(case, resolution, timeline, *, user) -> list:
    """The people the page has read already: the viewer, the timeline's actors, and the
    case's and resolution's people when they came with the case (never read for this)."""
    people = [user, *(event.actor for event in timeline)]
    for row, name in ((case, "assignee"), (case, "first_reviewer"),
                      (resolution, "resolved_by"), (resolution, "approved_by")):
        if row is not None and row._meta.get_field(name).is_cached(row):
            people.append(getattr(row, name))
    return people


def _names(user_ids, *, known=()) -> dict[int, str]:
    """Display names of ``user_ids``; the people the page has already read (``known``)
    are not read again, so a timeline naming only them costs no query."""
    names = {user.pk: user.display_name for user in known
             if user is not None and user.pk in user_ids}
    missing = set(user_ids) - names.keys()
    if missing:
        names.update((user.pk, user.display_name)
                     for user in get_user_model().objects.filter(pk__in=missing))
    return names


@dataclass
class Comparison:
    """The resolution's output beside the suggested one, field by field, as the service
    compared it.

    ``hidden``: blind review and the case is still open, so only the person's side shows.
    """

    rows: list[dict]
    differing: list[str]  # labels of the fields that differ
    blind: bool
    hidden: bool


def _comparison(content: hooks.CaseContent, resolution, *, hidden: bool,
                blind: bool) -> Comparison | None:
    suggested = content.suggestion.get("output")
    if suggested is None or resolution is None or resolution.output is None:
        return None
    rows = output_changes(suggested, resolution.output)
    differing = [row["label"] for row in rows if row["changed"]]
    if hidden:  # which fields differ would give the suggestion away
        for row in rows:
            row["changed"] = False
    return Comparison(rows=rows, differing=differing, blind=blind, hidden=hidden)


def _resolve_form(case, presentation: hooks.CasePresentation, *, user, data=None):
    blind = selectors.hides_suggestion(case=case, user=user)
    content = presentation.content
    fields = (presentation.output_fields(prefill=not blind)
              if presentation.output_fields else {})
    return ResolveForm(data, case=case, prefix="resolve",
                       suggested=content.suggestion.get("output") or {},
                       reason_codes=content.reason_codes, output_fields=fields, blind=blind,
                       suggestion_name=content.suggestion_name)


def _reassign_candidates(case):
    """People who work the case's queue, directly or through a group."""
    return selectors.queue_workers(queue_id=case.queue_id).order_by("username")


@require_GET
@login_required
def case_detail(request, pk):
    case = _visible_case(request, pk)
    # The holder has the case open (this GET, or its SLA panel's poll): their claim is
    # not "untouched", so its lease renews. Anyone else's view changes nothing.
    claiming.extend_lease(case=case, user=request.user)
    return _case_page(request, case)


def _act(request, case, *, action: str, form, perform, success, next_url=None,
         check_refused=None):
    """Validate ``form``, call ``perform(data)``; on refusal show the case page again.

    ``check_refused(form)``: when the form refused some fields, let the service judge
    the others too, so every problem shows in one answer.
    """
    valid = form.is_valid()
    if valid:
        try:
            result = perform(form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        except Case.DoesNotExist as error:  # out of the user's scope meanwhile (I8)
            raise Http404("No such case.") from error
        except ReviewerAway as refusal:
            messages.error(request, str(refusal))
            return _case_page(request, case, status=409)
        except consults.ConsultsUnanswered as error:
            _read_again(case)
            return _case_page(request, case, bound={action: form}, status=409,
                              consults_refusal=str(error))
        except CONFLICTS as error:
            _read_again(case)
            since = changes_since(
                selectors.changes_since(case_id=case.pk,
                                        version=form.cleaned_data["version"]),
                viewer=request.user, now=timezone.now())
            return _case_page(request, case, status=409, conflict=Conflict(
                detail=str(error) if isinstance(error, TransitionNotAllowed) else "",
                state=case.get_state_display(), since=since))
        else:
            messages.success(request, success(result) if callable(success) else success)
            if callable(next_url):
                next_url = next_url(result)
            return redirect(next_url or reverse("case", args=[case.pk]))
    if "version" in form.errors:
        # A missing or forged version: treat it as a stale page rather than a typo.
        return _case_page(request, case, status=409, conflict=Conflict(
            detail="The page did not say which version of the case it showed.",
            state=case.get_state_display()))
    if not valid and check_refused is not None:
        check_refused(form)
    form.focus_first_error()
    return _case_page(request, case, bound={action: form}, status=400)


@require_POST
@login_required
def resolve(request, pk):
    case = _visible_case(request, pk)
    presentation = hooks.present_case(case=case)
    form = _resolve_form(case, presentation, user=request.user, data=request.POST)

    def perform(data):
        return transitions.resolve(
            case_id=case.pk, user=request.user, verdict=data["verdict"], output=data["output"],
            reason_code=data["reason_code"], notes=data["notes"],
            expected_version=data["version"])

    def success(result):
        if result.state == CaseState.PENDING_APPROVAL:
            return (f"{_label(result)} is waiting for four-eyes approval: a second reviewer "
                    f"confirms it before it counts.")
        if blind:
            return (f"{_label(result)} resolved. Your answer is compared with "
                    f"{presentation.content.suggestion_name} below; take the next case when "
                    f"you are ready.")
        if request.user.open_next_after_resolving:
            return f"{_label(result)} resolved."
        return f"{_label(result)} resolved. Take the next case when you are ready."

    def check_refused(form):
        readable = form.readable_resolution()
        if readable is None:
            return
        try:
            transitions.check_resolution(case_id=case.pk, user=request.user, **readable)
        except ValidationError as error:
            # The output lacks what the form refused: whether it differs from the
            # suggestion as a whole is for the next submission to judge.
            refused = {name: items for name, items in error.error_dict.items()
                       if name != "output"}
            if refused:
                form.add_service_errors(ValidationError(refused))

    def next_url(result):
        # Blind review: back to the case, where the answer now shows beside the suggestion.
        if blind:
            return reverse("case", args=[case.pk]) + "#resolution"
        if not request.user.open_next_after_resolving:
            return "home"
        try:
            following = claiming.claim_next(user=request.user)
        except ReviewerAway:  # marked away meanwhile: the resolution stands, home says so
            return "home"
        if following is None:
            messages.info(request, "Nothing else is waiting for you right now.")
            return "home"
        messages.info(request, f"Here is your next case: {_label(following)}.")
        return reverse("case", args=[following.pk])

    blind = case.queue.blind
    return _act(request, case, action="resolve", form=form, perform=perform, success=success,
                next_url=next_url, check_refused=check_refused)


def _reason_action(service, *, action: str, success: str, to_home: bool):
    @require_POST
    @login_required
    def view(request, pk):
        case = _visible_case(request, pk)
        form = _reason_form(case, action, data=request.POST)
        return _act(request, case, action=action, form=form,
                    perform=lambda data: service(case_id=case.pk, user=request.user,
                                                 reason=data["reason"],
                                                 expected_version=data["version"]),
                    success=lambda result: success.format(case=_label(result)),
                    next_url="home" if to_home else None)
    return view


escalate = _reason_action(transitions.escalate, action="escalate", to_home=True,
                          success="{case} escalated. The next level has it now.")
request_info = _reason_action(transitions.request_info, action="request_info", to_home=False,
                              success="Information requested. {case} waits, its SLA clock "
                                      "paused, until you resume it.")
cancel = _reason_action(transitions.cancel, action="cancel", to_home=False,
                        success="{case} cancelled.")


def _plain_action(service, *, action: str, success: str, next_url=None):
    @require_POST
    @login_required
    def view(request, pk):
        case = _visible_case(request, pk)
        form = CaseActionForm(request.POST, case=case, prefix=action)
        return _act(request, case, action=action, form=form,
                    perform=lambda data: service(case_id=case.pk, user=request.user,
                                                 expected_version=data["version"]),
                    success=lambda result: success.format(case=_label(result)),
                    next_url=next_url)
    return view


claim = _plain_action(claiming.claim, action="claim", success="{case} is yours now.")
release = _plain_action(transitions.release, action="release", next_url="home",
                        success="{case} released back to its queue.")
resume = _plain_action(transitions.resume, action="resume",
                       success="{case} resumed: it is yours again and its SLA clock runs.")
approve = _plain_action(transitions.approve, action="approve", next_url="approvals",
                        success="{case} approved and resolved.")


@require_POST
@login_required
def send_back(request, pk):
    case = _visible_case(request, pk)
    form = CommentForm(request.POST, case=case, prefix="send_back")
    return _act(request, case, action="send_back", form=form,
                perform=lambda data: transitions.send_back(
                    case_id=case.pk, user=request.user, comment=data["comment"],
                    expected_version=data["version"]),
                success=lambda result: f"{_label(result)} sent back to "
                                       f"{_person(result.assignee) or 'its first reviewer'}.",
                next_url="approvals")


@require_POST
@login_required
def comment(request, pk):
    case = _visible_case(request, pk)
    form = CaseCommentForm(request.POST, prefix="comment")
    if form.is_valid():
        try:
            made = comments.add_comment(case_id=case.pk, user=request.user,
                                        body=form.cleaned_data["body"])
        except ValidationError as error:
            for message in error.message_dict.get("body", error.messages):
                form.add_error("body", message)
        except CaseConflict as error:
            messages.error(request, str(error))
            return redirect("case", pk=case.pk)
        else:
            told = ", ".join(person.display_name for person in made.mentioned.all()
                             if person.pk != request.user.pk)
            messages.success(request, f"Comment added{f'; {told} notified' if told else ''}.")
            return redirect(reverse("case", args=[case.pk]) + f"#comment-{made.pk}")
    form.fields["body"].widget.attrs["autofocus"] = True
    return _case_page(request, case, comment_form=form, status=400)


@require_POST
@login_required
def reassign(request, pk):
    case = _visible_case(request, pk)
    form = ReassignForm(request.POST, case=case, prefix="reassign",
                        candidates=_reassign_candidates(case))
    return _act(request, case, action="reassign", form=form,
                perform=lambda data: transitions.reassign(
                    case_id=case.pk, user=request.user, to_user=data["to_user"],
                    expected_version=data["version"]),
                success=lambda result: f"{_label(result)} reassigned to "
                                       f"{_person(result.assignee)}.")


class _Approvals:
    """The approvals waiting for the person, as ``Paginator`` reads them: counted by the
    top bar's count (the same question, asked once per page), a page read in one
    statement (``db.pending_approvals``)."""

    def __init__(self, request):
        self.request = request

    def __len__(self) -> int:
        return main_nav(self.request).approvals

    def __getitem__(self, window: slice) -> list:
        if window.stop <= window.start:  # none waiting
            return []
        return db.pending_approvals(
            user_id=self.request.user.pk, reads_everything=reads_everything(self.request.user),
            offset=window.start, limit=window.stop - window.start)


@require_GET
@login_required
def approvals(request):
    # A page at a time, most urgent first: a backlog of approvals costs one page's rows.
    page = Paginator(_Approvals(request), APPROVALS_PAGE_SIZE).get_page(
        request.GET.get("page"))
    cases = page.object_list
    presentations = hooks.present_cases(cases=cases)
    rows = [{"case": case, "presentation": presentations[case.pk],
             "hide_suggestion": selectors.hides_suggestion(case=case,
                                                                        user=request.user),
             "approve": CaseActionForm(case=case, prefix="approve"),
             "send_back": CommentForm(case=case, prefix="send_back",
                                      auto_id=f"id_case{case.pk}_%s")}
            for case in cases]
    return render(request, "workflows/approvals.html",
                  {"nav": "approvals", "rows": rows, "page": page})
