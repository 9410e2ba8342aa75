"""The domain's parts of the engine's case pages (``workflows.hooks.CasePresenter``).

A case that came from a decision shows the decision's input, the AI's output and the
policy reasons (``exceptions_app/_case_decision.html``) beside its source document
(``exceptions_app/_case_document.html``), links its use case from the
breadcrumb, and gives the resolve form one field per output field, typed after the use
case's output schema. Registered in ``ExceptionsAppConfig.ready``.
"""

from django.urls import reverse

from exceptions_app.forms import output_fields
from exceptions_app.models import Decision, FetchStatus
from exceptions_app.services.resolutions import content_of
from workflows.hooks import CasePresentation, Link, Panel


def _decisions(case_ids) -> dict[int, Decision]:
    decisions = (Decision.objects.select_related("use_case", "policy_version", "ai_system")
                 .prefetch_related("documents").filter(case__in=case_ids))
    return {decision.case_id: decision for decision in decisions}


def _documents(decision: Decision) -> dict:
    """The source document shown beside the fields (the first one stored), and every
    document with its state (one being fetched, one that could not be)."""
    documents = list(decision.documents.all())
    shown = next((document for document in documents
                  if document.fetch_status == FetchStatus.STORED), None)
    return {"documents": documents, "document": shown}


def _presentation(decision: Decision) -> CasePresentation:
    use_case = decision.use_case

    def fields(*, prefill: bool) -> dict:
        return output_fields(output=decision.output, output_schema=use_case.output_schema,
                             prefill=prefill)

    return CasePresentation(
        content=content_of(decision),
        breadcrumb=[Link(label=use_case.name, url=reverse("use-case", args=[use_case.slug]))],
        panels=[Panel(template="exceptions_app/_case_decision.html",
                      context={"decision": decision, **_documents(decision)})],
        output_fields=fields)


class DecisionPresenter:
    def present(self, *, case) -> CasePresentation | None:
        decision = _decisions([case.pk]).get(case.pk)
        return _presentation(decision) if decision is not None else None

    def present_many(self, *, cases) -> dict[int, CasePresentation]:
        decisions = _decisions([case.pk for case in cases])
        return {case_id: _presentation(decision) for case_id, decision in decisions.items()}


presenter = DecisionPresenter()
