"""``POST /api/v1/decisions/{id}/documents/``: an AI system attaches the source document
of one of its decisions, as a file (multipart, field ``file``) or as a URL to fetch
(JSON ``{"url": ...}``, a host on the system's document hosts)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from exceptions_app.api.views import AiSystemView
from exceptions_app.models import DecisionDocument
from exceptions_app.services import documents


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text=(
        f"The document itself: {documents.ACCEPTED_WORDS}, told from its bytes."))
    url = serializers.URLField(required=False, max_length=2000, help_text=(
        "Or where to fetch it: https, on a host in the AI system's document hosts."))

    def validate(self, attrs):
        if ("file" in attrs) == ("url" in attrs):
            raise serializers.ValidationError(
                {"file": ["Send either a file (multipart field 'file') or a url, not both "
                          "and not neither."]})
        return attrs


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = DecisionDocument
        fields = ["id", "kind", "original_filename", "content_type", "size", "sha256",
                  "source_url", "fetch_status", "fetch_error", "created_at"]


class DecisionDocumentsView(AiSystemView):
    parser_classes = [MultiPartParser, JSONParser]

    @extend_schema(
        operation_id="decisions_documents_create", request={
            "multipart/form-data": DocumentUploadSerializer,
            "application/json": DocumentUploadSerializer},
        responses={201: OpenApiResponse(DocumentSerializer, "The file, stored."),
                   202: OpenApiResponse(DocumentSerializer,
                                        "The URL, to be fetched (or sent before: as it is)."),
                   400: OpenApiResponse(description="No file or url, or a host not allowed."),
                   401: OpenApiResponse(description="Missing, unknown or revoked key."),
                   404: OpenApiResponse(description="No such decision of this AI system."),
                   413: OpenApiResponse(description="The document is over the size limit."),
                   415: OpenApiResponse(description="Not a PDF, PNG, JPEG or WebP file.")})
    def post(self, request, pk):
        """Attach a decision's source document (the invoice the AI read): reviewers see it
        beside the AI's reading. A URL is fetched in the background (``fetch_status``)."""
        serializer = DocumentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ai_system = request.user.ai_system
        try:
            if "file" in serializer.validated_data:
                document = documents.upload_document(
                    ai_system=ai_system, decision_id=pk,
                    file=serializer.validated_data["file"])
                answer = status.HTTP_201_CREATED
            else:
                document = documents.request_fetch(
                    ai_system=ai_system, decision_id=pk, url=serializer.validated_data["url"])
                answer = status.HTTP_202_ACCEPTED
        except documents.DocumentRefused as refusal:
            return Response({refusal.field: [refusal.message]}, status=refusal.status)
        return Response(DocumentSerializer(document).data, status=answer)
