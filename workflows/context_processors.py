"""What every page shows about the signed-in person: the top bar."""

from django.urls import reverse
from django.utils.functional import SimpleLazyObject, cached_property

from workflows import hooks, selectors


class MainNav:
    """For the top bar: do they work any queue (then "Next case" is worth offering, and
    so are approvals), how many approvals wait for them, how many notifications they have
    not read. All three in one query (``selectors.top_bar``), asked only when a page
    shows the bar."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def _top_bar(self) -> selectors.TopBar:
        return selectors.top_bar(user=self.user)

    @property
    def approvals(self) -> int:
        return self._top_bar.approvals

    @property
    def works_queues(self) -> bool:
        return self._top_bar.works_queues

    @property
    def unread_notifications(self) -> int:
        return self._top_bar.unread_notifications

    @cached_property
    def reads_audit_trail(self) -> bool:
        from workflows.models import reads_audit_trail

        return reads_audit_trail(self.user)

    @property
    def may_approve(self) -> bool:
        return bool(self.approvals) or self.works_queues

    @property
    def links(self) -> list[dict]:
        """The domain's pages (``hooks.register_nav_link``), reversed by their own names."""
        return [{"key": link.key, "label": link.label, "url": reverse(link.url_name)}
                for link in hooks.nav_links()]


def main_nav(request) -> MainNav:
    """The request's ``MainNav``, made once: a view that needs one of its figures (the
    approvals page counts its pages by the bar's count) shares the bar's one query."""
    if not hasattr(request, "_main_nav"):
        request._main_nav = MainNav(request.user)
    return request._main_nav


def notifications(request) -> dict:
    """``main_nav`` (``MainNav``) and ``unread_notifications``, the count for the top
    bar's badge.

    Lazy, so pages that do not show them (and anonymous requests) cost no query; when
    shown, the whole bar is one query.
    """
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"unread_notifications": 0}
    nav = main_nav(request)
    return {"main_nav": nav,
            "unread_notifications": SimpleLazyObject(lambda: nav.unread_notifications)}
