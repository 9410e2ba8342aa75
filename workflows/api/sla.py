"""SLA policies and business calendars, for people.

A queue's SLA policy is versioned: a case keeps the version it opened under, so
publishing a version changes new cases only, until a manager re-applies it to the open
ones. Read by whoever works the queue (managers: every queue; others: 404, I8); written
by managers only (403), each write audited by its service.

- ``GET  /api/v1/queues/{slug}/sla-policies/``: every version, newest first;
- ``POST /api/v1/queues/{slug}/sla-policies/``: publish the next version;
- ``GET  /api/v1/queues/{slug}/sla-policies/{version}/``: one version;
- ``POST /api/v1/queues/{slug}/sla-policies/reapply/``: move the open cases to the
  current version, answering how many were recomputed;
- ``GET  /api/v1/calendars/``, ``GET /api/v1/calendars/{id}/``: calendars the caller's
  queues' policies use (managers: all), with their closures;
- ``POST /api/v1/calendars/{id}/closures/``, ``DELETE .../closures/{closure_id}/``:
  managers add or remove a custom closure.
"""

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from workflows import selectors
from workflows.api.queues import (
    FIELD_ERRORS,
    MANAGERS_ONLY,
    NOT_YOURS,
    PeopleAPIView,
    managers_input,
    require_manager,
)
from workflows.api.serializers import ProblemSerializer
from workflows.models import Calendar, CalendarClosure, Queue, SlaPolicy, SlaTarget
from workflows.services import sla

NO_CALENDAR = OpenApiResponse(description="No such calendar, or not one your queues use.")




def _queue(request, slug: str) -> Queue:
    # The queues the person works; managers and auditors read them all (changes are
    # the services' to refuse, and an auditor's never reach them).
    return selectors.visible_queues(user=request.user).get(slug=slug)


def _policies(queue: Queue):
    return (SlaPolicy.objects.filter(queue=queue)
            .select_related("queue", "calendar", "created_by")
            .prefetch_related(Prefetch("targets",
                                       queryset=SlaTarget.objects.order_by("min_priority")))
            .order_by("-version"))


# -- serializers ----------------------------------------------------------------------------

class SlaTargetSerializer(serializers.Serializer):
    min_priority = serializers.IntegerField(
        min_value=0, max_value=32767, default=0,
        help_text="Cases of this priority or more urgent (up to the next row) use this row.")
    response_target = serializers.DurationField(
        format="iso-8601", help_text="Business time to first response (claim), e.g. PT1H.")
    resolution_target = serializers.DurationField(
        format="iso-8601", help_text="Business time to resolution, e.g. PT8H.")


class CalendarSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Calendar
        fields = ["id", "name", "time_zone"]
        read_only_fields = fields


class SlaPolicySerializer(serializers.ModelSerializer):
    queue = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    calendar = CalendarSummarySerializer(read_only=True, allow_null=True,
                                         help_text="null: the clock runs 24x7.")
    targets = SlaTargetSerializer(many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                              allow_null=True)

    class Meta:
        model = SlaPolicy
        fields = ["queue", "version", "is_current", "calendar", "warning_fraction",
                  "restart_on_reassign", "targets", "created_by", "created_at"]
        read_only_fields = fields


class PublishSerializer(serializers.Serializer):
    targets = SlaTargetSerializer(
        many=True, allow_empty=False,
        help_text="One row per priority band; one must start at priority 0.")
    calendar = serializers.PrimaryKeyRelatedField(
        queryset=Calendar.objects.all(), allow_null=True, default=None,
        help_text="A calendar's id; null or left out: the clock runs 24x7.")
    warning_fraction = serializers.FloatField(
        default=sla.DEFAULT_WARNING_FRACTION,
        help_text="Warn when this fraction of a target has elapsed (0 < f < 1).")
    restart_on_reassign = serializers.BooleanField(
        default=False, help_text="Reassignment restarts the resolution clock in full.")


class ReapplySerializer(serializers.Serializer):
    version = serializers.IntegerField(
        required=False, min_value=1,
        help_text="The version you mean to re-apply; if another is current by now, the "
                  "answer is 409 and nothing moves.")


class ReapplyResultSerializer(serializers.Serializer):
    queue = serializers.SlugField()
    version = serializers.IntegerField(help_text="The version the open cases now run under.")
    recomputed = serializers.IntegerField(
        help_text="How many open cases moved to it and had their due times recomputed.")


class ClosureSerializer(serializers.ModelSerializer):
    class Meta:
        model = CalendarClosure
        fields = ["id", "starts_at", "ends_at", "reason"]
        read_only_fields = ["id"]
        extra_kwargs = {"reason": {"default": ""}}
        # The service checks the order of the two instants and names the field.
        validators = []


class CalendarSerializer(serializers.ModelSerializer):
    working_hours = serializers.JSONField(
        read_only=True, help_text='Per weekday (Monday is "0"): [["09:00", "17:00"], ...]; '
                                  "a weekday left out is closed.")
    closures = ClosureSerializer(many=True, read_only=True)

    class Meta:
        model = Calendar
        fields = ["id", "name", "time_zone", "working_hours", "holiday_country",
                  "holiday_subdivision", "closures"]
        read_only_fields = fields


