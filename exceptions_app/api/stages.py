"""A use case's stage by API: its evidence and gates, moves up and down, the kill switch
and the guardrails' settings. Thin: parse, call the service, answer."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app import selectors
from exceptions_app.services import guardrails, stages
from exceptions_app.stage_models import StageChange
from workflows.api.authentication import ThrottledTokenAuthentication

HISTORY_SHOWN = 20


def stage_change_as_dict(change: StageChange) -> dict:
    return {"id": change.pk, "from_stage": change.from_stage, "to_stage": change.to_stage,
            "move": change.move, "trigger": change.trigger,
            "actor": change.actor.get_username() if change.actor else "system",
            "reason": change.reason, "at": change.at}


def stage_page_as_dict(use_case) -> dict:
    """The evidence, the gates of the next stage, the guardrails and the last moves."""
    evidence = stages.stage_evidence(use_case=use_case)
    settings = evidence.guardrails
    return {**evidence.as_dict(),
            "guardrails": {**{name: getattr(settings, name) for name in guardrails.SETTINGS},
                           "kill_switch": settings.kill_switch,
                           "kill_switch_reason": settings.kill_switch_reason,
                           "kill_switch_at": settings.kill_switch_at},
            "history": [stage_change_as_dict(change) for change in
                        use_case.stage_changes.select_related("actor")[:HISTORY_SHOWN]]}


class _UseCaseView(APIView):
    # Token first: an unauthenticated call answers 401 with the Token challenge.
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def use_case(self, request, slug: str):
        use_case = (selectors.visible_use_cases(user=request.user).filter(slug=slug)
                    .select_related("process").first())
        if use_case is None:
            raise NotFound("No such use case for you.")  # I8
        return use_case


def _refused(exc: stages.StageRefused) -> Response:
    return Response({"detail": str(exc), "problems": exc.problems, "evidence": exc.evidence},
                    status=status.HTTP_409_CONFLICT)


class UseCaseStageView(_UseCaseView):
    @extend_schema(
        operation_id="use_case_stage",
        summary="The use case's stage, each model version's evidence over the gates' window "
                "(agreement, QA accuracy, exception rate, SLA compliance, volume, with Wilson "
                "95% intervals and sample sizes), the next stage's gates, the guardrails and "
                "the last stage moves (people who may see the use case).",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "the evidence"),
                   404: OpenApiResponse(description="No such use case for you.")})
    def get(self, request, slug: str):
        return Response(stage_page_as_dict(self.use_case(request, slug)))


class AdvanceSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class LowerSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class KillSwitchSerializer(serializers.Serializer):
    on = serializers.BooleanField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500,
                                   default="")


class UseCaseAdvanceView(_UseCaseView):
    @extend_schema(
        operation_id="use_case_stage_advance", request=AdvanceSerializer,
        summary="Move the use case one stage up, signed off by the caller (the Accountable "
                "for stage_change); the evidence is stored in the audit trail.",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "the move"),
                   403: OpenApiResponse(description="Not the Accountable for stage changes."),
                   409: OpenApiResponse(description="A gate is not met (each named in "
                                                    "problems), the kill switch is on, or "
                                                    "the stage is the top one.")})
    def post(self, request, slug: str):
        use_case = self.use_case(request, slug)
        body = AdvanceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            change = stages.advance_stage(use_case=use_case, actor=request.user,
                                          note=body.validated_data["note"])
        except stages.StageRefused as exc:
            return _refused(exc)
        return Response({**stage_change_as_dict(change), "evidence": change.evidence})


class UseCaseLowerView(_UseCaseView):
    @extend_schema(
        operation_id="use_case_stage_lower", request=LowerSerializer,
        summary="Move the use case one stage down, with a reason (its Accountable for "
                "stage changes or a manager).",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "the move"),
                   403: OpenApiResponse(description="Neither Accountable nor a manager."),
                   409: OpenApiResponse(description="Already at the audit stage.")})
    def post(self, request, slug: str):
        use_case = self.use_case(request, slug)
        body = LowerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            change = stages.lower_stage(use_case=use_case, actor=request.user,
                                        reason=body.validated_data["reason"])
        except stages.StageRefused as exc:
            return _refused(exc)
        return Response(stage_change_as_dict(change))


class UseCaseKillSwitchView(_UseCaseView):
    @extend_schema(
        operation_id="use_case_kill_switch", request=KillSwitchSerializer,
        summary="Turn the kill switch on (every decision of the use case goes to review, "
                "from the next request on; a reason is needed) or off.",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "the switch"),
                   400: OpenApiResponse(description="reason, when turning it on."),
                   403: OpenApiResponse(description="Neither Accountable nor a manager.")})
    def post(self, request, slug: str):
        use_case = self.use_case(request, slug)
        body = KillSwitchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        settings = guardrails.set_kill_switch(use_case=use_case, actor=request.user,
                                              on=body.validated_data["on"],
                                              reason=body.validated_data["reason"])
        return Response({"kill_switch": settings.kill_switch,
                         "reason": settings.kill_switch_reason, "since": settings.kill_switch_at})


class UseCaseGuardrailsView(_UseCaseView):
    @extend_schema(
        operation_id="use_case_guardrails_update", request=OpenApiTypes.OBJECT,
        summary="Change the gates and guardrails: " + ", ".join(guardrails.SETTINGS) + ". "
                "Validated at save; each refusal names its field.",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "the settings"),
                   400: OpenApiResponse(description="Field errors, by name."),
                   403: OpenApiResponse(description="Neither Accountable nor a manager.")})
    def patch(self, request, slug: str):
        use_case = self.use_case(request, slug)
        if not isinstance(request.data, dict):
            return Response({"non_field_errors": ["Send an object of settings."]},
                            status=status.HTTP_400_BAD_REQUEST)
        unknown = sorted(set(request.data) - set(guardrails.SETTINGS))
        if unknown:
            return Response({name: [f"Not a setting; the settings are: "
                                    f"{', '.join(guardrails.SETTINGS)}."] for name in unknown},
                            status=status.HTTP_400_BAD_REQUEST)
        settings = guardrails.update_guardrails(use_case=use_case, actor=request.user,
                                                **request.data)
        return Response({name: getattr(settings, name) for name in guardrails.SETTINGS})
