"""A use case's stage page: the evidence of each model version, the gates of the next
stage, sign-off, moving down, the kill switch and the guardrails' settings.

Everybody who may see the use case reads it (I8: out of scope answers 404); the
Accountable for ``stage_change`` signs off a move up; the Accountable and managers move
it down, throw the kill switch and set the guardrails. The numbers are those of
``GET /api/v1/use-cases/<slug>/stage/``.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from exceptions_app import selectors
from exceptions_app.models import Stage
from exceptions_app.services import guardrails, stages
from exceptions_app.stage_models import STAGE_ORDER, Guardrails

HISTORY_SHOWN = 20


class GuardrailsForm(forms.ModelForm):
    class Meta:
        model = Guardrails
        fields = guardrails.SETTINGS
        labels = {
            "evidence_days": "Evidence window (days)",
            "min_reviewed": "Reviewed decisions at least",
            "min_agreement": "Agreement at least (fraction)",
            "min_sla_compliance": "SLA compliance at least (fraction)",
            "min_qa_reviewed": "QA samples at least (to optimize)",
            "min_qa_accuracy_low": "QA accuracy, lower bound at least (fraction)",
            "max_exception_rate": "Exception rate at most (fraction, optional)",
            "daily_auto_cap": "Daily cap: decisions passed automatically",
            "daily_value_cap": "Daily cap: value passed automatically",
            "value_field": "Value field (numeric input field)",
            "qa_error_bound": "Demote when the QA error rate exceeds (fraction)",
            "qa_error_min_sample": "…over at least this many QA samples",
            "probation_decisions": "Probation: first decisions of a new model version reviewed",
            "qa_strata": "QA strata (JSON)",
        }
        widgets = {"qa_strata": forms.Textarea(attrs={"rows": 3})}


def _stage_label(stage: str) -> str:
    return str(Stage(stage).label).partition(":")[0]


def _page(request, use_case, *, form=None, status=200):
    evidence = stages.stage_evidence(use_case=use_case)
    settings = evidence.guardrails
    return render(request, "exceptions_app/stages/stage.html", {
        "nav": "use-cases", "use_case": use_case, "evidence": evidence,
        "stage_name": _stage_label(use_case.stage),
        "next_stage_name": _stage_label(evidence.next_stage) if evidence.next_stage else "",
        "ladder": [{"value": stage, "name": _stage_label(stage),
                    "current": stage == use_case.stage} for stage in STAGE_ORDER],
        "guardrails": settings,
        "history": use_case.stage_changes.select_related("actor")[:HISTORY_SHOWN],
        "signers": stages.sign_off_holders(use_case),
        "may_sign_off": stages.may_sign_off(user=request.user, use_case=use_case),
        "may_configure": guardrails.may_configure(user=request.user, use_case=use_case),
        "form": form or GuardrailsForm(instance=settings),
    }, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def use_case_stage(request, slug: str):
    use_case = (selectors.visible_use_cases(user=request.user).filter(slug=slug)
                .select_related("process").first())
    if use_case is None:
        raise Http404("No such use case for you.")
    if request.method == "GET":
        return _page(request, use_case)
    action = request.POST.get("action", "")
    try:
        if action == "advance":
            change = stages.advance_stage(use_case=use_case, actor=request.user,
                                          note=request.POST.get("note", ""))
            messages.success(request, f"Signed off: {use_case.name} is now at the "
                                      f"{_stage_label(change.to_stage)} stage.")
        elif action == "lower":
            change = stages.lower_stage(use_case=use_case, actor=request.user,
                                        reason=request.POST.get("reason", ""))
            messages.success(request, f"{use_case.name} is now at the "
                                      f"{_stage_label(change.to_stage)} stage.")
        elif action in ("kill-on", "kill-off"):
            guardrails.set_kill_switch(use_case=use_case, actor=request.user,
                                       on=action == "kill-on",
                                       reason=request.POST.get("reason", ""))
            messages.success(request, "Kill switch on: every decision goes to review."
                             if action == "kill-on" else "Kill switch off.")
        elif action == "guardrails":
            if not guardrails.may_configure(user=request.user, use_case=use_case):
                raise PermissionDenied("Only the Accountable for stage changes or a manager "
                                       "sets the guardrails.")
            form = GuardrailsForm(request.POST, instance=stages.guardrails_of(use_case))
            if not form.is_valid():
                return _page(request, use_case, form=form, status=400)
            changed = {name: form.cleaned_data[name] for name in form.changed_data}
            guardrails.update_guardrails(use_case=use_case, actor=request.user, **changed)
            messages.success(request, "Gates and guardrails saved.")
        else:
            raise Http404("No such action.")
    except stages.StageRefused as exc:
        for problem in exc.problems:
            messages.error(request, problem)
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
    return redirect("use-case-stage", slug=use_case.slug)
