"""The one place the domain plugs into the engine, without the engine importing it.

``workflows`` knows cases, not what they are about. The domain (``exceptions_app``)
fills these registries in its ``AppConfig.ready()``, and nowhere else:

- resolution validators: is this verdict / output / reason code acceptable for the
  case? They raise ``django.core.exceptions.ValidationError`` with a dict naming the
  field, before anything is written;
- resolved handlers: a case was resolved (after four-eyes approval where needed);
  they run inside the resolving transaction, so their rows (the labelled example)
  commit or roll back with the resolution. Anything that leaves the database goes
  through the outbox, never straight from here;
- a content provider: what a reviewer decides from (the subject) and the machine's
  proposal (the suggestion, hidden in blind review until the case is closed); and what
  it reads of a case, as relations of ``Case`` (``content_reads``), so that a statement
  reading a case for an answer can read them with it;
- a case presenter: the domain's parts of the case page (breadcrumb links, panels it
  renders from its own templates, the resolve form's output fields);
- navigation links: the domain's pages in the top bar (the engine's templates reverse
  no domain URL: the domain names its own);
- webhook secret providers: which secret signs an outbound webhook;
- intake sources: what the operators' ``/metrics`` counts as arriving work, under the
  metric names the domain gives;
- activities: the RACI matrix's rows beyond the engine's own (``Activity``);
- payload advice: what a 413 tells the caller to do with an oversize API body;
- audit filters: the audit log's filters beyond the engine's own (the use case), and
  the domain's pages the audit log links to (the evidence export).
- search values: what the case list's search finds a new case by, beside its title
  (the values of what the case is about, e.g. a decision's input).
- alert sources: what the domain measured that needs an owner's attention (drift), shown
  on the managers' dashboard with a link to the domain's page about it.

Every hook is called with keyword arguments only.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from datetime import datetime

    from django.db.models import Model


@dataclass(frozen=True)
class CaseContent:
    """What the domain shows about a case."""

    # What a reviewer decides from: always shown to those who may see the case.
    subject: dict = field(default_factory=dict)
    # The machine's proposal (output, confidence, explanation, reasons): hidden from
    # reviewers of a blind queue until the case is closed.
    suggestion: dict = field(default_factory=dict)
    # The codes a resolution may carry: [{"code": ..., "label": ...}].
    reason_codes: list = field(default_factory=list)
    # JSON Schema a corrected output must satisfy, if the domain has one.
    output_schema: dict | None = None
    # How messages and pages name the suggestion's output ("the AI's output").
    suggestion_name: str = "the suggested output"


ResolutionValidator = Callable[..., None]  # (*, case, verdict, output, reason_code)
ResolvedHandler = Callable[..., None]  # (*, case, resolution)
ContentProvider = Callable[..., CaseContent | None]  # (*, case)

_resolution_validators: list[ResolutionValidator] = []
_resolved_handlers: list[ResolvedHandler] = []
_content_providers: list[ContentProvider] = []


def _add(registry: list, hook: Callable) -> Callable:
    # ready() may run twice (tests, management commands): register each hook once.
    if hook not in registry:
        registry.append(hook)
    return hook


def register_resolution_validator(hook: ResolutionValidator) -> ResolutionValidator:
    return _add(_resolution_validators, hook)


def register_resolved_handler(hook: ResolvedHandler) -> ResolvedHandler:
    return _add(_resolved_handlers, hook)


def register_content_provider(hook: ContentProvider) -> ContentProvider:
    return _add(_content_providers, hook)


def validate_resolution(*, case, verdict: str, output: dict | None, reason_code: str) -> None:
    """Run every validator; raise one ValidationError with all their field errors."""
    errors: dict[str, list[str]] = {}
    for hook in _resolution_validators:
        try:
            hook(case=case, verdict=verdict, output=output, reason_code=reason_code)
        except ValidationError as exc:
            for name, messages in exc.update_error_dict({}).items():
                errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def case_resolved(*, case, resolution) -> None:
    for hook in _resolved_handlers:
        hook(case=case, resolution=resolution)


@dataclass(frozen=True)
class ContentReads:
    """What the domain reads of a case to show it (the content provider) and to resolve
    it (the resolved handlers), as ``Case``'s relations: their ``select_related`` paths
    and, along them, the columns they leave out."""

    related: tuple[str, ...]
    deferred: tuple[str, ...] = ()


_content_reads: list[ContentReads] = []


def register_content_reads(reads: ContentReads) -> ContentReads:
    return _add(_content_reads, reads)


def content_reads() -> ContentReads:
    """Everything the domain reads of a case, as one ``ContentReads``: a statement
    reading a case for an answer reads them with it (claim-next's candidate,
    ``db.claim_candidate``, and a transition's case, ``db.case_for_change``: their
    answers show the content, and a query of its own cost as much)."""
    return ContentReads(related=tuple(path for reads in _content_reads for path in reads.related),
                        deferred=tuple(name for reads in _content_reads
                                       for name in reads.deferred))


def case_content(*, case) -> CaseContent:
    for hook in _content_providers:
        content = hook(case=case)
        if content is not None:
            return content
    return CaseContent()


# --- The case page -------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Panel:
    """A part of the case page the domain renders with its own template.

    The template gets the page's context (``case``, ``hide_suggestion``, ...) plus
    ``panel``: this object, whose ``context`` carries what the domain looked up.
    """

    template: str
    context: dict = field(default_factory=dict)


OutputFields = Callable[..., dict]  # (*, prefill: bool) -> {output key: forms.Field}


@dataclass(frozen=True)
class SummaryItem:
    """One figure a list shows for a case (the vendor, the amount), as the domain says it."""

    label: str
    value: object


@dataclass
class CasePresentation:
    """The domain's parts of one case page."""

    content: CaseContent = field(default_factory=CaseContent)
    # Links between "Home" and the queue's name, e.g. the case's use case.
    breadcrumb: list[Link] = field(default_factory=list)
    # Shown in the main column, above the resolution, in this order.
    panels: list[Panel] = field(default_factory=list)
    # The resolve form's fields for a corrected output; None: the form has none.
    output_fields: OutputFields | None = None
    # The figures that matter, for lists (approvals): approving from a list needs them.
    summary: list[SummaryItem] = field(default_factory=list)


