"""A use case's quality and drift figures: the monitoring page's numbers, by API."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app import selectors
from exceptions_app.services import drift, quality
from workflows.api.authentication import ThrottledTokenAuthentication


class UseCaseQualityView(APIView):
    # Token first: an unauthenticated call answers 401 with the Token challenge.
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="use_case_quality",
        parameters=[
            OpenApiParameter("since", str, description="First day (YYYY-MM-DD, UTC) of "
                                                       "decisions received; 30 days back by "
                                                       "default."),
            OpenApiParameter("until", str, description="Last day (YYYY-MM-DD), today by "
                                                       "default."),
            OpenApiParameter("model_version", str, description="One model version (400 "
                                                               "naming it if unknown)."),
        ],
        summary="Volume, route mix, override rate and QA accuracy with Wilson 95% "
                "intervals, calibration and ECE, latency, reviewer cost, and drift, of the "
                "decisions received in a period (people who may see the use case).",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "the figures"),
                   400: OpenApiResponse(description="since, until or model_version, named."),
                   404: OpenApiResponse(description="No such use case for you.")})
    def get(self, request, slug: str):
        use_case = selectors.visible_use_cases(user=request.user).filter(slug=slug).first()
        if use_case is None:
            raise NotFound("No such use case for you.")
        report = quality.quality_report(use_case=use_case,
                                        **quality.parse_period(request.query_params))
        return Response({**quality.report_as_dict(report),
                         "drift": drift.summary_as_dict(drift.drift_summary(use_case))})
