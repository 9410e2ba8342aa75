"""A person's own in-app notifications: list, read one, read all (I8: only their own)."""

import django_filters
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.response import Response

from workflows import selectors
from workflows.api.authentication import ThrottledTokenAuthentication
from workflows.api.pagination import NewestFirstPagination
from workflows.models import Notification
from workflows.services import notifications


class NotificationSerializer(serializers.ModelSerializer):
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "text", "case", "created_at", "read_at", "read"]
        read_only_fields = fields

    def get_read(self, notification) -> bool:
        return notification.read_at is not None


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull",
                                          help_text="true: only unread ones.")

    class Meta:
        model = Notification
        fields = ["unread"]




NOT_YOURS = OpenApiResponse(description="No such notification of yours.")


@extend_schema_view(
    list=extend_schema(summary="Your notifications, newest first (cursor pagination)."),
    retrieve=extend_schema(summary="One of your notifications.", responses={
        200: NotificationSerializer, 404: NOT_YOURS}),
)
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          viewsets.GenericViewSet):
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    pagination_class = NewestFirstPagination
    lookup_value_regex = r"\d+"
    queryset = Notification.objects.none()  # scoped per user in get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return selectors.user_notifications(user=self.request.user)

    @extend_schema(request=None, summary="Mark one of your notifications read.",
                   responses={200: NotificationSerializer, 404: NOT_YOURS})
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = notifications.mark_read(user=request.user, notification_id=int(pk))
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, summary="Mark all your notifications read.",
                   responses={200: inline_serializer("NotificationsRead", {
                       "marked": serializers.IntegerField(help_text="How many changed.")})})
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"marked": notifications.mark_all_read(user=request.user)})

    @extend_schema(summary="How many of your notifications are unread.",
                   responses={200: inline_serializer("UnreadNotifications", {
                       "unread": serializers.IntegerField()})})
    @action(detail=False, methods=["get"], url_path="unread-count")
    def unread_count(self, request):
        return Response({"unread": selectors.unread_notification_count(user=request.user)})
