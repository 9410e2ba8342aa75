from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotAuthenticated, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api.auth import (
    AiSystemRateThrottle,
    ApiKeyAuthentication,
    IsAiSystem,
)
from exceptions_app.api.serializers import (
    BatchInSerializer,
    BatchOutSerializer,
    DecisionInSerializer,
    DecisionOutSerializer,
    DecisionResolutionSerializer,
    IntakeJSONParser,
    validate_decisions,
)
from exceptions_app.models import Decision
from exceptions_app.services import callbacks
from exceptions_app.services.intake import submit_decisions
from workflows.api.pagination import FeedPagination, NewestFirstPagination


class AiSystemView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAiSystem]
    throttle_classes = [AiSystemRateThrottle]

    def permission_denied(self, request, message=None, code=None):
        # A missing key is 401 (with the Api-Key challenge), not 403.
        if not getattr(request.user, "is_authenticated", False):
            raise NotAuthenticated("Send 'Authorization: Api-Key <key>'.")
        raise PermissionDenied(message)


class DecisionPagination(NewestFirstPagination):
    ordering = "-id"  # newest first; unique, so the cursor never skips or repeats


class DecisionsView(AiSystemView, generics.ListAPIView):
    parser_classes = [IntakeJSONParser]
    serializer_class = DecisionOutSerializer
    pagination_class = DecisionPagination
    filter_backends = []

    def get_queryset(self):
        # I8: only the calling system's own decisions.
        decisions = (Decision.objects.filter(ai_system=self.request.user.ai_system)
                     .select_related(*DECISION_READ))
        external_id = self.request.query_params.get("external_id")
        if external_id is not None:
            if "\x00" in external_id:
                raise ValidationError({"external_id": ["Cannot hold a NUL character."]})
            decisions = decisions.filter(external_id=external_id)
        return decisions

    @extend_schema(
        operation_id="decisions_list",
        parameters=[OpenApiParameter("external_id", str,
                                     description="Only the decision you posted with this id.")],
        responses={200: DecisionOutSerializer(many=True),
                   400: OpenApiResponse(description="A malformed cursor.")})
    def get(self, request, *args, **kwargs):
        """Your decisions, newest first (cursor pagination); ``external_id`` finds one by
        the id you gave it. Resolved ones carry their resolution."""
        return self.list(request, *args, **kwargs)

    @extend_schema(
        operation_id="decisions_create", request=DecisionInSerializer,
        responses={201: DecisionOutSerializer,
                   200: OpenApiResponse(DecisionOutSerializer,
                                        "A replay of a stored decision: the first answer."),
                   400: OpenApiResponse(description="Field errors; nothing was stored."),
                   401: OpenApiResponse(description="Missing, unknown or revoked key."),
                   403: OpenApiResponse(description="This system may not post to the use case."),
                   413: OpenApiResponse(description="The body is over the size limit."),
                   422: OpenApiResponse(description="external_id taken by another body.")})
    def post(self, request):
        """Post one AI decision; it is judged against the use case's active policy."""
        [(item, errors)] = validate_decisions([request.data])
        if errors is not None:
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        [result] = submit_decisions(ai_system=request.user.ai_system, items=[item])
        if result.decision is None:
            return Response(result.errors, status=result.status)
        return Response(DecisionOutSerializer(result.decision).data, status=result.status)


class DecisionBatchView(AiSystemView):
    parser_classes = [IntakeJSONParser]

    @extend_schema(
        operation_id="decisions_batch", request=BatchInSerializer,
        responses={200: OpenApiResponse(BatchOutSerializer,
                                        "One result per item, in order, each with its own "
                                        "status (201, 200, 400, 403 or 422)."),
                   400: OpenApiResponse(description="Not a batch: `decisions` missing, empty "
                                                    "or over 1000 items; nothing was stored."),
                   401: OpenApiResponse(description="Missing, unknown or revoked key."),
                   413: OpenApiResponse(description="The body is over the size limit.")})
    def post(self, request):
        """Post up to 1000 decisions; each gets the answer it would get alone, in order."""
        batch = BatchInSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        raw = batch.validated_data["decisions"]
        answers: list[dict | None] = [None] * len(raw)
        valid, valid_indexes = [], []
        for index, (item, errors) in enumerate(validate_decisions(raw)):
            if errors is None:
                valid.append(item)
                valid_indexes.append(index)
            else:
                answers[index] = {"status": 400, "errors": errors}
        results = submit_decisions(ai_system=request.user.ai_system, items=valid)
        written = iter(DecisionOutSerializer(
            [result.decision for result in results if result.decision is not None],
            many=True).data)
        for index, result in zip(valid_indexes, results, strict=True):
            if result.decision is None:
                answers[index] = {"status": result.status, "errors": result.errors}
            else:
                answers[index] = {"status": result.status, "decision": next(written)}
        return Response({"results": answers}, status=status.HTTP_200_OK)


# What a decision's answer reads besides the row: its case and, once resolved, the resolution.
DECISION_READ = ("use_case", "policy_version", "case__queue", "case__resolution__resolved_by",
                 "case__resolution__approved_by")


class DecisionDetailView(generics.RetrieveAPIView):
    """A decision as stored, with its case's current state and, once resolved, its
    resolution. Only its own AI system sees it."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAiSystem]
    throttle_classes = [AiSystemRateThrottle]
    serializer_class = DecisionOutSerializer

    def get_queryset(self):
        # I8: another system's decision is simply not there (404).
        return (Decision.objects.filter(ai_system=self.request.user.ai_system)
                .select_related(*DECISION_READ))


class ResolutionFeedPagination(FeedPagination):
    position_field = "position"  # of the feed's items (``callbacks.resolution_feed``)


class ResolutionFeedView(generics.ListAPIView):
    """Your decisions' resolutions, oldest first, each once, in the order they committed.
    Keep following ``next`` (also on an empty page) to get each new one as it comes: the
    pull twin of the ``decision.resolved`` webhook, with the same fields."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAiSystem]
    throttle_classes = [AiSystemRateThrottle]
    serializer_class = DecisionResolutionSerializer
    pagination_class = ResolutionFeedPagination
    filter_backends = []

    def list(self, request, *args, **kwargs):
        items = self.paginator.read(request, lambda after, size: callbacks.resolution_feed(
            ai_system=request.user.ai_system, after=after, size=size))
        return self.paginator.get_paginated_response(
            [DecisionResolutionSerializer.represent(item) for item in items])