# -- views ----------------------------------------------------------------------------------

class SlaPolicyListView(PeopleAPIView):
    @extend_schema(summary="The queue's SLA policy versions, newest first, with their "
                           "calendars and per-priority targets.",
                   responses={200: SlaPolicySerializer(many=True), 404: NOT_YOURS})
    def get(self, request, slug):
        policies = _policies(_queue(request, slug))
        return Response(SlaPolicySerializer(policies, many=True).data)

    @extend_schema(summary="Managers: publish the queue's next SLA policy version. New cases "
                           "start under it; open cases keep theirs until it is re-applied.",
                   request=PublishSerializer,
                   responses={201: SlaPolicySerializer, 400: FIELD_ERRORS,
                              403: MANAGERS_ONLY, 404: NOT_YOURS})
    def post(self, request, slug):
        queue = _queue(request, slug)
        data = managers_input(request, PublishSerializer, "publish an SLA policy")
        policy = sla.publish_sla_policy(queue=queue, actor=request.user, now=timezone.now(),
                                        **data)
        return Response(SlaPolicySerializer(_policies(queue).get(pk=policy.pk)).data,
                        status=status.HTTP_201_CREATED)


class SlaPolicyDetailView(PeopleAPIView):
    @extend_schema(summary="One version of the queue's SLA policy.",
                   responses={200: SlaPolicySerializer,
                              404: OpenApiResponse(description="No such version, or not a "
                                                               "queue you work.")})
    def get(self, request, slug, version):
        policy = _policies(_queue(request, slug)).get(version=version)
        return Response(SlaPolicySerializer(policy).data)


class SlaPolicyReapplyView(PeopleAPIView):
    @extend_schema(
        summary="Managers: move the queue's open cases to its current SLA policy version "
                "and recompute their due times (business time already used stays used). "
                "Each case moved is audited.",
        request=ReapplySerializer,
        responses={200: ReapplyResultSerializer, 400: FIELD_ERRORS, 403: MANAGERS_ONLY,
                   404: NOT_YOURS,
                   409: OpenApiResponse(ProblemSerializer, "The queue has no SLA policy, or "
                                        "its current version is not the one you sent.")})
    def post(self, request, slug):
        queue = _queue(request, slug)
        data = managers_input(request, ReapplySerializer,
                              "re-apply an SLA policy to open cases")
        recomputed = sla.reapply_policy(queue=queue, actor=request.user, now=timezone.now(),
                                        expected_version=data.get("version"))
        current = SlaPolicy.objects.get(queue=queue, is_current=True)
        return Response({"queue": queue.slug, "version": current.version,
                         "recomputed": recomputed})


class CalendarListView(PeopleAPIView):
    @extend_schema(summary="Business calendars your queues' SLA policies use (managers: "
                           "all), with their custom closures.",
                   responses={200: CalendarSerializer(many=True)})
    def get(self, request):
        calendars = selectors.visible_calendars(user=request.user).prefetch_related("closures")
        return Response(CalendarSerializer(calendars.order_by("name"), many=True).data)


class CalendarDetailView(PeopleAPIView):
    @extend_schema(summary="One business calendar: time zone, working hours, holidays and "
                           "custom closures.",
                   responses={200: CalendarSerializer, 404: NO_CALENDAR})
    def get(self, request, pk):
        calendar = (selectors.visible_calendars(user=request.user)
                    .prefetch_related("closures").get(pk=pk))
        return Response(CalendarSerializer(calendar).data)


class CalendarClosureListView(PeopleAPIView):
    @extend_schema(summary="Managers: close the calendar for a period (a shutdown, an "
                           "offsite). Clocks computed from now on skip it, and the open "
                           "cases' deadlines still ahead move, keeping their business "
                           "time left. Audited.",
                   request=ClosureSerializer,
                   responses={201: ClosureSerializer, 400: FIELD_ERRORS, 403: MANAGERS_ONLY,
                              404: NO_CALENDAR})
    def post(self, request, pk):
        calendar = selectors.visible_calendars(user=request.user).get(pk=pk)
        data = managers_input(request, ClosureSerializer, "change a business calendar")
        closure = sla.add_closure(calendar=calendar, actor=request.user, now=timezone.now(),
                                  **data)
        return Response(ClosureSerializer(closure).data, status=status.HTTP_201_CREATED)


class CalendarClosureDetailView(PeopleAPIView):
    @extend_schema(summary="Managers: remove a custom closure; the open cases' deadlines "
                           "still ahead move back. Audited.",
                   responses={204: OpenApiResponse(description="Removed."),
                              403: MANAGERS_ONLY,
                              404: OpenApiResponse(description="No such closure of this "
                                                               "calendar.")})
    def delete(self, request, pk, closure_id):
        calendar = selectors.visible_calendars(user=request.user).get(pk=pk)
        require_manager(request.user, "change a business calendar")
        sla.remove_closure(calendar=calendar, closure_id=closure_id, actor=request.user,
                           now=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)
