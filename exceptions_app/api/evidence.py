"""The audit evidence of a period as one streamed file, for auditors
(``workflows.export_evidence``): ``GET /api/v1/audit/evidence/{csv|jsonl}/?since=&until=``
(and ``use_case``). Audited ``evidence.exported``."""

from datetime import date

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission

from exceptions_app.services import evidence
from workflows.api.queues import PeopleAPIView
from workflows.models import exports_evidence


class ExportsEvidence(BasePermission):
    message = ("Exporting audit evidence is for auditors (permission "
               "workflows.export_evidence).")

    def has_permission(self, request, view):
        return exports_evidence(request.user)


class EvidenceExportView(PeopleAPIView):
    permission_classes = [*PeopleAPIView.permission_classes, ExportsEvidence]

    @extend_schema(
        operation_id="audit_evidence_export",
        parameters=[
            OpenApiParameter("file_format", str, OpenApiParameter.PATH,
                             enum=list(evidence.FORMATS)),
            OpenApiParameter("since", str, required=True,
                             description="The period's first day (or an ISO instant)."),
            OpenApiParameter("until", str, required=True,
                             description="The period's last day, included (or an ISO instant, "
                                         "excluded)."),
            OpenApiParameter("use_case", str, description="A use case's slug.")],
        summary="The period's decisions and audit events as one streamed file (auditors; "
                "audited).",
        responses={**{(200, content_type.split(";")[0]): OpenApiTypes.BINARY
                      for content_type in evidence.FORMATS.values()},
                   400: OpenApiResponse(description="A field, named."),
                   403: OpenApiResponse(description="Not an auditor."),
                   404: OpenApiResponse(description="Not one of the formats.")})
    def get(self, request, file_format: str):
        if file_format not in evidence.FORMATS:
            raise NotFound(f"No format '{file_format}': choose one of "
                           f"{', '.join(evidence.FORMATS)}.")
        period = evidence.parse_period(request.query_params)
        return download(period=period, file_format=file_format, actor=request.user)


def download(*, period: evidence.Period, file_format: str, actor) -> StreamingHttpResponse:
    """The export as a file download, streamed (shared by the page)."""
    pieces = evidence.export(period=period, file_format=file_format, actor=actor)
    response = StreamingHttpResponse(pieces, content_type=evidence.FORMATS[file_format])
    scope = period.use_case.slug if period.use_case else "all"
    response["Content-Disposition"] = (
        f'attachment; filename="evidence-{scope}-{period.since:%Y-%m-%d}-'
        f'{date.today():%Y-%m-%d}.{file_format}"')
    return response
