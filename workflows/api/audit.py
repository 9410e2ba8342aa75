"""The audit trail for managers and auditors (``workflows.view_audit_trail``):

- ``GET /api/v1/audit/events/``: the audit log, newest first, with the page's filters
  (``actor``, ``verb``, ``object_type``, ``object_id``, ``case``, ``since``, ``until``
  and the domain's, e.g. ``use_case``); ``before`` pages back by keyset;
- ``GET /api/v1/audit/verify/``: the whole chain verified now, with the first broken
  link (seq, event id, what was checked, expected and found). It reads every event
  (see docs/PERFORMANCE.md for its rate): a nightly job or an auditor's check, not a
  probe.
"""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.reverse import reverse

from workflows import audit_log
from workflows.api.queues import PeopleAPIView
from workflows.models import reads_audit_trail
from workflows.services import audit
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


class VerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    sealed = serializers.IntegerField()
    unsealed = serializers.IntegerField()
    backfilled = serializers.IntegerField()
    head = serializers.DictField(allow_null=True, help_text="{seq, chain_hash} of the newest seal")
    first_broken_link = BrokenLinkSerializer(allow_null=True)
    problem_count = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.CharField())


class AuditVerifyView(PeopleAPIView):
    permission_classes = [*PeopleAPIView.permission_classes, ReadsAuditTrail]

    @extend_schema(responses=VerificationSerializer, parameters=[
        OpenApiParameter("expect_head", str, required=False,
                         description="SEQ:HASH of a checkpoint kept outside the database"),
        OpenApiParameter("accept_backfilled", bool, required=False,
                         description="accept the demo seed's backfilled history")])
    def get(self, request):
        expected_head = None
        if request.query_params.get("expect_head"):
            seq, _, chain = request.query_params["expect_head"].partition(":")
            if not seq.isdigit() or len(chain) != 64:
                raise serializers.ValidationError(
                    {"expect_head": "Give the head as SEQ:HASH (a checkpoint's seq, a colon "
                                    "and its 64-character chain_hash)."})
            expected_head = (int(seq), chain)
        accept = request.query_params.get("accept_backfilled", "").lower() in ("1", "true", "yes")
        report = audit.verify(expected_head=expected_head, accept_backfilled=accept)
        head = {"seq": report.head[0], "chain_hash": report.head[1]} if report.head else None
        broken = report.first_broken_link
        return Response(VerificationSerializer({
            "ok": report.ok, "sealed": report.sealed, "unsealed": report.unsealed,
            "backfilled": report.backfilled, "head": head, "problem_count": report.problem_count,
            "problems": report.problems,
            "first_broken_link": broken.__dict__ if broken else None}).data)
