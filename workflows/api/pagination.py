"""Pagination for the API's lists: cursors, newest first; feeds, oldest first."""

import base64

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

INVALID_CURSOR = ("Not a cursor this API gave out: start without one, or follow the "
                  "'next' link of a page.")


class NewestFirstPagination(CursorPagination):
    """A cursor is the server's to write and the client's to send back unchanged. One that
    does not decode, or holds a position its ordering field cannot take (a forged
    ``p=abc``), answers 400 naming ``cursor``, never a 500."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        if cursor is not None and cursor.position is not None:
            field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
            try:
                field.to_python(cursor.position)
            except DjangoValidationError:
                raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        return cursor


class FeedPagination(BasePagination):
    """A feed read oldest first by a position field that only grows in commit order.

    Every page's ``next`` link carries the last position read, an empty page's too, so a
    reader that keeps following it gets each item exactly once, however many arrive
    between its reads."""

    position_field: str
    cursor_query_param = "cursor"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        return self.read(request, lambda after, size: list(
            queryset.filter(**{f"{self.position_field}__gt": after})
            .order_by(self.position_field)[:size]))

    def read(self, request, fetch) -> list:
        """The page ``fetch(after, size)`` answers past the request's cursor; its items are
        objects or dicts holding ``position_field``."""
        self.request = request
        after = self._decode(request.query_params.get(self.cursor_query_param))
        page = fetch(after, self._page_size(request))
        if not page:
            self.last = after
        elif isinstance(page[-1], dict):
            self.last = page[-1][self.position_field]
        else:
            self.last = getattr(page[-1], self.position_field)
        return page

    def get_paginated_response(self, data):
        url = self.request.build_absolute_uri()
        return Response({"next": replace_query_param(url, self.cursor_query_param,
                                                     self._encode(self.last)),
                         "results": data})

    def get_paginated_response_schema(self, schema):
        return {"type": "object", "required": ["next", "results"], "properties": {
            "next": {"type": "string", "format": "uri",
                     "description": "Where to read on from: also on the last page, for "
                                    "what arrives later."},
            "results": schema}}

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.cursor_query_param, "in": "query", "required": False,
             "description": "The 'next' link's cursor; none to start at the beginning.",
             "schema": {"type": "string"}},
            {"name": self.page_size_query_param, "in": "query", "required": False,
             "description": f"Items a page, up to {self.max_page_size}.",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size}},
        ]

    def _page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: ["A whole number from 1."]})
        return min(int(raw), self.max_page_size)

    @staticmethod
    def _encode(position: int) -> str:
        return base64.urlsafe_b64encode(f"after={position}".encode()).decode()

    def _decode(self, cursor: str | None) -> int:
        if cursor is None:
            return 0
        try:
            name, _, position = base64.urlsafe_b64decode(cursor.encode()).decode().partition("=")
        except (ValueError, UnicodeError):
            name, position = "", ""
        if name != "after" or not (position.isascii() and position.isdigit()):
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]})
        return int(position)
