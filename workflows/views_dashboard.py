"""The managers' SLA dashboard, its reassign action, and the Prometheus scrape.

Views read through ``workflows.dashboard``, write through ``workflows.services`` and
render; nothing clever happens here.
"""

import hmac

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from workflows import dashboard, metrics
from workflows.models import MANAGE_CASES, Case
from workflows.services import transitions
from workflows.services.errors import CaseConflict

PERIOD_CHOICES = [("24h", "24 h"), ("7d", "7 days"), ("30d", "30 days")]
LOOPBACK = {"127.0.0.1", "::1"}


@require_GET
@login_required
@permission_required(MANAGE_CASES, raise_exception=True)
def sla_dashboard(request):
    board = dashboard.dashboard(process=request.GET.get("process", ""),
                                queue=request.GET.get("queue", ""),
                                period=request.GET.get("period", dashboard.DEFAULT_PERIOD))
    template = ("workflows/dashboard/_body.html" if request.htmx
                else "workflows/dashboard/index.html")
    return render(request, template, {
        "nav": "dashboard", "board": board, "periods": PERIOD_CHOICES,
        "default_period": dashboard.DEFAULT_PERIOD})


class ReassignForm(forms.Form):
    to_user = forms.ModelChoiceField(queryset=get_user_model().objects.filter(is_active=True),
                                     error_messages={
                                         "required": "Choose who should take the case over.",
                                         "invalid_choice": "That person cannot take cases."})
    version = forms.IntegerField(required=False, min_value=1)


def _back(request):
    """Back to the dashboard as the manager left it (its filters), if the URL is ours."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(reverse("sla-dashboard"))


@require_POST
@login_required
@permission_required(MANAGE_CASES, raise_exception=True)
def reassign(request, pk: int):
    """Give an at-risk case to someone else: ``transitions.reassign`` does the work."""
    form = ReassignForm(request.POST)
    label = f"Case {pk}"
    if not form.is_valid():
        problems = " ".join(error for errors in form.errors.values() for error in errors)
        messages.error(request, f"{label} was not reassigned: {problems}")
        return _back(request)
    to_user = form.cleaned_data["to_user"]
    try:
        case = transitions.reassign(case_id=pk, user=request.user, to_user=to_user,
                                    expected_version=form.cleaned_data["version"])
    except Case.DoesNotExist as exc:
        raise Http404("No such case.") from exc
    except ValidationError as exc:
        problems = " ".join(exc.messages)
        messages.error(request, f"{label} was not reassigned: {problems}")
    except (CaseConflict, ConcurrentTransition):
        messages.error(request, f"{label} was not reassigned: someone changed it since this "
                                "page was loaded. The dashboard below shows it as it is now; "
                                "try again if it still needs a new owner.")
    except TransitionNotAllowed as exc:
        messages.error(request, f"{label} was not reassigned: {exc} The dashboard below "
                                "shows it as it is now.")
    else:
        messages.success(request, f"{case.title or label} is now with {to_user.display_name}.")
    return _back(request)


def _metrics_allowed(request) -> bool:
    """``METRICS_TOKEN`` set: the scraper must send it as a bearer token. Unset: nobody,
    unless ``METRICS_ALLOW_LOOPBACK`` lets a scraper on this host (loopback) read; behind
    a reverse proxy on the same host every request comes from loopback, so loopback is
    no identity by default. See docs/PERFORMANCE.md, Dashboard."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  token.encode())
    return (getattr(settings, "METRICS_ALLOW_LOOPBACK", False)
            and request.META.get("REMOTE_ADDR", "") in LOOPBACK)


@never_cache
@require_GET
def prometheus_metrics(request):
    if not _metrics_allowed(request):
        token = getattr(settings, "METRICS_TOKEN", "")
        response = HttpResponse("Metrics need the bearer token set in METRICS_TOKEN.\n"
                                if token else
                                "Metrics are closed: set METRICS_TOKEN and scrape with "
                                "'Authorization: Bearer <token>' (or, on a host with no "
                                "proxy in front, METRICS_ALLOW_LOOPBACK=True).\n",
                                status=401 if token else 403,
                                content_type="text/plain; charset=utf-8")
        if token:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition(accept=request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
