"""Backtests and shadows of policy versions, and the confidence-threshold trade-off.

Asking for a backtest answers 202 at once; the job's progress and, once done, its
result are read at the backtest's own address. A shadow's comparison has the same shape
as a backtest's result.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from exceptions_app import selectors
from exceptions_app.models import Backtest, PolicyVersion, Shadow
from exceptions_app.services import backtests, quality, shadows, thresholds
from workflows.api.authentication import ThrottledTokenAuthentication


class BacktestRequestSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The policy version's number.")
    last = serializers.IntegerField(required=False, help_text="The most recent N decisions.")
    since = serializers.DateTimeField(required=False, help_text="Or a period's start...")
    until = serializers.DateTimeField(required=False, help_text="...and its end (excluded).")


class BacktestSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="policy.number")
    baseline_version = serializers.IntegerField(source="baseline.number")
    use_case = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.CharField(source="requested_by.get_username")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Backtest
        fields = ["id", "url", "use_case", "version", "baseline_version", "last", "since",
                  "until", "status", "processed", "total", "result", "error", "requested_by",
                  "requested_at", "started_at", "finished_at"]

    def get_url(self, backtest) -> str:
        return reverse("backtest-detail", args=[backtest.pk], request=self.context["request"])


class ShadowStartSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="A proposed version's number.")
    days = serializers.IntegerField(help_text="How long it runs beside the active version.")


class ShadowSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="policy.number")
    baseline_version = serializers.IntegerField(source="baseline.number")
    use_case = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    started_by = serializers.CharField(source="started_by.get_username")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Shadow
        fields = ["id", "url", "use_case", "version", "baseline_version", "status",
                  "started_by", "started_at", "ends_at", "stopped_at", "judged"]

    def get_url(self, shadow) -> str:
        return reverse("shadow-detail", args=[shadow.pk], request=self.context["request"])


class ShadowDetailSerializer(ShadowSerializer):
    comparison = serializers.SerializerMethodField()

    class Meta(ShadowSerializer.Meta):
        fields = [*ShadowSerializer.Meta.fields, "comparison"]

    def get_comparison(self, shadow) -> dict:
        return shadows.comparison(shadow)


def _policy_version(use_case, number: int) -> PolicyVersion:
    policy = PolicyVersion.objects.filter(use_case=use_case, number=number).first()
    if policy is None:
        raise serializers.ValidationError(
            {"version": [f"{use_case} has no policy version {number}."]})
    return policy


def _visible_shadow(request, pk: int) -> Shadow:
    shadow = (Shadow.objects.filter(
        pk=pk, use_case__in=selectors.visible_use_cases(user=request.user))
        .select_related("use_case", "policy", "baseline", "started_by").first())
    if shadow is None:
        raise NotFound("No such shadow for you.")
    return shadow


class _PeopleView(APIView):
    # Token first: an unauthenticated call answers 401 with the Token challenge.
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class _UseCaseView(_PeopleView):

    def use_case(self, request, slug: str):
        use_case = selectors.visible_use_cases(user=request.user).filter(slug=slug).first()
        if use_case is None:
            raise NotFound("No such use case for you.")
        return use_case


class UseCaseBacktestsView(_UseCaseView):
    @extend_schema(operation_id="backtest_list",
                   summary="The use case's most recent backtests, newest first.",
                   responses={200: BacktestSerializer(many=True),
                              404: OpenApiResponse(description="No such use case for you.")})
    def get(self, request, slug: str):
        use_case = self.use_case(request, slug)
        return Response(BacktestSerializer(backtests.recent_backtests(use_case=use_case),
                                           many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="backtest_request",
        request=BacktestRequestSerializer,
        summary="Backtest a policy version over the last N decisions or a period, beside "
                "the active version (managers, and the Responsible or Accountable for "
                "policy changes). Runs as a job: read its progress at its url.",
        responses={202: BacktestSerializer,
                   400: OpenApiResponse(description="version, last, since or until, named."),
                   403: OpenApiResponse(description="Not one who may backtest its policies."),
                   404: OpenApiResponse(description="No such use case for you.")})
    def post(self, request, slug: str):
        use_case = self.use_case(request, slug)
        given = BacktestRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        policy = _policy_version(use_case, data["version"])
        backtest = backtests.request_backtest(
            policy=policy, actor=request.user, last=data.get("last"),
            since=data.get("since"), until=data.get("until"))
        return Response(BacktestSerializer(backtest, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


class BacktestDetailView(_PeopleView):
    @extend_schema(operation_id="backtest_detail",
                   summary="A backtest's progress and, once done, what it found.",
                   responses={200: BacktestSerializer,
                              404: OpenApiResponse(description="No such backtest for you.")})
    def get(self, request, pk: int):
        backtest = (Backtest.objects.filter(
            pk=pk, use_case__in=selectors.visible_use_cases(user=request.user))
            .select_related("use_case", "policy", "baseline", "requested_by").first())
        if backtest is None:
            raise NotFound("No such backtest for you.")
        return Response(BacktestSerializer(backtest, context={"request": request}).data)


class UseCaseThresholdsView(_UseCaseView):
    @extend_schema(
        operation_id="use_case_thresholds",
        parameters=[
            OpenApiParameter("since", str, description="First day (YYYY-MM-DD) of decisions "
                                                       "received; 30 days back by default."),
            OpenApiParameter("until", str, description="Last day, today by default."),
            OpenApiParameter("model_version", str, description="One model version."),
            OpenApiParameter("tolerated_error", float,
                             description="The error rate the suggestion's upper 95% bound "
                                         "stays under (default 0.02)."),
        ],
        summary="For a rule 'confidence under T goes to review': per threshold from 0.00 to "
                "1.00, the share of labelled decisions it passes and their error rate with "
                "Wilson 95% intervals, and the lowest threshold whose errors are tolerated.",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "the curve"),
                   400: OpenApiResponse(description="A parameter, named."),
                   404: OpenApiResponse(description="No such use case for you.")})
    def get(self, request, slug: str):
        use_case = self.use_case(request, slug)
        period = quality.parse_period(request.query_params)
        curve = thresholds.threshold_curve(
            use_case=use_case, **period,
            tolerated_error=thresholds.parse_tolerated_error(request.query_params))
        return Response(curve.as_dict())


class UseCaseShadowsView(_UseCaseView):
    @extend_schema(operation_id="shadow_list",
                   summary="The use case's most recent shadows, newest first.",
                   responses={200: ShadowSerializer(many=True),
                              404: OpenApiResponse(description="No such use case for you.")})
    def get(self, request, slug: str):
        use_case = self.use_case(request, slug)
        return Response(ShadowSerializer(shadows.recent_shadows(use_case=use_case), many=True,
                                         context={"request": request}).data)

    @extend_schema(
        operation_id="shadow_start",
        request=ShadowStartSerializer,
        summary="Run a proposed version beside the active one for some days: every decision "
                "received meanwhile is also routed by it, and what it would have done is "
                "recorded (managers, and the Responsible or Accountable for policy changes).",
        responses={201: ShadowSerializer,
                   400: OpenApiResponse(description="version or days, named."),
                   403: OpenApiResponse(description="Not one who may shadow its policies."),
                   404: OpenApiResponse(description="No such use case for you.")})
    def post(self, request, slug: str):
        use_case = self.use_case(request, slug)
        given = ShadowStartSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        shadow = shadows.start_shadow(
            policy=_policy_version(use_case, given.validated_data["version"]),
            actor=request.user, days=given.validated_data["days"])
        return Response(ShadowSerializer(shadow, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class ShadowDetailView(_PeopleView):
    @extend_schema(operation_id="shadow_detail",
                   summary="A shadow and its comparison with the active version so far.",
                   responses={200: ShadowDetailSerializer,
                              404: OpenApiResponse(description="No such shadow for you.")})
    def get(self, request, pk: int):
        return Response(ShadowDetailSerializer(_visible_shadow(request, pk),
                                               context={"request": request}).data)


class ShadowStopView(_PeopleView):
    @extend_schema(operation_id="shadow_stop", request=None,
                   summary="Stop a running shadow before its period ends.",
                   responses={200: ShadowSerializer,
                              403: OpenApiResponse(description="Not one who may stop it."),
                              404: OpenApiResponse(description="No such shadow for you."),
                              409: OpenApiResponse(description="It is not running.")})
    def post(self, request, pk: int):
        shadow = shadows.stop_shadow(shadow=_visible_shadow(request, pk), actor=request.user)
        return Response(ShadowSerializer(shadow, context={"request": request}).data)
