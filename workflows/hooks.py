"""Where the engine hands a case to the domain that owns it, without importing it.

``workflows`` knows cases, not what they are about. The domain (``exceptions_app``)
fills this registry in its ``AppConfig.ready()``:

- resolution validators: is this verdict / output / reason code acceptable for the
  case? They raise ``django.core.exceptions.ValidationError`` with a dict naming the
  field, before anything is written;
- resolved handlers: a case was resolved (after four-eyes approval where needed);
  they run inside the resolving transaction, so their rows (the labelled example)
  commit or roll back with the resolution. Anything that leaves the database goes
  through the outbox, never straight from here;
- a content provider: what a reviewer decides from (the subject) and the machine's
  proposal (the suggestion, hidden in blind review until the case is closed).

Every hook is called with keyword arguments only.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError


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


def case_content(*, case) -> CaseContent:
    for hook in _content_providers:
        content = hook(case=case)
        if content is not None:
            return content
    return CaseContent()
