"""Availability for push assignment: a reviewer away, with a delegate, or back.

- ``GET/PUT /api/v1/me/availability/``: the caller's own;
- ``GET/PUT /api/v1/reviewers/{username}/availability/``: managers, for anyone (others:
  403, except for themselves; an unknown username: 404).

Going away hands the reviewer's open assignments to the delegate, or back to their
queues (``assignment.set_away``): each case moved is audited, and so is the change. A
delegate who works none of the reviewer's queues is refused (400 naming ``delegate``);
one who works some takes only those queues' cases.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from workflows import selectors
from workflows.api.queues import FIELD_ERRORS, PeopleAPIView
from workflows.api.serializers import ProblemSerializer
from workflows.services import assignment


class AvailabilitySerializer(serializers.Serializer):
    user = serializers.CharField(read_only=True, help_text="Username.")
    available = serializers.BooleanField(
        help_text="false: away; push assignment and escalation pass the person by.")
    away_since = serializers.DateTimeField(read_only=True, allow_null=True)
    delegate = serializers.CharField(
        required=False, allow_null=True, default=None,
        help_text="Away only: the username of who takes over the open cases; they must "
                  "work at least one of the reviewer's queues, and take only the cases "
                  "of queues they work (the others go back to their queues, as with null).")

    def validate(self, data):
        if data["available"] and data.get("delegate"):
            raise serializers.ValidationError(
                {"delegate": ["Only someone who is away has a delegate; leave it out."]})
        return data


class AvailabilityChangeSerializer(AvailabilitySerializer):
    moved_cases = serializers.IntegerField(
        read_only=True, help_text="Open cases handed to the delegate or back to the queue.")


def _body(user, *, moved: int | None = None) -> dict:
    status = assignment.statuses([user.pk]).get(user.pk)
    body = {"user": user.get_username(),
            "available": status is None or status.available,
            "away_since": status.away_since if status else None,
            "delegate": (status.delegate.get_username()
                         if status is not None and status.delegate_id else None)}
    if moved is not None:
        body["moved_cases"] = moved
    return body


def _delegate(username: str | None):
    if not username:
        return None
    User = get_user_model()
    try:
        return User.objects.get(**{User.USERNAME_FIELD: username})
    except User.DoesNotExist as exc:
        raise ValidationError({"delegate": [f"There is no user '{username}'."]}) from exc


def _change(request, user) -> Response:
    data = AvailabilitySerializer(data=request.data)
    data.is_valid(raise_exception=True)
    if data.validated_data["available"]:
        assignment.set_available(user=user, actor=request.user)
        moved = 0
    else:
        moved = assignment.set_away(user=user, actor=request.user,
                                    delegate=_delegate(data.validated_data["delegate"]))
    return Response(_body(user, moved=moved))


PUT_RESPONSES = {200: AvailabilityChangeSerializer, 400: FIELD_ERRORS}


class MyAvailabilityView(PeopleAPIView):
    @extend_schema(summary="Your availability for push assignment.",
                   responses={200: AvailabilitySerializer})
    def get(self, request):
        return Response(_body(request.user))

    @extend_schema(summary="Mark yourself away (with a delegate who takes over your open "
                           "cases, or none: they go back to their queues) or back. Audited.",
                   request=AvailabilitySerializer, responses=PUT_RESPONSES)
    def put(self, request):
        return _change(request, request.user)


REVIEWER_REFUSALS = {
    403: OpenApiResponse(ProblemSerializer, "Only managers set someone else's availability."),
    404: OpenApiResponse(description="No such user."),
}


class ReviewerAvailabilityView(PeopleAPIView):
    def _reviewer(self, request, username):
        # Managers see and set it; an auditor reads it too (and changes nothing).
        if (request.user.get_username() != username
                and not selectors.reads_everything(request.user)):
            raise PermissionDenied("Only managers see and set someone else's availability.")
        User = get_user_model()
        return User.objects.get(**{User.USERNAME_FIELD: username})

    @extend_schema(summary="Managers: a reviewer's availability.",
                   responses={200: AvailabilitySerializer, **REVIEWER_REFUSALS})
    def get(self, request, username):
        return Response(_body(self._reviewer(request, username)))

    @extend_schema(summary="Managers: mark a reviewer away (their open cases go to the "
                           "delegate, or back to their queues) or back. Audited.",
                   request=AvailabilitySerializer,
                   responses={**PUT_RESPONSES, **REVIEWER_REFUSALS})
    def put(self, request, username):
        return _change(request, self._reviewer(request, username))
