"""The use case pages: which use cases a person may see, and one use case in full: its
owner, stage, active policy in words and rules, queues and who owns its decisions.

Read only; scoped by ``exceptions_app.selectors`` (I8: out of scope answers 404).
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from exceptions_app import selectors
from exceptions_app.models import Stage
from exceptions_app.services import drift
from workflows.selectors import is_manager


def _stages(current: str) -> list[dict]:
    """The stage ladder, each with its meaning in one line (the label after the colon)."""
    stages = []
    for value, label in Stage.choices:
        name, _, meaning = str(label).partition(": ")
        stages.append({"value": value, "name": name, "meaning": meaning,
                       "current": value == current})
    return stages


@require_GET
@login_required
def use_case_list(request):
    use_cases = list(selectors.use_case_list(user=request.user))
    return render(request, "exceptions_app/use_case_list.html",
                  {"nav": "use-cases", "use_cases": use_cases})


@require_GET
@login_required
def use_case_detail(request, slug: str):
    page = selectors.use_case_page(user=request.user, slug=slug)
    if page is None:
        raise Http404("No such use case for you.")
    use_case = page.use_case
    stages = _stages(use_case.stage)
    return render(request, "exceptions_app/use_case.html", {
        "nav": "use-cases", "use_case": use_case, "policy": page.policy,
        "rules": page.rules, "more_earlier": page.more_earlier,
        # The active version first, then the others, newest first.
        "versions": ([page.policy] if page.policy else []) + page.earlier,
        "queues": page.queues, "stages": stages, "owners": page.owners,
        "stage_name": next(stage["name"] for stage in stages if stage["current"]),
        "is_manager": is_manager(request.user),
        "drift_alerts": drift.open_alerts_of(use_case),
    })
