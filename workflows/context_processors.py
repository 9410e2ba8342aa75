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


def notifications(request) -> dict:
    """``main_nav`` (``MainNav``) and ``unread_notifications``, the count for the top
    bar's badge.

    Lazy, so pages that do not show them (and anonymous requests) cost no query; when
    shown, the whole bar is one query.
    """
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"unread_notifications": 0}
    main_nav = MainNav(user)
    return {"main_nav": main_nav,
            "unread_notifications": SimpleLazyObject(lambda: main_nav.unread_notifications)}
