"""The audit trail for managers and auditors (``workflows.view_audit_trail``):

- ``GET /api/v1/audit/events/``: the audit log, newest first, with the page's filters
  (``actor``, ``verb``, ``object_type``, ``object_id``, ``case``, ``since``, ``until``
  and the domain's, e.g. ``use_case``); ``before`` pages back by keyset;
- ``POST /api/v1/audit/verifications/``: check the whole chain, as a job (it reads every
  event: minutes at a million, see docs/PERFORMANCE.md); ``GET`` its url for the progress
  and, once finished, the report with the first broken link (seq, event id, what was
  checked, expected and found); ``GET /api/v1/audit/verifications/`` lists the latest.
"""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.reverse import reverse

from workflows import audit_log
from workflows.api.queues import PeopleAPIView
from workflows.models import AuditVerification, reads_audit_trail
from workflows.services import audit_verifications
from workflows.views_audit import NOT_ALLOWED


class ReadsAuditTrail(BasePermission):
    message = NOT_ALLOWED

    def has_permission(self, request, view):
        return reads_audit_trail(request.user) or bool(request.user and request.user.is_staff)


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    actor = serializers.CharField(source="event.actor_label")
    verb = serializers.CharField(source="event.verb")
    wording = serializers.CharField()
    object_type = serializers.CharField(source="event.object_type")
    object_id = serializers.CharField(source="event.object_id")
    case = serializers.IntegerField(source="event.case_id", allow_null=True)
    data = serializers.JSONField(source="event.data")
    row_hash = serializers.CharField(source="event.row_hash")
    sealed = serializers.BooleanField()


class AuditLogSerializer(serializers.Serializer):
    results = AuditEventSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next (older) page, or null.")


class AuditEventsView(PeopleAPIView):
    permission_classes = [*PeopleAPIView.permission_classes, ReadsAuditTrail]

    @extend_schema(responses=AuditLogSerializer, parameters=[
        OpenApiParameter(name, str, required=False) for name in (
            "actor", "verb", "object_type", "object_id", "case", "since", "until", "use_case",
            "before")])
    def get(self, request):
        try:
            log_filter = audit_log.parse_filter(request.query_params)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        try:
            before = int(request.query_params.get("before", "")) or None
        except ValueError:
            before = None
        log = audit_log.page(log_filter, before=before)
        following = None
        if log.next_before:
            query = "&".join(filter(None, (log_filter.query, f"before={log.next_before}")))
            following = f"{reverse('audit-event-list', request=request)}?{query}"
        results = [{"id": line.id, "occurred_at": line.event.occurred_at, "event": line.event,
                    "wording": line.wording, "sealed": line.sealed} for line in log.lines]
        return Response(AuditLogSerializer({"results": results, "next": following}).data)


class BrokenLinkSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    event_id = serializers.IntegerField()
    field = serializers.CharField(help_text="seq, row_hash or chain_hash")
    expected = serializers.CharField()
    found = serializers.CharField()


class VerificationReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    sealed = serializers.IntegerField()
    unsealed = serializers.IntegerField()
    backfilled = serializers.IntegerField()
    head = serializers.DictField(allow_null=True, help_text="{seq, chain_hash} of the newest seal")
    first_broken_link = BrokenLinkSerializer(allow_null=True)
    problem_count = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.CharField())


class VerificationSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="audit-verification-detail")
    requested_by = serializers.CharField(source="requested_by.username")
    expected_head = serializers.SerializerMethodField(
        help_text="SEQ:HASH of the checkpoint it was asked to find, or null")
    report = serializers.SerializerMethodField(
        help_text="What the check found, once it is finished (null before)")

    class Meta:
        model = AuditVerification
        fields = ["id", "url", "status", "checked", "total", "expected_head",
                  "accept_backfilled", "requested_by", "requested_at", "started_at",
                  "finished_at", "error", "report"]

    def get_expected_head(self, verification) -> str | None:
        head = verification.expected_head
        return f"{head[0]}:{head[1]}" if head else None

    @extend_schema_field(VerificationReportSerializer(allow_null=True))
    def get_report(self, verification):
        return verification.report or None


class VerificationRequestSerializer(serializers.Serializer):
    expect_head = serializers.CharField(
        required=False, allow_blank=True,
        help_text="SEQ:HASH of a checkpoint kept outside the database")
    accept_backfilled = serializers.BooleanField(
        default=False, help_text="accept the demo seed's backfilled history")

    def validate_expect_head(self, value: str) -> tuple[int, str] | None:
        if not value:
            return None
        seq, _, chain = value.partition(":")
        if not seq.isdigit() or len(chain) != 64:
            raise serializers.ValidationError(
                "Give the head as SEQ:HASH (a checkpoint's seq, a colon and its "
                "64-character chain_hash).")
        return int(seq), chain


class AuditVerificationsView(PeopleAPIView):
    permission_classes = [*PeopleAPIView.permission_classes, ReadsAuditTrail]

    @extend_schema(operation_id="audit_verification_list",
                   responses=VerificationSerializer(many=True),
                   summary="The latest checks of the audit trail, newest first.")
    def get(self, request):
        return Response(VerificationSerializer(audit_verifications.recent(), many=True,
                                               context={"request": request}).data)

    @extend_schema(
        operation_id="audit_verification_request", request=VerificationRequestSerializer,
        summary="Check the whole audit trail: every event's hash and MAC, every link of the "
                "chain, every checkpoint. Runs as a job (minutes at a million events): "
                "read its progress and report at its url.",
        responses={202: VerificationSerializer,
                   400: OpenApiResponse(description="expect_head, named.")})
    def post(self, request):
        given = VerificationRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        verification = audit_verifications.request_verification(
            actor=request.user, expected_head=given.validated_data.get("expect_head"),
            accept_backfilled=given.validated_data["accept_backfilled"])
        body = VerificationSerializer(verification, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class AuditVerificationView(PeopleAPIView):
    permission_classes = [*PeopleAPIView.permission_classes, ReadsAuditTrail]

    @extend_schema(operation_id="audit_verification_detail", responses=VerificationSerializer)
    def get(self, request, pk: int):
        verification = get_object_or_404(AuditVerification.objects.select_related("requested_by"),
                                         pk=pk)
        return Response(VerificationSerializer(verification, context={"request": request}).data)
