"""A person's own settings: the time zone their pages show times in."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from workflows import actors, time_zones
from workflows.services import audit
from workflows.verbs import AuditVerb


@transaction.atomic
def set_time_zone(*, user, time_zone: str, actor, now: datetime | None = None):
    """Show ``user`` times in ``time_zone`` (an IANA name such as ``Europe/Berlin``), or
    "" for automatic: their browser's zone, else the office calendar's. Audited with
    before and after; choosing what is already set records nothing."""
    actors.require(actor)
    time_zone = time_zone.strip()
    if time_zone and not time_zones.is_known(time_zone):
        raise ValidationError({"time_zone": [
            f"'{time_zone}' is not a time zone we know; choose one from the list, such as "
            "Europe/Berlin."]})
    if time_zone == user.time_zone:
        return user
    before = user.time_zone
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    audit.record(actor=actor, verb=AuditVerb.USER_TIME_ZONE_CHANGED, object_type="user",
                 object_id=user.pk, now=now,
                 data={"user": user.get_username(), "before": before, "after": time_zone})
    return user
