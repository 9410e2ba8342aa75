"""People's API tokens (``Authorization: Token <token>``): issued, rotated and shown
through here only, each audited (I7). The token itself never enters the audit trail
or a log: the event names whose token it is and what happened to it."""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from workflows import actors
from workflows.services import audit
from workflows.verbs import AuditVerb


@dataclass(frozen=True)
class IssuedToken:
    key: str
    outcome: str  # "issued" (new), "rotated" (replaced) or "shown" (the existing one)


@transaction.atomic
def issue_user_token(*, user, actor, rotate: bool = False,
                     now: datetime | None = None) -> IssuedToken:
    """The person's token: created if they have none, replaced when ``rotate`` (the old
    one is refused from then on), else the existing one. Audited ``user_token.issued``,
    ``user_token.rotated`` or ``user_token.shown``. Deactivated people get none."""
    actors.require(actor)
    if not user.is_active:
        raise ValidationError(f"'{user.get_username()}' is deactivated; reactivate them "
                              "first.")
    replaced = Token.objects.filter(user=user).delete()[0] > 0 if rotate else False
    token, created = Token.objects.get_or_create(user=user)
    outcome = "rotated" if replaced else "issued" if created else "shown"
    audit.record(actor=actor, verb=AuditVerb(f"user_token.{outcome}"), object_type="user",
                 object_id=user.pk, now=now, data={"user": user.get_username()})
    return IssuedToken(key=token.key, outcome=outcome)
