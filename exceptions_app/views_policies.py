"""Policy release pages: a use case's versions, one version with the steps the person
may take, the editor (Markdown beside ordered rules, each rule checked live as it is
typed), the diff between two versions, and the proposals waiting for a person's
approval.

Thin: every write is a service of ``services/policies.py``; a refusal is shown as a
message on the page it came from (a step that does not fit the status, a person who may
not take it, a rule that does not type-check), never an error page. Scoped by
``policy_selectors`` (I8): out of scope is 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from exceptions_app import policy_selectors, rule_types
from exceptions_app.forms_policies import editor_forms, rule_specs
from exceptions_app.models import PolicyStatus, RuleAction
from exceptions_app.policy_diff import diff_versions
from exceptions_app.services import policies

STARTER_TEXT = "# {name} policy\n\nWrite here, in business language, what the rules enforce."
STEPS = {
    "propose": ("Propose for approval", False),
    "approve": ("Approve", False),
    "send-back": ("Send back to draft", True),
    "activate": ("Activate", False),
    "rollback": ("Roll back to this version", True),
}


def _use_case(request, slug: str):
    use_case = policy_selectors.policy_use_case(user=request.user, slug=slug)
    if use_case is None:
        raise Http404("No such use case for you.")
    return use_case


def _version(request, slug: str, number: int):
    use_case = _use_case(request, slug)
    policy = policy_selectors.version(use_case=use_case, number=number)
    if policy is None:
        raise Http404("No such policy version.")
    return use_case, policy


def _refusal(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return exc.messages
    return [str(exc)]


@require_GET
@login_required
def policy_versions(request, slug: str):
    use_case = _use_case(request, slug)
    versions = list(policy_selectors.versions(use_case=use_case))
    return render(request, "exceptions_app/policies/versions.html", {
        "nav": "use-cases", "use_case": use_case, "versions": versions,
        "may_draft": policies.may_draft(user=request.user, use_case=use_case),
        "drafts": [v for v in versions if v.status == PolicyStatus.DRAFT],
    })


@require_POST
@login_required
def policy_new(request, slug: str):
    """A new draft, starting from the active version (else the latest) as it stands."""
    use_case = _use_case(request, slug)
    versions = policy_selectors.versions(use_case=use_case)
    start = versions.filter(status=PolicyStatus.ACTIVE).first() or versions.first()
    try:
        if start is None:
            policy = policies.policy_create_draft(
                use_case=use_case, author=request.user, rules=[],
                text=STARTER_TEXT.format(name=use_case.name))
        else:
            policy = policies.policy_create_draft(
                use_case=use_case, author=request.user, text=start.text,
                rules=[policies.RuleSpec.of(rule) for rule in start.rules.order_by("position")],
                default_action=start.default_action, default_reason=start.default_reason,
                default_priority=start.default_priority)
    except (PermissionDenied, ValidationError) as exc:
        for message in _refusal(exc):
            messages.error(request, message)
        return redirect("policy-versions", slug=use_case.slug)
    messages.success(request, f"Draft v{policy.number} started"
                              + (f" from v{start.number}." if start else "."))
    return redirect("policy-edit", slug=use_case.slug, number=policy.number)


@require_GET
@login_required
def policy_version(request, slug: str, number: int):
    use_case, policy = _version(request, slug, number)
    other = policy_selectors.default_comparison(policy)
    return render(request, "exceptions_app/policies/version.html", {
        "nav": "use-cases", "use_case": use_case, "policy": policy, "crumb": f"v{policy.number}",
        "rules": list(policy.rules.select_related("queue").order_by("position")),
        "steps": _steps(policy, request.user), "compare_with": other,
        "others": [v for v in policy_selectors.versions(use_case=use_case) if v.pk != policy.pk],
    })


def _steps(policy, user) -> list[dict]:
    steps = []
    for step in policy_selectors.steps_for(policy, user=user):
        if step == "edit":
            continue
        slug = step.replace("_", "-")
        label, with_reason = STEPS[slug]
        steps.append({"step": slug, "label": label, "with_reason": with_reason})
    return steps


@require_POST
@login_required
def policy_step(request, slug: str, number: int, step: str):
    use_case, policy = _version(request, slug, number)
    if step not in STEPS:
        raise Http404("No such step.")
    label, with_reason = STEPS[step]
    arguments = {"reason": request.POST.get("reason", "")} if with_reason else {}
    service = getattr(policies, f"policy_{step.replace('-', '_')}")
    try:
        policy = service(policy=policy, actor=request.user, **arguments)
    except (policies.PolicyConflict, PermissionDenied, ValidationError) as exc:
        for message in _refusal(exc):
            messages.error(request, message)
        if step == "propose" and isinstance(exc, ValidationError):
            return redirect("policy-edit", slug=use_case.slug, number=number)
        return redirect("policy-version", slug=use_case.slug, number=number)
    messages.success(request, f"v{policy.number}: {label.lower()} done; it is now "
                              f"{policy.get_status_display().lower()}.")
    return redirect("policy-version", slug=use_case.slug, number=policy.number)


@require_http_methods(["GET", "POST"])
@login_required
def policy_edit(request, slug: str, number: int):
    use_case, policy = _version(request, slug, number)
    if request.method == "GET" and policy.status != PolicyStatus.DRAFT:
        messages.info(request, f"v{policy.number} is {policy.get_status_display().lower()}: "
                               f"only a draft changes. Start a new draft for a change.")
        return redirect("policy-version", slug=use_case.slug, number=number)
    intent = request.POST.get("intent", "save")
    problems: list[str] = []
    if request.method == "POST":
        text, rules = editor_forms(use_case=use_case, data=request.POST,
                                   extra_rule=intent == "add-rule")
        if intent != "add-rule" and text.is_valid() and rules.is_valid():
            try:
                policies.policy_update_draft(policy=policy, actor=request.user,
                                             rules=rule_specs(rules), **text.cleaned_data)
                if intent == "propose":
                    policies.policy_propose(policy=policy, actor=request.user)
            except (policies.PolicyConflict, PermissionDenied, ValidationError) as exc:
                problems = _refusal(exc)
            else:
                messages.success(request, f"v{policy.number} proposed for approval."
                                 if intent == "propose" else f"Draft v{policy.number} saved.")
                target = "policy-version" if intent == "propose" else "policy-edit"
                return redirect(target, slug=use_case.slug, number=number)
    else:
        text, rules = editor_forms(use_case=use_case, policy=policy)
    return render(request, "exceptions_app/policies/editor.html", {
        "nav": "use-cases", "use_case": use_case, "policy": policy, "text_form": text,
        "rules": rules, "problems": problems,
        "may_draft": policies.may_draft(user=request.user, use_case=use_case),
        "variables": rule_types.variables_of(use_case), "actions": RuleAction.choices,
        "check_url": reverse("policy-check-rule", kwargs={"slug": use_case.slug}),
    }, status=400 if problems else 200)


@require_POST
@login_required
def policy_check_rule(request, slug: str):
    """htmx: one rule's expression, checked as saving would check it; answers the
    fragment under the field. The field is the one that asked (``HX-Trigger-Name``),
    else the first field named ``*expression``."""
    use_case = _use_case(request, slug)
    asked = request.headers.get("HX-Trigger-Name", "")
    expression = request.POST.get(asked) if asked.endswith("expression") else None
    if expression is None:
        expression = next((value for key, value in request.POST.items()
                           if key.endswith("expression")), "")
    return render(request, "exceptions_app/policies/_rule_check.html", {
        "expression": expression,
        "problems": rule_types.rule_problems(expression, use_case=use_case)
        if expression.strip() else [],
    })


@require_GET
@login_required
def policy_diff(request, slug: str, number: int):
    use_case, policy = _version(request, slug, number)
    against = request.GET.get("against", "")
    if against.isdigit():
        other = policy_selectors.version(use_case=use_case, number=int(against))
        if other is None:
            raise Http404("No such policy version.")
    else:
        other = policy_selectors.default_comparison(policy)
        if other is None:
            messages.info(request, "There is no other version to compare with yet.")
            return redirect("policy-version", slug=use_case.slug, number=number)
    old, new = sorted((other, policy), key=lambda version: version.number)
    return render(request, "exceptions_app/policies/diff.html", {
        "nav": "use-cases", "use_case": use_case, "old": old, "new": new, "policy": policy,
        "diff": diff_versions(old=old, new=new),
        "versions": policy_selectors.versions(use_case=use_case),
    })


@require_GET
@login_required
def policy_approvals(request):
    return render(request, "exceptions_app/policies/approvals.html", {
        "nav": "use-cases", "proposals": policy_selectors.proposals_for(user=request.user)})
