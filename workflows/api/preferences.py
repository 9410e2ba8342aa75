"""The caller's own working preferences: ``GET/PUT /api/v1/me/preferences/``.

``open_next_after_resolving`` (on by default): after resolving on the case page, the
next waiting case is claimed and opened. Audited when it changes.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from workflows.api.queues import FIELD_ERRORS, PeopleAPIView
from workflows.services import preferences


class PreferencesSerializer(serializers.Serializer):
    open_next_after_resolving = serializers.BooleanField(
        help_text="After resolving a case on its page, claim and open the next waiting "
                  "one (the most urgent in your queues).")


def _body(user) -> dict:
    return {"open_next_after_resolving": user.open_next_after_resolving}


class MyPreferencesView(PeopleAPIView):
    @extend_schema(summary="Your working preferences.",
                   responses={200: PreferencesSerializer})
    def get(self, request):
        return Response(_body(request.user))

    @extend_schema(summary="Set your working preferences. Audited.",
                   request=PreferencesSerializer,
                   responses={200: PreferencesSerializer, 400: FIELD_ERRORS})
    def put(self, request):
        data = PreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_body(preferences.set_preferences(user=request.user,
                                                          **data.validated_data)))
