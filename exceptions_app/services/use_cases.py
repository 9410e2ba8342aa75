"""Use cases and AI systems: set up and changed by managers, every change audited with
before and after (I7). The admin calls these; nothing else writes their settings.

A use case's stage moves only with evidence and sign-off, and its business owner is the
Accountable of its process's RACI matrix: neither is a setting here. An AI system's
signing secret is never written into the audit trail: its event says that it changed.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from exceptions_app.models import AiSystem, UseCase
from exceptions_app.services import callbacks
from exceptions_app.verbs import DomainVerb
from workflows.services import audit, outbox
from workflows.services.queues import require_manager

USE_CASE_SETTINGS = ("slug", "name", "description", "input_schema", "output_schema",
                     "reason_codes", "process", "review_queue", "qa_queue", "automate_qa_rate",
                     "optimize_qa_rate", "summary_fields")

AI_SYSTEM_SETTINGS = ("slug", "name", "owner", "callback_url", "document_hosts",
                      "is_active")
AI_SYSTEM_EDITABLE = (*AI_SYSTEM_SETTINGS, "use_cases")


def _check_names(values: dict, allowed, what: str) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise TypeError(f"Not a {what} setting: {', '.join(unknown)}.")


@transaction.atomic
def use_case_create(*, actor, now: datetime | None = None, **values) -> UseCase:
    """A new use case (at the audit stage unless given); audited ``use_case.created``."""
    require_manager(actor, "set up use cases")
    _check_names(values, USE_CASE_SETTINGS, "use case")
    use_case = UseCase(**values)
    use_case.full_clean()  # the reason codes' shape and the schemas among the rest
    use_case.save()
    audit.record(actor=actor, verb=DomainVerb.USE_CASE_CREATED, object_type="use_case",
                 object_id=use_case.pk, now=now,
                 data={"slug": use_case.slug, "stage": use_case.stage, "before": None,
                       "after": audit.snapshot(use_case, USE_CASE_SETTINGS)})
    return use_case


def use_case_update(*, use_case: UseCase, actor, now: datetime | None = None,
                    **changes) -> UseCase:
    """Change a use case's settings; one ``use_case.changed`` event with the fields that
    differ, before and after. A change to nothing writes nothing."""
    require_manager(actor, "change use cases")
    return audit.edit_settings(use_case, changes=changes, fields=USE_CASE_SETTINGS, actor=actor,
                               verb=DomainVerb.USE_CASE_CHANGED, object_type="use_case", now=now)


def _ai_system_snapshot(ai_system: AiSystem) -> dict:
    values = audit.snapshot(ai_system, AI_SYSTEM_EDITABLE)
    values["use_cases"] = sorted(ai_system.use_cases.values_list("slug", flat=True)
                                 if ai_system.pk else [])
    return values


@transaction.atomic
def ai_system_create(*, actor, use_cases=(), now: datetime | None = None,
                     **values) -> AiSystem:
    """A new AI system with a fresh signing secret; audited ``ai_system.created``.
    Its API keys are issued apart (``api_keys.issue_api_key``)."""
    require_manager(actor, "register AI systems")
    _check_names(values, AI_SYSTEM_SETTINGS, "AI system")
    ai_system = AiSystem(**values, signing_secret=outbox.generate_signing_secret())
    ai_system.full_clean()
    ai_system.save()
    ai_system.use_cases.set(use_cases)
    audit.record(actor=actor, verb=DomainVerb.AI_SYSTEM_CREATED, object_type="ai_system",
                 object_id=ai_system.pk, now=now,
                 data={"slug": ai_system.slug, "use_cases": sorted(u.slug for u in use_cases),
                       "before": None, "after": _ai_system_snapshot(ai_system)})
    return ai_system


@transaction.atomic
def ai_system_update(*, ai_system: AiSystem, actor, now: datetime | None = None,
                     **changes) -> AiSystem:
    """Change an AI system: its names, owner, callback URL, document hosts, whether it
    may post, the use cases it posts to. One ``ai_system.changed`` event with before and after."""
    require_manager(actor, "change AI systems")
    ai_system = audit.edit_settings(ai_system, changes=changes, fields=AI_SYSTEM_EDITABLE,
                                    actor=actor, verb=DomainVerb.AI_SYSTEM_CHANGED,
                                    object_type="ai_system", now=now,
                                    describe=_ai_system_snapshot)
    if changes.get("callback_url"):
        # Resolved while nobody listened: in the feed already, now sent as well.
        callbacks.send_unsent_resolutions(ai_system=ai_system)
    return ai_system


@transaction.atomic
def ai_system_rotate_secret(*, ai_system: AiSystem, actor, overlap: timedelta | None = None,
                            now: datetime | None = None) -> str:
    """Replace the system's webhook signing secret; answers the new secret, which its
    operator must install. For ``overlap`` (default WEBHOOK_SECRET_OVERLAP_HOURS) the old
    secret signs beside the new one, so the receiver may switch at any moment in it.
    Audited ``ai_system.secret_rotated`` (without either secret)."""
    require_manager(actor, "rotate signing secrets")
    now = now or timezone.now()
    if overlap is None:
        overlap = timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    if overlap < timedelta(0):
        raise ValidationError({"overlap": ["The overlap cannot be negative."]})
    ai_system = AiSystem.objects.select_for_update().get(pk=ai_system.pk)
    had_secret = bool(ai_system.signing_secret)
    ai_system.previous_signing_secret = ai_system.signing_secret
    ai_system.previous_secret_expires_at = now + overlap if had_secret else None
    ai_system.signing_secret = outbox.generate_signing_secret()
    ai_system.save(update_fields=["signing_secret", "previous_signing_secret",
                                  "previous_secret_expires_at"])
    audit.record(actor=actor, verb=DomainVerb.AI_SYSTEM_SECRET_ROTATED, object_type="ai_system",
                 object_id=ai_system.pk, now=now,
                 data={"slug": ai_system.slug, "before": {"signing_secret": had_secret},
                       "after": {"signing_secret": True},
                       "previous_signs_until": ai_system.previous_secret_expires_at})
    return ai_system.signing_secret
