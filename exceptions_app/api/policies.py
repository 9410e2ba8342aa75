"""Policy releases over the API: a use case's versions, drafts, the steps of their life
(propose, send back, approve, activate, roll back), a rule checked alone, and the diff
between two versions. Each write calls the one service of ``services/policies.py``.

Scoped (I8) by ``policy_selectors.policy_use_cases``: a use case out of the caller's
scope is 404, as is a version number it does not have. A step that does not fit the
version's status is 409 with the status; one the caller may not take is 403.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app import policy_selectors, rule_types
from exceptions_app.api.serializers import NamedRowField
from exceptions_app.models import PolicyVersion, RuleAction
from exceptions_app.policy_diff import diff_versions
from exceptions_app.services import policies
from workflows.api.authentication import ThrottledTokenAuthentication
from workflows.models import Queue


class RuleSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    description = serializers.CharField(max_length=300)
    expression = serializers.CharField()
    action = serializers.ChoiceField(choices=RuleAction.choices)
    queue = NamedRowField(slug_field="slug", queryset=Queue.objects.all(), required=False,
                          allow_null=True, help_text="A queue's slug; the use case's by default.")
    priority = serializers.IntegerField(min_value=0, max_value=100, default=50)
    four_eyes = serializers.BooleanField(default=False)


class DraftSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The policy in business language (Markdown).")
    rules = RuleSerializer(many=True, help_text="In order: the first that matches decides.")
    default_action = serializers.ChoiceField(choices=RuleAction.choices,
                                             default=RuleAction.REVIEW)
    default_reason = serializers.CharField(max_length=300, required=False)
    default_priority = serializers.IntegerField(min_value=0, max_value=100, default=50)


class DraftChangeSerializer(DraftSerializer):
    """A draft's change: the fields given replace theirs (``rules`` replaces all)."""

    text = serializers.CharField(required=False)
    rules = RuleSerializer(many=True, required=False)
    default_action = serializers.ChoiceField(choices=RuleAction.choices, required=False)
    default_priority = serializers.IntegerField(min_value=0, max_value=100, required=False)


class PolicyReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, help_text="Why, in a sentence.")


class RuleCheckSerializer(serializers.Serializer):
    expression = serializers.CharField(allow_blank=True)


def version_as_dict(policy: PolicyVersion, *, user, rules: bool = False) -> dict:
    body = {
        "number": policy.number, "status": policy.status, "text": policy.text,
        "default": {"action": policy.default_action, "reason": policy.default_reason,
                    "priority": policy.default_priority},
        "created_by": policy.created_by.get_username(),
        "created_at": policy.created_at,
        "approved_by": policy.approved_by.get_username() if policy.approved_by else None,
        "approved_at": policy.approved_at, "activated_at": policy.activated_at,
        "steps": policy_selectors.steps_for(policy, user=user),
    }
    if rules:
        body["rules"] = [{"position": rule.position, "name": rule.name,
                          "description": rule.description, "expression": rule.expression,
                          "action": rule.action,
                          "queue": rule.queue.slug if rule.queue else None,
                          "priority": rule.priority, "four_eyes": rule.four_eyes}
                         for rule in policy.rules.select_related("queue").order_by("position")]
    return body


def rule_specs(rules: list[dict]) -> list[policies.RuleSpec]:
    return [policies.RuleSpec(**rule) for rule in rules]


class PolicyView(APIView):
    # Token first: an unauthenticated call answers 401 with the Token challenge.
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def use_case(self, slug: str):
        use_case = policy_selectors.policy_use_case(user=self.request.user, slug=slug)
        if use_case is None:
            raise NotFound("No such use case for you.")
        return use_case

    def version(self, slug: str, number: int) -> PolicyVersion:
        policy = policy_selectors.version(use_case=self.use_case(slug), number=number)
        if policy is None:
            raise NotFound(f"The use case has no policy version {number}.")
        return policy

    def conflict(self, exc: policies.PolicyConflict) -> Response:
        current = PolicyVersion.objects.filter(pk=exc.policy.pk).values("status").first()
        return Response({"detail": str(exc), **(current or {})}, status=status.HTTP_409_CONFLICT)


NOT_FOUND = OpenApiResponse(description="No such use case (or version) for you.")


class PolicyListView(PolicyView):
    @extend_schema(operation_id="policy_versions_list",
                   summary="A use case's policy versions, newest first, with the steps you "
                           "may take on each.",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT), 404: NOT_FOUND})
    def get(self, request, slug: str):
        use_case = self.use_case(slug)
        return Response({"use_case": use_case.slug, "versions": [
            version_as_dict(policy, user=request.user)
            for policy in policy_selectors.versions(use_case=use_case)]})

    @extend_schema(operation_id="policy_draft_create", request=DraftSerializer,
                   summary="A new draft, numbered after the latest version; every rule is "
                           "type-checked against the use case's data contract.",
                   responses={201: OpenApiResponse(OpenApiTypes.OBJECT),
                              400: OpenApiResponse(description="Field errors; rules named "
                                                               "by position and column."),
                              403: OpenApiResponse(description="Not Responsible or "
                                                               "Accountable for policy "
                                                               "changes."),
                              404: NOT_FOUND})
    def post(self, request, slug: str):
        use_case = self.use_case(slug)
        draft = DraftSerializer(data=request.data)
        draft.is_valid(raise_exception=True)
        values = dict(draft.validated_data)
        policy = policies.policy_create_draft(use_case=use_case, author=request.user,
                                              rules=rule_specs(values.pop("rules")), **values)
        return Response(version_as_dict(policy, user=request.user, rules=True),
                        status=status.HTTP_201_CREATED)