class CasePresenter(Protocol):
    def present(self, *, case) -> "CasePresentation | None":
        """The case's page parts, or None when the case is not the domain's."""

    def present_many(self, *, cases) -> "dict[int, CasePresentation]":
        """The same for a list page (approvals), in a fixed number of queries."""


_presenters: list[CasePresenter] = []


def register_case_presenter(presenter: CasePresenter) -> CasePresenter:
    return _add(_presenters, presenter)


def _default_presentation(case) -> CasePresentation:
    return CasePresentation(content=case_content(case=case))


def present_case(*, case) -> CasePresentation:
    for presenter in _presenters:
        presentation = presenter.present(case=case)
        if presentation is not None:
            return presentation
    return _default_presentation(case)


def present_cases(*, cases) -> dict[int, CasePresentation]:
    cases = list(cases)
    found: dict[int, CasePresentation] = {}
    for presenter in _presenters:
        found.update({pk: presentation for pk, presentation
                      in presenter.present_many(cases=[c for c in cases if c.pk not in found])
                      .items() if pk not in found})
    return {case.pk: found.get(case.pk) or _default_presentation(case) for case in cases}


# --- Navigation ----------------------------------------------------------------------


@dataclass(frozen=True)
class NavLink:
    """A domain page in the top bar: ``url_name`` is the domain's, reversed by its name."""

    key: str  # the page's ``nav`` context value, which marks the link current
    label: str
    url_name: str


_nav_links: list[NavLink] = []


def register_nav_link(link: NavLink) -> NavLink:
    return _add(_nav_links, link)


def nav_links() -> list[NavLink]:
    return list(_nav_links)


# --- Outbound webhooks ---------------------------------------------------------------
#
# ``workflows`` never stores secrets in the outbox row: they are looked up when
# sending, so a rotated secret applies to the next attempt.

# (*, message) -> the secret, or the secrets (newest first), that sign it; None: not mine.
SecretProvider = Callable[..., "str | Sequence[str] | None"]
_webhook_secret_providers: list[SecretProvider] = []


def register_webhook_secret_provider(provider: SecretProvider) -> SecretProvider:
    """The domain says which secret signs a webhook."""
    return _add(_webhook_secret_providers, provider)


def webhook_secrets(*, message) -> list[str]:
    """The secrets that sign the webhook: during a rotation's overlap, the new and the old
    (Standard Webhooks' multiple signatures); none when no provider knows it."""
    for provider in _webhook_secret_providers:
        secrets = provider(message=message)
        if secrets:
            return [secrets] if isinstance(secrets, str) else list(secrets)
    return []


# --- Metrics -------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeSource:
    """Rows that arrive (e.g. the domain's decisions), counted per the thing they belong to.

    ``model.<group_field>`` is a foreign key whose target's ``label_field`` names the
    label value; ``time_field`` is when the row arrived. An index on
    (``group_field``, ``time_field``) keeps the recent count a short range scan per group.
    ``name`` is the metric family's name (``<name>_total`` and ``<name>_last_5m``):
    the domain's, since a scraped name must never change under its dashboards.

    The running total is the highest id: one step down the primary key, however many
    rows. These rows are never deleted, so it only grows; it counts every row stored,
    plus the ids a rolled-back transaction took on PostgreSQL (sequences do not roll
    back: a failed batch, the loser of two concurrent posts of one ``external_id``).
    """

    model: "type[Model]"
    group_field: str
    label_field: str
    time_field: str
    name: str
    label: str
    documentation: str
    recent_documentation: str


