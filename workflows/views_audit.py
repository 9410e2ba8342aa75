"""The audit log page and a case's audit trail, for managers and auditors (and whoever
holds ``workflows.view_audit_trail``): the trail read in words, filtered, newest first,
one keyset page at a time (``workflows.audit_log``)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from workflows import audit_log, hooks, selectors, verbs
from workflows.models import exports_evidence, reads_audit_trail

NOT_ALLOWED = ("The audit log is for managers and auditors (permission "
               "workflows.view_audit_trail).")


def require_audit_reader(user) -> None:
    if not reads_audit_trail(user):
        raise PermissionDenied(NOT_ALLOWED)


def _before(request) -> int | None:
    try:
        return int(request.GET.get("before", ""))
    except ValueError:
        return None


def _render_log(request, *, params, case=None):
    errors, log = {}, None
    try:
        log_filter = audit_log.parse_filter(params)
    except ValidationError as exc:
        errors, log_filter = exc.message_dict, audit_log.LogFilter()
    else:
        log = audit_log.page(log_filter, before=_before(request))
    return render(request, "workflows/audit/log.html", {
        "nav": "audit", "case": case, "log": log, "errors": errors, "values": params,
        "query": log_filter.query, "verbs": sorted(verbs.known().items(), key=lambda v: v[1]),
        "domain_filters": [(f, f.choices()) for f in hooks.audit_filters()] if case is None else [],
        "pages": [{"label": link.label, "url": reverse(link.url_name)}
                  for link in hooks.audit_pages()] if exports_evidence(request.user) else [],
    }, status=400 if errors else 200)


@require_GET
@login_required
def audit_log_page(request):
    require_audit_reader(request.user)
    return _render_log(request, params=request.GET)


@require_GET
@login_required
def case_trail(request, pk: int):
    """Every event of one case, each with whether the chain vouches for it yet."""
    require_audit_reader(request.user)
    case = get_object_or_404(selectors.visible_cases(user=request.user), pk=pk)
    return _render_log(request, params={"case": str(case.pk)}, case=case)