class PolicyDetailView(PolicyView):
    @extend_schema(operation_id="policy_version_retrieve",
                   summary="One version with its rules and the steps you may take.",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT), 404: NOT_FOUND})
    def get(self, request, slug: str, number: int):
        return Response(version_as_dict(self.version(slug, number), user=request.user,
                                        rules=True))

    @extend_schema(operation_id="policy_draft_update", request=DraftChangeSerializer,
                   summary="Change a draft (only a draft changes: 409 otherwise).",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT),
                              400: OpenApiResponse(description="Field errors."),
                              403: OpenApiResponse(description="You may not draft here."),
                              404: NOT_FOUND,
                              409: OpenApiResponse(description="Not a draft.")})
    def patch(self, request, slug: str, number: int):
        policy = self.version(slug, number)
        change = DraftChangeSerializer(data=request.data, partial=True)
        change.is_valid(raise_exception=True)
        values = dict(change.validated_data)
        if "rules" in values:
            values["rules"] = rule_specs(values["rules"])
        try:
            policy = policies.policy_update_draft(policy=policy, actor=request.user, **values)
        except policies.PolicyConflict as exc:
            return self.conflict(exc)
        return Response(version_as_dict(policy, user=request.user, rules=True))


class PolicyStepView(PolicyView):
    """One step of a version's life: ``step`` names the service."""

    step: str
    with_reason = False

    def post(self, request, slug: str, number: int):
        policy = self.version(slug, number)
        arguments = {}
        if self.with_reason:
            given = PolicyReasonSerializer(data=request.data)
            given.is_valid(raise_exception=True)
            arguments["reason"] = given.validated_data["reason"]
        service = getattr(policies, f"policy_{self.step}")
        try:
            policy = service(policy=policy, actor=request.user, **arguments)
        except policies.PolicyConflict as exc:
            return self.conflict(exc)
        return Response(version_as_dict(policy, user=request.user))


def _step_schema(step: str, summary: str, *, with_reason: bool = False):
    return extend_schema(
        operation_id=f"policy_version_{step}", summary=summary,
        request=PolicyReasonSerializer if with_reason else None,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "The version after the step."),
                   400: OpenApiResponse(description="A reason is missing, or a rule does "
                                                    "not type-check."),
                   403: OpenApiResponse(description="You may not take this step."),
                   404: NOT_FOUND,
                   409: OpenApiResponse(description="The step does not fit the version's "
                                                    "status (given in the body).")})


def step_view(step: str, summary: str, *, with_reason: bool = False):
    def post(self, request, slug: str, number: int):
        return PolicyStepView.post(self, request, slug, number)

    # A function of its own per step: the schema's annotations are set on the function.
    view = type(f"Policy{step.title().replace('_', '')}View", (PolicyStepView,),
                {"step": step, "with_reason": with_reason,
                 "post": _step_schema(step, summary, with_reason=with_reason)(post)})
    return view.as_view()


# (service, what the step does, whether it needs a reason)
STEPS = (
    ("propose", "Submit a draft for the Accountable owner's approval (its rules are "
                "type-checked again).", False),
    ("send_back", "A proposed version back to draft, with the reason (its approver, or its "
                  "author taking it back).", True),
    ("approve", "Approve a proposed version (the Accountable for policy changes, never its "
                "author); from now on it never changes.", False),
    ("activate", "Make an approved version the one that judges decisions; the active one is "
                 "retired in the same transaction.", False),
    ("rollback", "Judge decisions with an earlier version again, in one step, saying why; the "
                 "active one is retired in the same transaction.", True),
)


class PolicyDiffView(PolicyView):
    @extend_schema(
        operation_id="policy_version_diff",
        parameters=[OpenApiParameter("against", int, description="The version to compare "
                                                                 "with; the active one (else "
                                                                 "the previous) by default.")],
        summary="What changed between two versions: the text line by line, the rules "
                "added, removed, changed or moved, and the default.",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), 404: NOT_FOUND})
    def get(self, request, slug: str, number: int):
        policy = self.version(slug, number)
        against = request.query_params.get("against")
        if against is not None:
            if not against.isdigit():
                return Response({"against": ["Give a version number, like 1."]},
                                status=status.HTTP_400_BAD_REQUEST)
            other = self.version(slug, int(against))
        else:
            other = policy_selectors.default_comparison(policy)
            if other is None:
                raise NotFound("There is no other version to compare with.")
        return Response(diff_versions(old=other, new=policy).as_dict())


class RuleCheckView(PolicyView):
    @extend_schema(operation_id="policy_rule_check", request=RuleCheckSerializer,
                   summary="Check one rule expression against the use case's data contract: "
                           "its problems, each with line and column ([] when it can work).",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT), 404: NOT_FOUND})
    def post(self, request, slug: str):
        use_case = self.use_case(slug)
        given = RuleCheckSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        return Response({"problems": rule_types.rule_problems(
            given.validated_data["expression"], use_case=use_case)})
