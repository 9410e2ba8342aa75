"""``POST /api/v1/decisions/{id}/withdraw/``: an AI system takes its own decision back."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from exceptions_app.api.serializers import DecisionOutSerializer
from exceptions_app.api.views import AiSystemView
from exceptions_app.services.resolutions import withdraw_decision


class WithdrawInSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   max_length=1000,
                                   help_text="Why the AI system takes the decision back.")


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    state = serializers.CharField(help_text="The case's current state.")
    version = serializers.IntegerField()


class DecisionWithdrawView(AiSystemView):
    @extend_schema(
        operation_id="decisions_withdraw", request=WithdrawInSerializer,
        responses={200: DecisionOutSerializer,
                   401: OpenApiResponse(description="Missing, unknown or revoked key."),
                   404: OpenApiResponse(description="No such decision of this AI system."),
                   409: OpenApiResponse(ConflictSerializer,
                                        "People already resolved its case; nothing changed.")})
    def post(self, request, pk):
        """Withdraw one of your decisions: its open case is cancelled. Repeats are harmless."""
        # An empty body is an object without a reason; JSON null, a list or a string is not.
        body = request.data if request.body else {}
        if not isinstance(body, dict):
            raise serializers.ValidationError({"non_field_errors": [
                'The body must be a JSON object, such as {"reason": "Duplicate invoice"}.']})
        serializer = WithdrawInSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        decision = withdraw_decision(ai_system=request.user.ai_system, decision_id=pk,
                                     reason=serializer.validated_data["reason"])
        return Response(DecisionOutSerializer(decision).data, status=status.HTTP_200_OK)