_intake_sources: list[IntakeSource] = []


def register_intake_source(source: IntakeSource) -> IntakeSource:
    return _add(_intake_sources, source)


def intake_sources() -> list[IntakeSource]:
    return list(_intake_sources)


@dataclass(frozen=True)
class GaugeSource:
    """Figures the domain measures, exposed at ``/metrics`` as one gauge family under
    its own ``name``. ``read()`` answers ``(label values, value)`` pairs in ``labels``'
    order; it runs on every scrape, so it reads a few stored rows, never history."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Callable[[], Iterable[tuple[Sequence[str], float]]]


_gauge_sources: list[GaugeSource] = []


def register_gauge_source(source: GaugeSource) -> GaugeSource:
    return _add(_gauge_sources, source)


def gauge_sources() -> list[GaugeSource]:
    return list(_gauge_sources)


# --- RACI activities -----------------------------------------------------------------

_activities: list[type] = []


def register_activities(choices: type) -> type:
    """A ``TextChoices`` of the domain's activities: rows of every RACI matrix after the
    engine's (``workflows.models.activity_choices`` lists them all). Their values are
    what the matrix stores: they never change."""
    return _add(_activities, choices)


def activity_choices() -> list[tuple[str, str]]:
    return [choice for choices in _activities for choice in choices.choices]


# --- API payload limits --------------------------------------------------------------


@dataclass(frozen=True)
class PayloadAdvice:
    """What to do with a body over the API's size limit, for paths under ``path_prefix``."""

    path_prefix: str
    advice: str  # e.g. "a batch takes up to 1000 decisions"


_payload_advice: list[PayloadAdvice] = []


def register_payload_advice(advice: PayloadAdvice) -> PayloadAdvice:
    return _add(_payload_advice, advice)


def payload_advice(*, path: str) -> str:
    return next((item.advice for item in _payload_advice if path.startswith(item.path_prefix)),
                "")


# --- The audit log's filters -------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """A filter of the audit log that the domain knows how to answer.

    ``choices()`` lists ``(value, label)`` for the page's menu; ``condition(value=...)``
    answers the ``Q`` over ``AuditEvent`` that selects its events, or None when no such
    thing exists (the page then names the field).
    """

    name: str  # the query parameter
    label: str
    choices: Callable[[], list[tuple[str, str]]]
    condition: Callable[..., object]


_audit_filters: list[AuditFilter] = []


def register_audit_filter(audit_filter: AuditFilter) -> AuditFilter:
    return _add(_audit_filters, audit_filter)


def audit_filters() -> list[AuditFilter]:
    return list(_audit_filters)


_audit_pages: list[NavLink] = []


def register_audit_page(link: NavLink) -> NavLink:
    """A domain page the audit log links to (``url_name`` reversed by the engine)."""
    return _add(_audit_pages, link)


def audit_pages() -> list[NavLink]:
    return list(_audit_pages)


# --- Search --------------------------------------------------------------------------

# (*, subject) -> the values a case is found by: ``subject`` is what the domain handed
# ``services.cases.NewCase`` when opening the case (e.g. a decision's input).
SearchValues = Callable[..., Iterable]
_search_values: list[SearchValues] = []


def register_search_values(hook: SearchValues) -> SearchValues:
    return _add(_search_values, hook)


def search_values(*, subject) -> list:
    """Every registered hook's values for ``subject``; none without a subject."""
    if subject is None:
        return []
    return [value for hook in _search_values for value in hook(subject=subject)]


# --- Alerts on the dashboard ---------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """Something the domain measured that needs attention, as the dashboard lists it.

    ``process_id`` scopes it (the dashboard's process filter); ``url`` is the domain's page
    that explains it, reversed by the domain.
    """

    process_id: int | None
    level: str  # "warn" or "alert": how loud the dashboard shows it
    title: str
    detail: str
    url: str
    raised_at: "datetime"


AlertSource = Callable[[], Iterable[Alert]]
_alert_sources: list[AlertSource] = []


def register_alert_source(source: AlertSource) -> AlertSource:
    """``source()`` answers the open alerts; it runs on every dashboard view, so it reads
    a few stored rows, never history."""
    return _add(_alert_sources, source)


def alert_sources() -> list[AlertSource]:
    return list(_alert_sources)


def open_alerts(*, process_id: int | None = None) -> list[Alert]:
    """Every source's open alerts (of one process when given), loudest and newest first."""
    alerts = [alert for source in _alert_sources for alert in source()
              if process_id is None or alert.process_id == process_id]
    return sorted(alerts, key=lambda alert: (alert.level != "alert", -alert.raised_at.timestamp()))
