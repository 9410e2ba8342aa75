"""A use case's monitoring page: quality of its decisions and drift, drawn server-side.

Everybody who may see the use case reads it (I8: out of scope answers 404); its owner
(the Accountable for review) and managers set the drift reference here. The numbers are
those of ``GET /api/v1/use-cases/<slug>/quality/``.
"""

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from exceptions_app import monitoring, selectors
from exceptions_app.services import drift, quality


class DriftReferenceForm(forms.Form):
    since = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To (inclusive)",
                            widget=forms.DateInput(attrs={"type": "date"}))
    warn_threshold = forms.FloatField(label="Warn at PSI", min_value=0.001, required=False)
    alert_threshold = forms.FloatField(label="Alert at PSI", min_value=0.001, required=False)


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@require_http_methods(["GET", "POST"])
@login_required
def use_case_monitoring(request, slug: str):
    use_case = (selectors.visible_use_cases(user=request.user).filter(slug=slug)
                .select_related("process").first())
    if use_case is None:
        raise Http404("No such use case for you.")
    may_set_reference = drift.may_set_reference(user=request.user, use_case=use_case)
    reference_form = None
    if request.method == "POST" and may_set_reference:
        reference_form = DriftReferenceForm(request.POST)
        if reference_form.is_valid():
            data = reference_form.cleaned_data
            try:
                drift.set_reference(
                    use_case=use_case, actor=request.user, since=_day_start(data["since"]),
                    until=_day_start(data["until"]) + timedelta(days=1),
                    warn_threshold=data["warn_threshold"],
                    alert_threshold=data["alert_threshold"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    reference_form.add_error(field if field in reference_form.fields
                                             else None, errors)
            else:
                messages.success(request, "Drift reference set: the next check compares "
                                          "recent decisions with it.")
                return redirect("use-case-monitoring", slug=use_case.slug)
    elif request.method == "POST":
        raise PermissionDenied("Only the use case's owner or a manager sets its drift "
                               "reference.")

    try:
        period = quality.parse_period(request.GET)
        report = quality.quality_report(use_case=use_case, **period)
        period_errors = {}
    except ValidationError as exc:
        period_errors = exc.message_dict
        period = quality.parse_period({})
        report = quality.quality_report(use_case=use_case, **period)
    summary = drift.drift_summary(use_case)
    if reference_form is None:
        today = timezone.now().astimezone(UTC).date()
        reference_form = DriftReferenceForm(initial={"since": today - timedelta(days=13),
                                                     "until": today})
    return render(request, "exceptions_app/monitoring.html", {
        "nav": "use-cases", "use_case": use_case, "report": report,
        "period_errors": period_errors, "model_versions": quality.model_versions(use_case),
        "volume": monitoring.volume_chart(report),
        "overrides": monitoring.rate_chart(report, "overrides"),
        "qa": monitoring.rate_chart(report, "qa_accuracy"),
        "reliability": monitoring.reliability_diagram(report),
        "drift": summary, "drift_chart": monitoring.drift_chart(summary),
        "may_set_reference": may_set_reference, "reference_form": reference_form,
        "reviewer_hourly_cost": settings.REVIEWER_HOURLY_COST,
    })
