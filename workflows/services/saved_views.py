"""A person's saved views of the case list: their own filters under a name.

Personal and changing nothing anyone else sees, so not audited.
"""

from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from workflows.models import SavedCaseView

# Paging and the CSRF token are not part of a view.
NOT_KEPT = {"before", "csrfmiddlewaretoken", "name"}
MAX_VIEWS = 50


def save_view(*, user, name: str, filters: list[tuple[str, str]]) -> SavedCaseView:
    """Keep the list's ``filters`` (query pairs) under ``name``; the same name again
    replaces what it held."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["Name the view, e.g. “Breached in intake”."]})
    if len(name) > 80:
        raise ValidationError({"name": ["Keep the name under 80 characters."]})
    query = urlencode([(key, value) for key, value in filters
                       if key not in NOT_KEPT and value != ""])
    if len(query) > 1000:
        raise ValidationError({"name": ["These filters are too long to keep as a view."]})
    with transaction.atomic():
        view, created = SavedCaseView.objects.update_or_create(
            user=user, name=name, defaults={"query": query},
            create_defaults={"query": query, "created_at": timezone.now()})
        if created and SavedCaseView.objects.filter(user=user).count() > MAX_VIEWS:
            raise ValidationError({"name": [
                f"You keep {MAX_VIEWS} views already: delete one you no longer use."]})
    return view


def delete_view(*, user, view_id: int) -> None:
    """Forget one of the person's own views (another's is absent: DoesNotExist)."""
    SavedCaseView.objects.get(pk=view_id, user=user).delete()

