"""Queues for people, and how each hands out its cases.

- ``GET /api/v1/queues/`` and ``GET /api/v1/queues/{slug}/``: the queues the caller
  works (managers: all; any other queue is not found, I8), with their assignment mode,
  cap and current SLA policy version;
- ``GET /api/v1/queues/{slug}/assignment/``: pull, or push by round-robin or to the
  least loaded, and the cap on open assignments per reviewer;
- ``PUT /api/v1/queues/{slug}/assignment/``: managers change it (others: 403); audited
  with before and after.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from workflows import selectors
from workflows.api.authentication import ThrottledTokenAuthentication
from workflows.api.serializers import ProblemSerializer
from workflows.models import AssignmentMode, Queue
from workflows.services import assignment

NOT_YOURS = OpenApiResponse(description="No such queue, or not one you work.")
MANAGERS_ONLY = OpenApiResponse(ProblemSerializer, "Only managers may do this.")
FIELD_ERRORS = OpenApiResponse(description="Field errors, by field name: nothing changed.")




class PeopleAPIView(APIView):
    """The people's API (not the integration's): a token or a session, signed in."""

    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


def require_manager(user, what: str) -> None:
    if not selectors.is_manager(user):
        raise PermissionDenied(f"Only managers may {what}.")


def managers_input(request, serializer_class, what: str) -> dict:
    """A manager's request body, validated: 403 for anyone else, then 400 field errors."""
    require_manager(request.user, what)
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


class QueueSerializer(serializers.ModelSerializer):
    assignment_mode = serializers.ChoiceField(choices=AssignmentMode.choices, read_only=True)
    sla_policy_version = serializers.IntegerField(
        source="current_sla_version", read_only=True, allow_null=True,
        help_text="The current SLA policy version new cases start under; null: the "
                  "queue's own wall-clock targets.")
    response_target = serializers.DurationField(
        format="iso-8601", read_only=True,
        help_text="Wall-clock time to first response while the queue has no SLA policy.")
    resolution_target = serializers.DurationField(
        format="iso-8601", read_only=True,
        help_text="Wall-clock time to resolution while the queue has no SLA policy.")

    class Meta:
        model = Queue
        fields = ["slug", "name", "description", "blind", "assignment_mode",
                  "max_open_per_reviewer", "sla_policy_version", "response_target",
                  "resolution_target"]
        read_only_fields = fields


class AssignmentSerializer(serializers.Serializer):
    queue = serializers.SlugField(source="slug", read_only=True)
    assignment_mode = serializers.ChoiceField(
        choices=AssignmentMode.choices,
        help_text="pull: reviewers claim the next case; round_robin and least_loaded push "
                  "each new case to an available Responsible member.")
    max_open_per_reviewer = serializers.IntegerField(
        min_value=1, max_value=32767, required=False,
        help_text="Push gives nobody more open cases than this; kept when left out.")


@extend_schema_view(
    list=extend_schema(summary="The queues you work (managers: all), with how they assign "
                               "cases and their current SLA policy version."),
    retrieve=extend_schema(summary="One queue you work.",
                           responses={200: QueueSerializer, 404: NOT_YOURS}),
)
class QueueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    serializer_class = QueueSerializer
    pagination_class = None  # a handful of queues: the whole list at once
    filter_backends = []
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    queryset = Queue.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Queue.objects.none()
        return selectors.visible_queues(user=self.request.user)

    @extend_schema(methods=["GET"], summary="How the queue hands out new cases.",
                   responses={200: AssignmentSerializer, 404: NOT_YOURS})
    @extend_schema(methods=["PUT"],
                   summary="Managers: choose pull or push (round-robin, least loaded) and "
                           "the cap; applies to cases opened from now on. Audited.",
                   request=AssignmentSerializer,
                   responses={200: AssignmentSerializer, 400: FIELD_ERRORS,
                              403: MANAGERS_ONLY, 404: NOT_YOURS})
    @action(detail=True, methods=["get", "put"], serializer_class=AssignmentSerializer,
            pagination_class=None)
    def assignment(self, request, slug=None):
        queue = self.get_object()
        if request.method == "PUT":
            data = managers_input(request, AssignmentSerializer,
                                  "change how a queue assigns its cases")
            queue = assignment.set_assignment_mode(
                queue=queue, assignment_mode=data["assignment_mode"],
                max_open_per_reviewer=data.get("max_open_per_reviewer"),
                actor=request.user)
        return Response(AssignmentSerializer(queue).data)
