"""Governance as code over the API: the same export, plan and apply as the command.

Managers only (403 for anyone else): the file spans every use case. The plan and apply
bodies are the YAML file itself (``Content-Type: application/yaml``).
"""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from exceptions_app.services import governance
from workflows.api.queues import PeopleAPIView, require_manager

MAX_FILE_BYTES = 2 * 1024 * 1024


class YamlTextParser(BaseParser):
    """The body as text: the service reads the YAML and words every problem itself."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_FILE_BYTES + 1) if stream else b""
        if len(raw) > MAX_FILE_BYTES:
            raise ParseError(f"The file is larger than {MAX_FILE_BYTES // 1024} KiB.")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("The file is not UTF-8 text.") from exc


class PlainTextParser(YamlTextParser):
    media_type = "text/plain"


class TextYamlParser(YamlTextParser):
    media_type = "text/yaml"


PARSERS = [YamlTextParser, TextYamlParser, PlainTextParser]
PROBLEMS = OpenApiResponse(OpenApiTypes.OBJECT, "The file cannot be applied: "
                           '{"errors": [{"path": "use_cases[0].reason_codes[2].label", '
                           '"message": "..."}]}; nothing changed.')


def _problems(exc: governance.GovernanceError) -> Response:
    return Response({"errors": [{"path": p.path, "message": p.message} for p in exc.problems]},
                    status=status.HTTP_400_BAD_REQUEST)


def _text(request) -> str:
    body = request.data
    if not isinstance(body, str):
        raise ParseError("Send the YAML file as the body, with Content-Type: application/yaml.")
    return body


class GovernanceExportView(PeopleAPIView):
    @extend_schema(operation_id="governance_export",
                   summary="The whole set-up as one YAML file: calendars, queues with members "
                           "and SLA policies, use cases with contracts, reason codes, RACI, "
                           "escalation chain and policy, AI systems (managers).",
                   # A YAML mapping: docs/GOVERNANCE.md describes its sections.
                   responses={(200, "application/yaml"): OpenApiResponse(
                       OpenApiTypes.OBJECT, "The governance file (YAML).")})
    def get(self, request):
        require_manager(request.user, "export the governance file")
        return HttpResponse(governance.export_yaml(), content_type="application/yaml")


class GovernancePlanView(PeopleAPIView):
    parser_classes = PARSERS

    @extend_schema(operation_id="governance_plan", request={"application/yaml": OpenApiTypes.STR},
                   summary="What applying the file would create, change or leave alone, field "
                           "by field; changes nothing (managers).",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "the plan"),
                              400: PROBLEMS})
    def post(self, request):
        require_manager(request.user, "plan a governance file")
        try:
            return Response(governance.plan(_text(request)).as_json())
        except governance.GovernanceError as exc:
            return _problems(exc)


class GovernanceApplyView(PeopleAPIView):
    parser_classes = PARSERS

    @extend_schema(operation_id="governance_apply", request={"application/yaml": OpenApiTypes.STR},
                   summary="Apply the file through the audited services; a policy that differs "
                           "becomes a new version proposed for the Accountable's approval "
                           "(managers).",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "what was done"),
                              400: PROBLEMS})
    def post(self, request):
        require_manager(request.user, "apply a governance file")
        try:
            return Response(governance.apply(_text(request), actor=request.user).as_json())
        except governance.GovernanceError as exc:
            return _problems(exc)
