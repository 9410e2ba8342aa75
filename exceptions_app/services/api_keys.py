"""API keys of AI systems: issued once, kept only as a hash (djangorestframework-api-key)."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from exceptions_app.models import AiSystem, AiSystemAPIKey
from exceptions_app.verbs import DomainVerb
from workflows import actors
from workflows.services import audit

MAX_NAME_LENGTH = AiSystemAPIKey._meta.get_field("name").max_length


def default_key_name(*, ai_system: AiSystem, now: datetime | None = None) -> str:
    """The system and the moment, when the operator names the key nothing better."""
    now = now or timezone.now()
    return f"{ai_system.slug} {now:%Y-%m-%d %H:%M}"[:MAX_NAME_LENGTH]


def issue_api_key(*, ai_system: AiSystem, name: str, actor,
                  now: datetime | None = None) -> str:
    """Create a key for ``ai_system`` and audit it; returns the key, which is never shown
    again (only its hash is stored). ``name`` says what the key is for. ``actor``: the
    person, or a ``SystemActor`` naming the command that issued it."""
    actors.require(actor)
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"Name the key in 1 to {MAX_NAME_LENGTH} characters.")
    with transaction.atomic():
        api_key, key = AiSystemAPIKey.objects.create_key(name=name, ai_system=ai_system)
        # The key's primary key embeds its hash; the public prefix names it well enough.
        audit.record(verb=DomainVerb.API_KEY_ISSUED, object_type="ai_system_api_key",
                     object_id=api_key.prefix, actor=actor, now=now,
                     data={"ai_system": ai_system.slug, "name": name})
    return key


def revoke_api_key(*, api_key: AiSystemAPIKey, actor, now: datetime | None = None) -> None:
    """Refuse the key from the next request on; audited ``api_key.revoked``. A key is
    never un-revoked: issue a new one."""
    with transaction.atomic():
        revoked = (AiSystemAPIKey.objects.filter(pk=api_key.pk, revoked=False)
                   .update(revoked=True))
        if revoked:
            audit.record(verb=DomainVerb.API_KEY_REVOKED, object_type="ai_system_api_key",
                         object_id=api_key.prefix, actor=actor, now=now,
                         data={"ai_system": api_key.ai_system.slug, "name": api_key.name,
                               "before": {"revoked": False}, "after": {"revoked": True}})
