"""Onboarding without a shell: AI systems (keys, callback URL, document hosts, signing
secret) and use cases (contracts, reason codes, summary fields, QA rates), created and
changed on pages; and the one button the Accountable needs to approve a proposed policy.

Who may: managers (``workflows.manage_cases``, directly or through a group; superusers
have it), as the services require; anyone else gets 403. Approving a policy is the
Accountable's for ``policy_change`` (the policy service decides), on a use case they may
see (I8: 404 otherwise). Every write is an audited service call; a refusal is shown
beside the field it names. A new key or secret is shown once, on the answer to the
request that made it, and never stored in the session.
"""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from exceptions_app import selectors
from exceptions_app.models import AiSystem, AiSystemAPIKey, PolicyStatus, UseCase
from exceptions_app.onboarding_forms import (
    AiSystemForm,
    IssueKeyForm,
    RotateSecretForm,
    UseCaseForm,
    add_service_errors,
)
from exceptions_app.services import api_keys, policies, use_cases
from workflows.selectors import is_manager


def _require_manager(user) -> None:
    if not is_manager(user):
        raise PermissionDenied("Only managers set up AI systems and use cases.")


# --- AI systems -----------------------------------------------------------------------------

@login_required
def ai_system_list(request):
    _require_manager(request.user)
    systems = (AiSystem.objects.select_related("owner").prefetch_related("use_cases")
               .order_by("name"))
    return render(request, "exceptions_app/onboard/ai_system_list.html",
                  {"nav": "use-cases", "ai_systems": systems})


@login_required
@require_http_methods(["GET", "POST"])
def ai_system_create(request):
    _require_manager(request.user)
    form = AiSystemForm(request.POST or None, initial={"owner": request.user.pk})
    if request.method == "POST" and form.is_valid():
        try:
            system = use_cases.ai_system_create(actor=request.user, **form.values())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{system.name} is registered. Issue it an API key "
                                      "below to let it post.")
            return redirect("ai-system", slug=system.slug)
    return render(request, "exceptions_app/onboard/ai_system_form.html",
                  {"nav": "use-cases", "form": form})


def _system(slug: str) -> AiSystem:
    return get_object_or_404(AiSystem.objects.select_related("owner"), slug=slug)


def _system_page(request, system: AiSystem, *, form=None, key_form=None, secret_form=None,
                 new_key: str | None = None, new_secret: str | None = None, status=200):
    if form is None:
        form = AiSystemForm(editing=True, initial={
            "name": system.name, "owner": system.owner_id, "callback_url": system.callback_url,
            "use_cases": list(system.use_cases.values_list("pk", flat=True)),
            "document_hosts": "\n".join(system.document_hosts or []),
            "is_active": system.is_active})
    keys = AiSystemAPIKey.objects.filter(ai_system=system).order_by("-created")
    overlapping = (system.previous_secret_expires_at is not None
                   and system.previous_secret_expires_at > timezone.now())
    response = render(request, "exceptions_app/onboard/ai_system.html", {
        "nav": "use-cases", "ai_system": system, "form": form, "keys": keys,
        "key_form": key_form or IssueKeyForm(prefix="key"),
        "secret_form": secret_form or RotateSecretForm(prefix="secret"),
        "new_key": new_key, "new_secret": new_secret, "overlapping": overlapping},
        status=status)
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def ai_system_detail(request, slug: str):
    _require_manager(request.user)
    system = _system(slug)
    if request.method == "GET":
        return _system_page(request, system)
    form = AiSystemForm(request.POST, editing=True)
    if form.is_valid():
        try:
            use_cases.ai_system_update(ai_system=system, actor=request.user, **form.values())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{system.name} saved.")
            return redirect("ai-system", slug=system.slug)
    return _system_page(request, system, form=form, status=400)


