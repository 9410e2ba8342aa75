"""The delivery log for managers (``workflows.manage_cases``): every outbox message and
each of its delivery attempts. The relay is its writer; a manager may only send a failed
message again.
"""

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from workflows import selectors
from workflows.api.authentication import ThrottledTokenAuthentication
from workflows.api.pagination import NewestFirstPagination
from workflows.models import Channel, DeliveryAttempt, OutboxMessage, OutboxStatus
from workflows.services import outbox


class IsManager(BasePermission):
    message = "The delivery log is for managers (permission workflows.manage_cases)."

    def has_permission(self, request, view):
        return selectors.is_manager(request.user)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["attempted_at", "succeeded", "status_code", "error", "duration_ms"]
        read_only_fields = fields


class OutboxMessageSerializer(serializers.ModelSerializer):
    channel = serializers.ChoiceField(choices=Channel.choices, read_only=True)
    status = serializers.ChoiceField(choices=OutboxStatus.choices, read_only=True)
    delivery_attempts = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = OutboxMessage
        fields = ["id", "channel", "dedup_key", "recipient", "subject", "payload", "case",
                  "status", "attempts", "next_attempt_at", "created_at", "delivered_at",
                  "last_error", "delivery_attempts"]
        read_only_fields = fields


class OutboxFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OutboxStatus.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    case = django_filters.NumberFilter(help_text="Messages about this case.")

    class Meta:
        model = OutboxMessage
        fields = ["status", "channel", "case"]




@extend_schema_view(
    list=extend_schema(summary="The delivery log: outbox messages, newest first, with "
                               "their attempts (managers only).",
                       responses={200: OutboxMessageSerializer(many=True),
                                  403: OpenApiResponse(description="Not a manager.")}),
    retrieve=extend_schema(summary="One outbox message with every delivery attempt.",
                           responses={200: OutboxMessageSerializer,
                                      403: OpenApiResponse(description="Not a manager."),
                                      404: OpenApiResponse(description="No such message.")}),
)
class OutboxMessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           viewsets.GenericViewSet):
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, IsManager]
    serializer_class = OutboxMessageSerializer
    filterset_class = OutboxFilter
    pagination_class = NewestFirstPagination
    queryset = OutboxMessage.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return OutboxMessage.objects.none()
        return selectors.delivery_log()

    @extend_schema(request=None, summary="Send a message that failed for good again, with a "
                                         "fresh run of attempts (managers only; audited).",
                   responses={200: OutboxMessageSerializer,
                              403: OpenApiResponse(description="Not a manager."),
                              404: OpenApiResponse(description="No such message."),
                              409: OpenApiResponse(description="The message is not failed.")})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        message = self.get_object()
        outbox.redeliver(message_id=message.pk, actor=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=message.pk)).data)
