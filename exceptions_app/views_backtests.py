"""Before a policy version is approved: its backtest against recorded decisions, its run
in shadow beside the active version, and the confidence-threshold trade-off over the
labelled history. The API's numbers, drawn."""

from datetime import UTC, datetime, time, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from exceptions_app import monitoring, selectors
from exceptions_app.models import Backtest, PolicyStatus, Shadow
from exceptions_app.services import backtests, quality, shadows, thresholds

DEFAULT_LAST = 10_000


class BacktestForm(forms.Form):
    version = forms.TypedChoiceField(label="Policy version", coerce=int)
    last = forms.IntegerField(label="The most recent decisions", min_value=1, required=False,
                              initial=DEFAULT_LAST,
                              help_text="Or leave empty and give a period.")
    since = forms.DateField(label="From", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To (inclusive)", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [
            (policy.number, f"v{policy.number} ({policy.get_status_display().lower()})")
            for policy in versions]

    def window(self) -> dict:
        data = self.cleaned_data
        if data.get("last") is not None or not (data.get("since") or data.get("until")):
            return {"last": data.get("last")}
        return {"since": _day_start(data["since"]) if data.get("since") else None,
                "until": (_day_start(data["until"]) + timedelta(days=1)
                          if data.get("until") else None)}


class ShadowForm(forms.Form):
    version = forms.TypedChoiceField(label="Proposed version", coerce=int)
    days = forms.IntegerField(label="Days beside the active version", min_value=1,
                              max_value=shadows.MAX_DAYS, initial=7)

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(policy.number, f"v{policy.number}")
                                          for policy in versions]


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _visible_use_case(request, slug: str):
    use_case = selectors.visible_use_cases(user=request.user).filter(slug=slug).first()
    if use_case is None:
        raise Http404("No such use case for you.")
    return use_case


@require_http_methods(["GET", "POST"])
@login_required
def use_case_backtests(request, slug: str):
    use_case = _visible_use_case(request, slug)
    may_backtest = backtests.may_backtest(user=request.user, use_case=use_case)
    # Any version but the active one, which every backtest is compared with.
    versions = list(use_case.policies.exclude(status=PolicyStatus.ACTIVE).order_by("-number"))
    form = BacktestForm(request.POST if request.method == "POST" else None, versions=versions,
                        initial={"last": DEFAULT_LAST})
    if request.method == "POST":
        if not may_backtest:
            raise PermissionDenied("Only managers and the people Responsible or Accountable "
                                   "for its policy changes backtest its policies.")
        if form.is_valid():
            policy = next(policy for policy in versions
                          if policy.number == form.cleaned_data["version"])
            try:
                backtest = backtests.request_backtest(policy=policy, actor=request.user,
                                                      **form.window())
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                return redirect("backtest", pk=backtest.pk)
    return _backtests_page(request, use_case, may_backtest=may_backtest, versions=versions,
                           form=form)


@require_POST
@login_required
def start_shadow(request, slug: str):
    use_case = _visible_use_case(request, slug)
    may_backtest = backtests.may_backtest(user=request.user, use_case=use_case)
    if not may_backtest:
        raise PermissionDenied("Only managers and the people Responsible or Accountable for "
                               "its policy changes shadow its policies.")
    versions = list(use_case.policies.exclude(status=PolicyStatus.ACTIVE).order_by("-number"))
    form = ShadowForm(request.POST, versions=_proposed(versions))
    if form.is_valid():
        policy = next(policy for policy in versions
                      if policy.number == form.cleaned_data["version"])
        try:
            shadow = shadows.start_shadow(policy=policy, actor=request.user,
                                          days=form.cleaned_data["days"])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return redirect("shadow", pk=shadow.pk)
    return _backtests_page(request, use_case, may_backtest=may_backtest, versions=versions,
                           shadow_form=form)


def _proposed(versions) -> list:
    return [policy for policy in versions if policy.status == PolicyStatus.PROPOSED]


def _add_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _backtests_page(request, use_case, *, may_backtest: bool, versions: list, form=None,
                    shadow_form=None):
    form = form or BacktestForm(versions=versions, initial={"last": DEFAULT_LAST})
    shadow_form = shadow_form or ShadowForm(versions=_proposed(versions))
    return render(request, "exceptions_app/backtests.html", {
        "use_case": use_case, "form": form, "shadow_form": shadow_form,
        "may_backtest": may_backtest, "versions": versions,
        "proposed": _proposed(versions),
        "backtests": backtests.recent_backtests(use_case=use_case),
        "shadows": shadows.recent_shadows(use_case=use_case),
    }, status=400 if form.errors or shadow_form.errors else 200)


@require_GET
@login_required
def backtest_detail(request, pk: int):
    backtest = (Backtest.objects.filter(
        pk=pk, use_case__in=selectors.visible_use_cases(user=request.user))
        .select_related("use_case", "policy", "baseline", "requested_by").first())
    if backtest is None:
        raise Http404("No such backtest for you.")
    template = ("exceptions_app/backtest/_body.html" if request.htmx
                else "exceptions_app/backtest.html")
    return render(request, template, {"backtest": backtest, "use_case": backtest.use_case})


@require_GET
@login_required
def shadow_detail(request, pk: int):
    shadow = _visible_shadow(request, pk)
    result = shadows.comparison(shadow)
    return render(request, "exceptions_app/shadow.html", {
        "shadow": shadow, "use_case": shadow.use_case, "result": result,
        "changed": result["decisions"] - result["unchanged"],
        "may_stop": backtests.may_backtest(user=request.user, use_case=shadow.use_case)})


@require_POST
@login_required
def stop_shadow(request, pk: int):
    shadow = _visible_shadow(request, pk)
    try:
        shadows.stop_shadow(shadow=shadow, actor=request.user)
    except shadows.ShadowConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Shadow stopped: what it recorded stays here.")
    return redirect("shadow", pk=shadow.pk)


def _visible_shadow(request, pk: int) -> Shadow:
    shadow = (Shadow.objects.filter(
        pk=pk, use_case__in=selectors.visible_use_cases(user=request.user))
        .select_related("use_case", "policy", "baseline", "started_by").first())
    if shadow is None:
        raise Http404("No such shadow for you.")
    return shadow


@require_GET
@login_required
def use_case_thresholds(request, slug: str):
    use_case = _visible_use_case(request, slug)
    errors = {}
    try:
        period = quality.parse_period(request.GET)
        tolerated_error = thresholds.parse_tolerated_error(request.GET)
        curve = thresholds.threshold_curve(use_case=use_case, **period,
                                           tolerated_error=tolerated_error)
    except ValidationError as exc:
        errors = exc.message_dict
        curve = thresholds.threshold_curve(use_case=use_case,
                                           **quality.parse_period({}))
    return render(request, "exceptions_app/thresholds.html", {
        "use_case": use_case, "curve": curve, "errors": errors,
        "chart": monitoring.threshold_chart(curve),
        "rows": [point for point in curve.points if round(point.threshold * 100) % 5 == 0],
        "model_versions": quality.model_versions(use_case),
    }, status=400 if errors else 200)