@never_cache
@login_required
@require_POST
def ai_system_issue_key(request, slug: str):
    _require_manager(request.user)
    system = _system(slug)
    key_form = IssueKeyForm(request.POST, prefix="key")
    if not key_form.is_valid():
        return _system_page(request, system, key_form=key_form, status=400)
    key = api_keys.issue_api_key(ai_system=system, name=key_form.cleaned_data["name"],
                                 actor=request.user)
    return _system_page(request, system, new_key=key)


@login_required
@require_POST
def ai_system_revoke_key(request, slug: str, prefix: str):
    _require_manager(request.user)
    system = _system(slug)
    api_key = get_object_or_404(AiSystemAPIKey, ai_system=system, prefix=prefix)
    api_keys.revoke_api_key(api_key=api_key, actor=request.user)
    messages.success(request, f"Key {api_key.prefix} ({api_key.name}) is revoked: it is "
                              "refused from the next request on.")
    return redirect("ai-system", slug=system.slug)


@never_cache
@login_required
@require_POST
def ai_system_rotate_secret(request, slug: str):
    _require_manager(request.user)
    system = _system(slug)
    secret_form = RotateSecretForm(request.POST, prefix="secret")
    if not secret_form.is_valid():
        return _system_page(request, system, secret_form=secret_form, status=400)
    secret = use_cases.ai_system_rotate_secret(
        ai_system=system, actor=request.user,
        overlap=timedelta(hours=secret_form.cleaned_data["overlap_hours"]))
    system.refresh_from_db()
    return _system_page(request, system, new_secret=secret)


# --- Use cases ------------------------------------------------------------------------------

USE_CASE_FORM_FIELDS = ("name", "description", "review_queue", "qa_queue", "automate_qa_rate",
                        "optimize_qa_rate", "reason_codes", "summary_fields", "input_schema",
                        "output_schema")


@login_required
@require_http_methods(["GET", "POST"])
def use_case_create(request):
    _require_manager(request.user)
    form = UseCaseForm(request.POST or None, initial={"automate_qa_rate": 0.10,
                                                      "optimize_qa_rate": 0.02})
    if request.method == "POST" and form.is_valid():
        try:
            use_case = use_cases.use_case_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{use_case.name} is set up, at the audit stage. Name "
                                      "its owner in the RACI matrix and draft its policy.")
            return redirect("use-case", slug=use_case.slug)
    return render(request, "exceptions_app/onboard/use_case_form.html",
                  {"nav": "use-cases", "form": form}, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def use_case_edit(request, slug: str):
    _require_manager(request.user)
    use_case = get_object_or_404(UseCase, slug=slug)
    if request.method == "POST":
        form = UseCaseForm(request.POST, editing=True)
        if form.is_valid():
            changes = {name: value for name, value in form.cleaned_data.items()
                       if value != getattr(use_case, name)}
            try:
                use_cases.use_case_update(use_case=use_case, actor=request.user, **changes)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"{use_case.name} saved.")
                return redirect("use-case", slug=use_case.slug)
    else:
        form = UseCaseForm(editing=True, initial={name: getattr(use_case, name)
                                                  for name in USE_CASE_FORM_FIELDS})
    return render(request, "exceptions_app/onboard/use_case_form.html",
                  {"nav": "use-cases", "form": form, "use_case": use_case},
                  status=400 if form.errors else 200)


@login_required
@require_POST
def policy_approve_and_activate(request, slug: str, number: int):
    """The Accountable's one step: approve a proposed version and make it the active one
    (two audited services, each its own transaction; four eyes is theirs to enforce)."""
    use_case = selectors.visible_use_cases(user=request.user).filter(slug=slug).first()
    if use_case is None:
        raise Http404("No such use case for you.")
    policy = use_case.policies.filter(number=number).first()
    if policy is None:
        raise Http404("No such policy version.")
    try:
        if policy.status == PolicyStatus.PROPOSED:
            policy = policies.policy_approve(policy=policy, actor=request.user)
        policies.policy_activate(policy=policy, actor=request.user)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except policies.PolicyConflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Version {policy.number} is approved and active: it "
                                  "judges every decision from now on.")
    return redirect("use-case", slug=use_case.slug)
