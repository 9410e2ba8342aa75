"""Onboarding by API: AI systems (keys, secret, callback URL, document hosts) and use
cases (contracts, reason codes, summary fields, QA rates), as the pages do.

Reads are scoped (I8): AI systems to managers, auditors and each system's owner, use cases to
those who may see them (``selectors.visible_use_cases``); anything else is 404. Writes
are managers' (403 for anyone else) and go through the audited services; their
refusals answer 400 naming the field. A new key or signing secret is in the answer to
the request that made it, and never again.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from exceptions_app import selectors
from exceptions_app.api.serializers import NamedRowField
from exceptions_app.models import AiSystem, AiSystemAPIKey, UseCase
from exceptions_app.services import api_keys, use_cases
from workflows.api.queues import (
    FIELD_ERRORS,
    MANAGERS_ONLY,
    PeopleAPIView,
    managers_input,
    require_manager,
)
from workflows.models import Queue, reads_everything

NOT_YOURS = OpenApiResponse(description="No such AI system or use case for you.")


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = AiSystemAPIKey
        fields = ["prefix", "name", "created", "revoked"]


class AiSystemSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    use_cases = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    keys = ApiKeySerializer(source="api_keys", many=True, read_only=True)
    has_signing_secret = serializers.SerializerMethodField()

    class Meta:
        model = AiSystem
        fields = ["slug", "name", "owner", "use_cases", "callback_url", "document_hosts",
                  "is_active", "keys", "has_signing_secret", "previous_secret_expires_at"]

    def get_has_signing_secret(self, system) -> bool:
        return bool(system.signing_secret)


class AiSystemInput(serializers.Serializer):
    slug = serializers.SlugField(max_length=50, required=False)
    name = serializers.CharField(max_length=200)
    owner = NamedRowField(slug_field="username",
                          queryset=get_user_model().objects.filter(is_active=True))
    use_cases = NamedRowField(slug_field="slug", many=True, queryset=UseCase.objects.all(),
                              required=False)
    callback_url = serializers.CharField(max_length=200, allow_blank=True, required=False)
    document_hosts = serializers.ListField(child=serializers.CharField(), required=False)
    is_active = serializers.BooleanField(required=False)


class IssueKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=api_keys.MAX_NAME_LENGTH)


class RotateSecretInput(serializers.Serializer):
    overlap_hours = serializers.FloatField(min_value=0, max_value=24 * 14,
                                           default=settings.WEBHOOK_SECRET_OVERLAP_HOURS)


def _visible_systems(user):
    systems = AiSystem.objects.select_related("owner").prefetch_related("use_cases",
                                                                        "api_keys")
    # Managers and the auditor (reading) see every system; anyone else their own.
    return systems if reads_everything(user) else systems.filter(owner=user)


def _system(request, slug: str) -> AiSystem:
    system = _visible_systems(request.user).filter(slug=slug).first()
    if system is None:
        raise NotFound("No such AI system for you.")
    return system


class AiSystemListView(PeopleAPIView):
    @extend_schema(operation_id="ai_systems_list", summary="AI systems: all for managers, "
                   "one's own for its owner.", responses={200: AiSystemSerializer(many=True)})
    def get(self, request):
        return Response(AiSystemSerializer(_visible_systems(request.user).order_by("slug"),
                                           many=True).data)

    @extend_schema(operation_id="ai_systems_create", request=AiSystemInput,
                   summary="Register an AI system (managers; audited). It gets a signing "
                           "secret; issue its keys apart.",
                   responses={201: AiSystemSerializer, 400: FIELD_ERRORS, 403: MANAGERS_ONLY})
    def post(self, request):
        values = managers_input(request, AiSystemInput, "register AI systems")
        if "slug" not in values:
            return Response({"slug": ["This field is required."]},
                            status=status.HTTP_400_BAD_REQUEST)
        system = use_cases.ai_system_create(actor=request.user, **values)
        return Response(AiSystemSerializer(_system(request, system.slug)).data,
                        status=status.HTTP_201_CREATED)


class AiSystemDetailView(PeopleAPIView):
    @extend_schema(operation_id="ai_systems_retrieve", responses={200: AiSystemSerializer,
                                                                  404: NOT_YOURS})
    def get(self, request, slug: str):
        return Response(AiSystemSerializer(_system(request, slug)).data)

    @extend_schema(operation_id="ai_systems_update", request=AiSystemInput(partial=True),
                   summary="Change an AI system's settings (managers; audited with before and "
                           "after).",
                   responses={200: AiSystemSerializer, 400: FIELD_ERRORS, 403: MANAGERS_ONLY,
                              404: NOT_YOURS})
    def patch(self, request, slug: str):
        system = _system(request, slug)
        data = AiSystemInput(data=request.data, partial=True)
        require_manager(request.user, "change AI systems")
        data.is_valid(raise_exception=True)
        changes = {name: value for name, value in data.validated_data.items() if name != "slug"}
        use_cases.ai_system_update(ai_system=system, actor=request.user, **changes)
        return Response(AiSystemSerializer(_system(request, slug)).data)


class AiSystemKeysView(PeopleAPIView):
    @extend_schema(operation_id="ai_systems_issue_key", request=IssueKeyInput,
                   summary="Issue an API key (managers; audited): the key is in this answer "
                           "only; Backstop keeps its hash.",
                   responses={201: OpenApiResponse(description='{"key", "prefix", "name"}'),
                              403: MANAGERS_ONLY, 404: NOT_YOURS})
    def post(self, request, slug: str):
        system = _system(request, slug)
        values = managers_input(request, IssueKeyInput, "issue API keys")
        key = api_keys.issue_api_key(ai_system=system, name=values["name"], actor=request.user)
        prefix = key.partition(".")[0]
        response = Response({"key": key, "prefix": prefix, "name": values["name"]},
                            status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class AiSystemKeyRevokeView(PeopleAPIView):
    @extend_schema(operation_id="ai_systems_revoke_key", request=None,
                   summary="Revoke a key (managers; audited): refused from the next request.",
                   responses={204: None, 403: MANAGERS_ONLY, 404: NOT_YOURS})
    def post(self, request, slug: str, prefix: str):
        system = _system(request, slug)
        require_manager(request.user, "revoke API keys")
        api_key = AiSystemAPIKey.objects.filter(ai_system=system, prefix=prefix).first()
        if api_key is None:
            raise NotFound("No such key of this AI system.")
        api_keys.revoke_api_key(api_key=api_key, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AiSystemRotateSecretView(PeopleAPIView):
    @extend_schema(operation_id="ai_systems_rotate_secret", request=RotateSecretInput,
                   summary="A new webhook signing secret (managers; audited without it); the "
                           "old one signs beside it for overlap_hours.",
                   responses={200: OpenApiResponse(description='{"signing_secret", '
                                                               '"previous_signs_until"}'),
                              403: MANAGERS_ONLY, 404: NOT_YOURS})
    def post(self, request, slug: str):
        system = _system(request, slug)
        values = managers_input(request, RotateSecretInput, "rotate signing secrets")
        secret = use_cases.ai_system_rotate_secret(
            ai_system=system, actor=request.user,
            overlap=timedelta(hours=values["overlap_hours"]))
        system.refresh_from_db()
        response = Response({"signing_secret": secret,
                             "previous_signs_until": system.previous_secret_expires_at})
        response["Cache-Control"] = "no-store"
        return response


class UseCaseSerializer(serializers.ModelSerializer):
    review_queue = NamedRowField(slug_field="slug", queryset=Queue.objects.all())
    qa_queue = NamedRowField(slug_field="slug", queryset=Queue.objects.all(), allow_null=True,
                             required=False)
    reason_codes = serializers.JSONField(required=False)
    summary_fields = serializers.JSONField(required=False)
    input_schema = serializers.JSONField(required=False, allow_null=True)
    output_schema = serializers.JSONField(required=False, allow_null=True)

    class Meta:
        model = UseCase
        fields = ["slug", "name", "description", "stage", "review_queue", "qa_queue",
                  "automate_qa_rate", "optimize_qa_rate", "summary_fields", "reason_codes",
                  "input_schema", "output_schema"]
        read_only_fields = ["stage"]
        # The service checks slugs' uniqueness with the rest (full_clean).
        extra_kwargs = {"slug": {"validators": []}}


def _use_case(request, slug: str) -> UseCase:
    use_case = (selectors.visible_use_cases(user=request.user)
                .select_related("review_queue", "qa_queue").filter(slug=slug).first())
    if use_case is None:
        raise NotFound("No such use case for you.")
    return use_case


class UseCaseListView(PeopleAPIView):
    @extend_schema(operation_id="use_cases_list", summary="The use cases you may see.",
                   responses={200: UseCaseSerializer(many=True)})
    def get(self, request):
        visible = (selectors.visible_use_cases(user=request.user)
                   .select_related("review_queue", "qa_queue").order_by("slug"))
        return Response(UseCaseSerializer(visible, many=True).data)

    @extend_schema(operation_id="use_cases_create", request=UseCaseSerializer,
                   summary="Set up a use case, at the audit stage (managers; audited). "
                           "reason_codes: [{code, label}]; schemas must be valid JSON Schema.",
                   responses={201: UseCaseSerializer, 400: FIELD_ERRORS, 403: MANAGERS_ONLY})
    def post(self, request):
        values = managers_input(request, UseCaseSerializer, "set up use cases")
        use_case = use_cases.use_case_create(actor=request.user, **values)
        return Response(UseCaseSerializer(use_case).data, status=status.HTTP_201_CREATED)


class UseCaseDetailView(PeopleAPIView):
    @extend_schema(operation_id="use_cases_retrieve", responses={200: UseCaseSerializer,
                                                                 404: NOT_YOURS})
    def get(self, request, slug: str):
        return Response(UseCaseSerializer(_use_case(request, slug)).data)

    @extend_schema(operation_id="use_cases_update", request=UseCaseSerializer(partial=True),
                   summary="Change a use case's settings (managers; audited with before and "
                           "after; its stage moves only with evidence).",
                   responses={200: UseCaseSerializer, 400: FIELD_ERRORS, 403: MANAGERS_ONLY,
                              404: NOT_YOURS})
    def patch(self, request, slug: str):
        use_case = _use_case(request, slug)
        require_manager(request.user, "change use cases")
        data = UseCaseSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        use_case = use_cases.use_case_update(use_case=use_case, actor=request.user,
                                             **data.validated_data)
        return Response(UseCaseSerializer(use_case).data)
