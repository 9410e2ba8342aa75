"""A person's own working preferences (flow: open the next case after resolving).

Changed by the person themselves, on the home page or through the API; audited like
every other change.
"""

from __future__ import annotations

from django.db import transaction

from workflows.services import audit
from workflows.verbs import AuditVerb

# The preferences a person may set, as the user model's field names.
FIELDS = ("open_next_after_resolving",)


def set_preferences(*, user, open_next_after_resolving: bool):
    """Save the person's preferences; a change is audited, no change records nothing."""
    with transaction.atomic():
        before = audit.snapshot(user, FIELDS)
        user.open_next_after_resolving = open_next_after_resolving
        user.save(update_fields=list(FIELDS))
        audit.record_changes(before=before, after=audit.snapshot(user, FIELDS), actor=user,
                             verb=AuditVerb.USER_PREFERENCES_CHANGED, object_type="user",
                             object_id=user.pk)
    return user
