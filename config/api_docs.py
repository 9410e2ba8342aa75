"""Who may read the API documentation: signed-in people, or anyone if API_DOCS_PUBLIC.

Read at request time, so a changed setting needs no new URL configuration.
"""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from rest_framework.permissions import BasePermission


def docs_are_public() -> bool:
    return getattr(settings, "API_DOCS_PUBLIC", False)


class MayReadApiDocs(BasePermission):
    """For the schema: a stranger gets DRF's 401/403."""

    def has_permission(self, request, view) -> bool:
        return docs_are_public() or bool(request.user and request.user.is_authenticated)


def docs_page(view):
    """For the HTML pages: a stranger is sent to the sign-in page and back."""

    @wraps(view)
    def page(request, *args, **kwargs):
        if not (docs_are_public() or request.user.is_authenticated):
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return page
