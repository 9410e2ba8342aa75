"""Labelled data out through the API, for managers: pages of rows by cursor, and the whole
selection as one streamed file (JSON Lines, CSV or Parquet)."""

from datetime import date

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.views import APIView

from exceptions_app.services import labels
from workflows.api.authentication import ThrottledTokenAuthentication
from workflows.api.pagination import FeedPagination
from workflows.selectors import is_manager

FILTERS = [
    OpenApiParameter("use_case", str, description="A use case's slug."),
    OpenApiParameter("model_version", str, description="A model version with labels (400 "
                                                       "naming it otherwise)."),
    OpenApiParameter("verdict", str, enum=["accepted", "corrected", "rejected"]),
    OpenApiParameter("since", str, description="Resolved at or after (date or ISO instant)."),
    OpenApiParameter("until", str, description="Resolved before (date or ISO instant)."),
]


class LabelPagination(FeedPagination):
    position_field = "position"
    page_size = 500
    max_page_size = labels.CHUNK


class IsManager(BasePermission):
    message = "Exporting labelled data is for managers (permission workflows.manage_cases)."

    def has_permission(self, request, view):
        return is_manager(request.user)


class ManagerView(APIView):
    # Token first: an unauthenticated call answers 401 with the Token challenge.
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, IsManager]


class LabelListView(ManagerView):
    @extend_schema(
        operation_id="labels_list", parameters=FILTERS,
        summary="Labelled examples with their provenance, oldest first; follow 'next' "
                "(also on the last page) for each new one exactly once (managers only).",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "next and results"),
                   400: OpenApiResponse(description="A filter or cursor, named.")})
    def get(self, request):
        label_filter = labels.parse_filter(request.query_params)
        paginator = LabelPagination()
        if paginator.cursor_query_param not in request.query_params:
            labels.record_export(actor=request.user, label_filter=label_filter, how="api")
        page = paginator.read(request, lambda after, size: labels.page(
            label_filter, after=after, size=size))
        return paginator.get_paginated_response(page)


class LabelExportView(ManagerView):
    @extend_schema(
        operation_id="labels_export",
        parameters=[OpenApiParameter("file_format", str, OpenApiParameter.PATH,
                                     enum=list(labels.FORMATS)), *FILTERS],
        summary="Every labelled example the filters select, as one streamed file "
                "(managers only; audited).",
        responses={**{(200, content_type.split(";")[0]): OpenApiTypes.BINARY
                      for content_type in labels.FORMATS.values()},
                   400: OpenApiResponse(description="A filter, named."),
                   404: OpenApiResponse(description="Not one of the formats.")})
    def get(self, request, file_format: str):
        if file_format not in labels.FORMATS:
            raise NotFound(f"No format '{file_format}': choose one of "
                           f"{', '.join(labels.FORMATS)}.")
        label_filter = labels.parse_filter(request.query_params)
        return download(label_filter=label_filter, file_format=file_format, actor=request.user)


def download(*, label_filter: labels.LabelFilter, file_format: str, actor):
    """The export as a file download, streamed (shared by the page)."""
    pieces = labels.export(label_filter=label_filter, file_format=file_format, actor=actor)
    response = StreamingHttpResponse(pieces, content_type=labels.FORMATS[file_format])
    scope = label_filter.use_case.slug if label_filter.use_case else "all"
    response["Content-Disposition"] = (
        f'attachment; filename="labels-{scope}-{date.today():%Y-%m-%d}.{file_format}"')
    return response

