"""The use case page's onboarding parts: its managers' links, and the proposed policy
versions with the Accountable's approve button."""

from django import template
from django.db.models import Count

from exceptions_app.activities import DomainActivity
from exceptions_app.models import PolicyStatus, PolicyVersion
from workflows.selectors import is_manager
from workflows.services import raci

register = template.Library()


@register.inclusion_tag("exceptions_app/onboard/_use_case_onboarding.html", takes_context=True)
def use_case_onboarding(context, use_case, versions):
    """``versions``: those the page loaded already; the proposed ones among them cost
    queries only when there are some (the page's query count stays fixed)."""
    user = context["user"]
    # Proposed, or approved and not yet active: each waits for the Accountable.
    proposed_ids = [v.pk for v in versions
                    if v.status in (PolicyStatus.PROPOSED, PolicyStatus.APPROVED)]
    proposed, owners = [], []
    if proposed_ids:
        proposed = list(PolicyVersion.objects.filter(pk__in=proposed_ids)
                        .select_related("created_by").annotate(rule_count=Count("rules"))
                        .order_by("number"))
        owners = raci.accountable(process=use_case.process,
                                  activity=DomainActivity.POLICY_CHANGE)
    return {"use_case": use_case, "proposed": proposed, "owners": owners,
            "may_approve": user.is_superuser or user.pk in {owner.pk for owner in owners},
            "is_manager": is_manager(user), "user": user,
            "csrf_token": context.get("csrf_token")}
