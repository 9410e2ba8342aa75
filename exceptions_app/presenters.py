"""The domain's parts of the engine's case pages (``workflows.hooks.CasePresenter``).

A case that came from a decision shows the decision's input, the AI's output and the
policy reasons (``exceptions_app/_case_decision.html``) beside its source document
(``exceptions_app/_case_document.html``), links its use case from the
breadcrumb, and gives the resolve form one field per output field, typed after the use
case's output schema. Registered in ``ExceptionsAppConfig.ready``.
"""

from django.db.models import prefetch_related_objects
from django.urls import reverse

from exceptions_app.contract_wording import field_title
from exceptions_app.forms import output_fields
from exceptions_app.models import Decision, DecisionDocument, FetchStatus, schema_at
from exceptions_app.services.resolutions import content_of
from workflows import db
from workflows.hooks import CasePresentation, Link, Panel, SummaryItem

DECISION_READ = {"related": ("use_case", "policy_version", "ai_system"),
                 "has": (("has_documents", DecisionDocument, "decision"),)}


def _decisions(case_ids) -> dict[int, Decision]:
    """The cases' decisions, each with its use case, policy version and AI system, in one
    plain statement built once per process (the ORM built and compiled four tables on
    every approvals page); their documents in one more if any has one."""
    decisions = db.with_related(Decision, by="case", values=case_ids, **DECISION_READ)
    # Most decisions come without a document: only those with one are asked for theirs.
    prefetch_related_objects([decision for decision in decisions if decision.has_documents],
                             "documents")
    return {decision.case_id: decision for decision in decisions}


def _documents(decision: Decision) -> dict:
    """The source document shown beside the fields (the first one stored), and every
    document with its state (one being fetched, one that could not be)."""
    documents = list(decision.documents.all()) if decision.has_documents else []
    shown = next((document for document in documents
                  if document.fetch_status == FetchStatus.STORED), None)
    return {"documents": documents, "document": shown}


def _value_at(value, path: list[str]):
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _summary(decision: Decision, case) -> list[SummaryItem]:
    """The use case's summary fields of this case, labelled by their schema titles.

    An output field reads the output being decided: the resolution's when there is one,
    else the AI's, except on a blind queue while the case is open (it would give the AI's
    answer away).
    """
    use_case = decision.use_case
    resolution = getattr(case, "resolution", None)
    if resolution is not None and resolution.output:
        output = resolution.output
    elif case.queue.blind and case.is_open:
        output = None
    else:
        output = decision.output
    items = []
    for path in use_case.summary_fields or []:
        source, _, rest = path.partition(".")
        keys = rest.split(".")
        data, schema = ((decision.input, use_case.input_schema) if source == "input"
                        else (output, use_case.output_schema))
        items.append(SummaryItem(
            label=field_title(schema_at(schema or {}, keys) or {}, " ".join(keys)),
            value=_value_at(data, keys)))
    return items


def _presentation(decision: Decision, case) -> CasePresentation:
    use_case = decision.use_case

    def fields(*, prefill: bool) -> dict:
        return output_fields(output=decision.output, output_schema=use_case.output_schema,
                             prefill=prefill)

    return CasePresentation(
        content=content_of(decision),
        breadcrumb=[Link(label=use_case.name, url=reverse("use-case", args=[use_case.slug]))],
        panels=[Panel(template="exceptions_app/_case_decision.html",
                      context={"decision": decision, **_documents(decision)})],
        output_fields=fields,
        summary=_summary(decision, case))


def _decision(case_id: int) -> Decision | None:
    """``_decisions`` of one case, for its page: one plain statement built once per
    process (the ORM built and compiled its four tables on every view, most of the read's
    cost)."""
    decision = db.one_with_related(Decision, by="case", value=case_id, **DECISION_READ)
    if decision is not None and decision.has_documents:
        prefetch_related_objects([decision], "documents")
    return decision


class DecisionPresenter:
    def present(self, *, case) -> CasePresentation | None:
        decision = _decision(case.pk)
        return _presentation(decision, case) if decision is not None else None

    def present_many(self, *, cases) -> dict[int, CasePresentation]:
        decisions = _decisions([case.pk for case in cases])
        return {case.pk: _presentation(decisions[case.pk], case) for case in cases
                if case.pk in decisions}


presenter = DecisionPresenter()
