"""The case list: finding cases (filters, search, saved views) and a manager's bulk
actions on a selection of them.

The filters are the API's (``workflows.case_filters``) over the cases the person may
see (I8); a page is a keyset page of 50, newest first, so no count and no offset. Rows
are written out in the list's own template, not included one by one: a page of 50
renders in a few milliseconds.
"""

from urllib.parse import parse_qsl

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from workflows import db, selectors
from workflows.case_filters import UNASSIGNED, CaseFilter
from workflows.forms import BulkActionForm
from workflows.models import Case, CaseState, SavedCaseView, is_manager
from workflows.services import bulk, saved_views

PAGE_SIZE = 50


@require_GET
@login_required
def case_list(request):
    user = request.user
    before = _position(request.GET.get("before"))
    filters = CaseFilter(request.GET, queryset=selectors.visible_cases(user=user),
                         request=request, before=before)
    queues = list(selectors.member_queues(user=user).select_related("process")
                  .order_by("name"))
    status, cases, next_before = 200, [], None
    if filters.is_valid():
        cases, next_before = selectors.case_list_page(cases=filters.qs, before=before,
                                                      size=PAGE_SIZE,
                                                      floor=filters.search_floor)
    else:
        status = 400
    manager = is_manager(user)
    query = _filter_query(request.GET)
    context = {
        "nav": "cases",
        # The filters are written out in the page's template (no widget templates:
        # those cost more than the 50 rows); the FilterSet judges what was sent.
        "chosen": {name: request.GET.get(name, "") for name in CaseFilter.base_filters},
        "chosen_states": request.GET.getlist("state"),
        "choices": _filter_choices(queues=queues),
        "errors": filters.errors,
        "other_errors": [(CaseFilter.base_filters[name].label or name, message)
                         for name, messages in filters.errors.items() if name != "search"
                         for message in messages],
        "cases": cases,
        "query": query,
        "next_before": next_before,
        # A search that stopped short of a full page: how far down it looked.
        "searched_to": filters.search_floor if next_before and len(cases) < PAGE_SIZE
        else None,
        "first_page": before is not None,
        "saved_views": selectors.saved_case_views(user=user),
        "filtered": bool(query),
        "manager": manager,
        # Rows link to ``<case_base><id>/`` (the case page): one reverse, not fifty.
        "case_base": reverse("case-index"),
    }
    if manager:
        context["bulk"] = _bulk_form()
    return render(request, "workflows/case_list.html", context, status=status)


def _position(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isascii() and raw.isdigit() else None


def _filter_query(params) -> str:
    """The list's filters as a query string, without its paging."""
    kept = params.copy()
    kept.pop("before", None)
    return kept.urlencode()


def _filter_choices(*, queues) -> dict:
    """What the filters offer a person: their queues, use cases and colleagues."""
    return {
        "queues": queues,
        "processes": sorted({q.process for q in queues if q.process_id},
                            key=lambda process: process.name),
        "people": get_user_model().objects.filter(
            is_active=True, pk__in={person for _, person in db.queue_worker_pairs(
                [q.pk for q in queues])}).order_by("username"),
        "states": CaseState.choices,
        "sla": CaseFilter.base_filters["sla"].extra["choices"],
        "unassigned": UNASSIGNED,
    }


def _bulk_form(data=None) -> BulkActionForm:
    return BulkActionForm(data, actions=bulk.BulkAction.choices,
                          people=get_user_model().objects.filter(is_active=True)
                          .order_by("username"))


@require_POST
@login_required
def bulk_action(request):
    """Run a manager's action on the ticked cases; answer one result per case."""
    if not is_manager(request.user):
        raise PermissionDenied("Only a manager may act on several cases at once.")
    form = _bulk_form(request.POST)
    back = reverse("case-index") + _back_query(request.POST.get("back", ""))
    results = []
    if form.is_valid():
        data = form.cleaned_data
        try:
            results = bulk.apply(user=request.user, action=data["action"],
                                 case_ids=data["cases"], to_user=data["to_user"],
                                 priority=data["priority"], reason=data["reason"])
        except ValidationError as error:
            form.add_service_errors(error)
    if not results:
        return render(request, "workflows/bulk_results.html",
                      {"nav": "cases", "form": form, "back": back}, status=400)
    titles = dict(Case.objects.filter(pk__in=[r.case_id for r in results])
                  .values_list("pk", "title"))
    rows = [{"result": result, "title": titles.get(result.case_id) or f"Case {result.case_id}",
             "exists": result.case_id in titles} for result in results]
    counts = {outcome: sum(1 for r in results if r.outcome == outcome)
              for outcome in bulk.Outcome}
    return render(request, "workflows/bulk_results.html", {
        "nav": "cases", "rows": rows, "counts": counts, "back": back,
        "action": bulk.BulkAction(form.cleaned_data["action"]).label})


def _back_query(query: str) -> str:
    # Only a query string of the list itself: never somewhere else.
    return "?" + query if query and not query.startswith(("/", "?")) else ""


@require_POST
@login_required
def save_view(request):
    query = request.POST.get("query", "")
    try:
        view = saved_views.save_view(user=request.user, name=request.POST.get("name", ""),
                                     filters=parse_qsl(query, keep_blank_values=False))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(reverse("case-index") + _back_query(query))
    messages.success(request, f"Saved this view as “{view.name}”.")
    return redirect(reverse("case-index") + _back_query(view.query))


@require_POST
@login_required
def delete_view(request, pk):
    try:
        saved_views.delete_view(user=request.user, view_id=pk)
    except SavedCaseView.DoesNotExist as error:
        raise Http404("No such saved view of yours.") from error
    messages.success(request, "View deleted.")
    return redirect("case-index")
