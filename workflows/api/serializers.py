from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from workflows import hooks, selectors
from workflows.models import (
    Case,
    CaseComment,
    CaseState,
    ConsultRequest,
    Resolution,
    Verdict,
)
from workflows.rich_text import sanitised_html
from workflows.services import comments
from workflows.services.bulk import MAX_SELECTION, BulkAction, Outcome
from workflows.services.transitions import available_transitions, differing_fields


class ResolutionSerializer(serializers.ModelSerializer):
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True,
        help_text="Who approved it (four eyes); null when no approval was needed or yet.")
    verdict = serializers.ChoiceField(
        choices=Verdict.choices, read_only=True, allow_null=True,
        help_text="null in blind review until the case closes: it would tell whether the "
                  "answer matched the suggestion.")
    differing_fields = serializers.ListField(
        child=serializers.CharField(), read_only=True, allow_null=True,
        help_text="The output's fields that differ from the suggested output (null without "
                  "an output, or in blind review until the case closes).")

    class Meta:
        model = Resolution
        fields = ["verdict", "output", "differing_fields", "reason_code", "notes",
                  "resolved_by", "approved_by", "time_spent_seconds", "created_at",
                  "approved_at"]
        read_only_fields = fields


class ConsultSerializer(serializers.ModelSerializer):
    """A question put to a Consulted person on a case, and their answer once given."""

    consultee = serializers.SlugRelatedField(slug_field="username", read_only=True)
    level = serializers.IntegerField(
        source="escalation.level", read_only=True, allow_null=True, default=None,
        help_text="The escalation level that asked; null when asked outside escalation.")

    class Meta:
        model = ConsultRequest
        fields = ["id", "case", "consultee", "question", "required", "answer", "answered_at",
                  "created_at", "level"]
        read_only_fields = fields


class CaseSerializer(serializers.ModelSerializer):
    """A case as the lists show it: no content, only its place in the workflow."""

    queue = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    state = serializers.ChoiceField(choices=CaseState.choices, read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                            allow_null=True,
                                            help_text="Who holds the case; null when nobody.")

    class Meta:
        model = Case
        fields = ["id", "title", "queue", "state", "priority", "requires_four_eyes",
                  "assignee", "escalation_level", "created_at", "first_claimed_at",
                  "response_due_at", "due_at", "lease_expires_at", "closed_at",
                  "time_spent_seconds", "version"]
        read_only_fields = fields

    def to_representation(self, case) -> dict:
        # The hot path (pages of 50, the answer of every transition): DRF would build a
        # field object per field for every request and run it per value; this reads the
        # same attributes directly. The fields above stay the schema, and
        # tests/workflows/test_case_representation.py holds the two renderings equal.
        moment = _moment_renderer()
        assignee = case.assignee
        return {
            "id": case.pk, "title": case.title, "queue": case.queue.slug,
            "state": str(case.state), "priority": case.priority,
            "requires_four_eyes": case.requires_four_eyes,
            "assignee": assignee.username if assignee is not None else None,
            "escalation_level": case.escalation_level,
            "created_at": moment(case.created_at),
            "first_claimed_at": moment(case.first_claimed_at),
            "response_due_at": moment(case.response_due_at), "due_at": moment(case.due_at),
            "lease_expires_at": moment(case.lease_expires_at),
            "closed_at": moment(case.closed_at),
            "time_spent_seconds": case.time_spent_seconds, "version": case.version,
        }


def case_rows(rows) -> list[dict]:
    """The case list's rows, each read as values (``CASE_ROW_VALUES`` of the list's
    view: the row's columns, ``queue__slug`` and ``assignee__username``), rendered as
    ``CaseSerializer`` renders a case (tests/workflows/test_case_representation.py holds
    the two equal): no case, queue or person built per row only to be read once."""
    moment = _moment_renderer()
    return [{
        "id": row["id"], "title": row["title"], "queue": row["queue__slug"],
        "state": str(row["state"]), "priority": row["priority"],
        "requires_four_eyes": row["requires_four_eyes"],
        "assignee": row["assignee__username"],
        "escalation_level": row["escalation_level"],
        "created_at": moment(row["created_at"]),
        "first_claimed_at": moment(row["first_claimed_at"]),
        "response_due_at": moment(row["response_due_at"]), "due_at": moment(row["due_at"]),
        "lease_expires_at": moment(row["lease_expires_at"]),
        "closed_at": moment(row["closed_at"]),
        "time_spent_seconds": row["time_spent_seconds"], "version": row["version"],
    } for row in rows]


def _moment_renderer():
    """Render moments as DRF's ``DateTimeField`` does by default (ISO 8601 in the
    current time zone, UTC as ``Z``; None stays None), the zone looked up once."""
    if api_settings.DATETIME_FORMAT != ISO_8601:
        return serializers.DateTimeField().to_representation
    zone = timezone.get_current_timezone()

    def render(value):
        if value is None:
            return None
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return render


class CaseDetailSerializer(CaseSerializer):
    """One case with what a reviewer decides from.

    Blind review: while the case is open, whoever may answer it gets
    ``suggestion: null`` (no suggested output, confidence, explanation or reasons), so
    the verdict measures the suggestion instead of echoing it
    (``selectors.hides_suggestion``: a manager who is not answering sees it). Once
    closed, everyone sees it.
    """

    first_reviewer = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True,
        help_text="Who resolved it first (four eyes: not its approver); null until then.")
    blind = serializers.BooleanField(source="queue.blind", read_only=True)
    resolution = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    suggestion = serializers.SerializerMethodField()
    reason_codes = serializers.SerializerMethodField()
    output_schema = serializers.SerializerMethodField()
    available_transitions = serializers.SerializerMethodField()
    consults = ConsultSerializer(
        many=True, read_only=True,
        help_text="Questions put to the Consulted on this case, oldest first, with their "
                  "answers once given.")

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "first_reviewer", "blind", "resolution",
                  "subject", "suggestion", "reason_codes", "output_schema",
                  "available_transitions", "consults"]
        read_only_fields = fields

    def to_representation(self, case) -> dict:
        data = super().to_representation(case)
        first_reviewer = case.first_reviewer
        data.update({
            "first_reviewer": first_reviewer.username if first_reviewer is not None else None,
            "blind": case.queue.blind,
            "resolution": self.get_resolution(case),
            "subject": self.get_subject(case),
            "suggestion": self.get_suggestion(case),
            "reason_codes": self.get_reason_codes(case),
            "output_schema": self.get_output_schema(case),
            "available_transitions": self.get_available_transitions(case),
            "consults": _CONSULTS.to_representation(_consults_of(case)),
        })
        return data

    def _content(self, case) -> hooks.CaseContent:
        cache = self.context.setdefault("_content", {})
        if case.pk not in cache:
            cache[case.pk] = hooks.case_content(case=case)
        return cache[case.pk]

    def _user(self):
        request = self.context.get("request")
        return request.user if request is not None else None

    @extend_schema_field(ResolutionSerializer(allow_null=True,
                                              help_text="null until the case is resolved."))
    def get_resolution(self, case):
        try:
            resolution = case.resolution
        except Resolution.DoesNotExist:
            return None
        data = _RESOLUTION.to_representation(resolution)
        if selectors.hides_suggestion(case=case, user=self._user()):
            data["verdict"] = None
            return data
        suggested = self._content(case).suggestion.get("output")
        if isinstance(suggested, dict) and isinstance(resolution.output, dict):
            data["differing_fields"] = differing_fields(suggested=suggested,
                                                        answer=resolution.output)
        return data

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_subject(self, case):
        return self._content(case).subject

    @extend_schema_field({"type": "object", "nullable": True, "description":
                          "The machine's proposal; null in blind review until the case closes."})
    def get_suggestion(self, case):
        if selectors.hides_suggestion(case=case, user=self._user()):
            return None
        return self._content(case).suggestion

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_reason_codes(self, case):
        return self._content(case).reason_codes

    @extend_schema_field({"type": "object", "nullable": True})
    def get_output_schema(self, case):
        return self._content(case).output_schema

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_available_transitions(self, case) -> list[str]:
        user = self._user()
        return available_transitions(case=case, user=user) if user is not None else []


def _consults_of(case) -> list[ConsultRequest]:
    """The case's consults, oldest first, with whom and which level asked; none without
    a query when the case was read with ``has_consults`` False (the API's detail and
    ``transitions.with_answer_facts``)."""
    if getattr(case, "has_consults", True) is False:
        return []
    if "consults" in getattr(case, "_prefetched_objects_cache", {}):
        return list(case.consults.all())
    return list(case.consults.select_related("consultee", "escalation"))


# Built once, their fields with them; they read no request.
_CONSULTS = ConsultSerializer(many=True)
_RESOLUTION = ResolutionSerializer()


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        required=False, min_value=1,
        help_text="The case version you saw; if the case changed since, the answer is 409.")


class ClaimNextSerializer(serializers.Serializer):
    queue = serializers.SlugField(required=False,
                                  help_text="Only this queue; else any queue you work.")


class ResolveSerializer(VersionSerializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    output = serializers.DictField(
        required=False, allow_null=True, default=None,
        help_text="The corrected output (verdict 'corrected' only); checked against the "
                  "use case's output schema. In blind review, 'corrected' with your own "
                  "output is your answer: it is compared with the suggestion after submission, "
                  "and the verdict becomes 'accepted' when they agree field by field.")
    reason_code = serializers.CharField(required=False, allow_blank=True, default="",
                                        max_length=100)
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonSerializer(VersionSerializer):
    reason = serializers.CharField()


class CommentSerializer(VersionSerializer):
    comment = serializers.CharField()


class CaseCommentSerializer(serializers.ModelSerializer):
    """A comment on a case: its Markdown, and the same as sanitised HTML."""

    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    mentioned = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True,
        help_text="The people its @mentions reached (each was notified).")
    body_html = serializers.SerializerMethodField(
        help_text="The body rendered and sanitised (links, lists, tables, emphasis).")

    class Meta:
        model = CaseComment
        fields = ["id", "case", "author", "body", "body_html", "mentioned", "created_at"]
        read_only_fields = fields

    def get_body_html(self, comment) -> str:
        return sanitised_html(comment.body, heading_offset=2)


class NewCommentSerializer(serializers.Serializer):
    body = serializers.CharField(
        max_length=comments.MAX_LENGTH, trim_whitespace=True,
        help_text="Markdown. @username mentions notify people who may see the case; a "
                  "mention of anyone else is refused.")


class ReassignSerializer(VersionSerializer):
    to_user = serializers.CharField(help_text="Username of the person who gets the case.")


class ProblemSerializer(serializers.Serializer):
    """A refusal: what happened, and for 409 the case's current state and version (or,
    for a claim refused because the caller is away, since when)."""

    detail = serializers.CharField()
    state = serializers.ChoiceField(choices=CaseState.choices, required=False)
    version = serializers.IntegerField(required=False)
    away_since = serializers.DateTimeField(required=False, allow_null=True)


class PrioritySerializer(VersionSerializer):
    priority = serializers.IntegerField(
        min_value=0, max_value=32767,
        help_text="Higher is more urgent; the case's SLA targets follow the new priority.")


class BulkActionSerializer(serializers.Serializer):
    """A manager's action on several cases at once (``services.bulk``)."""

    action = serializers.ChoiceField(choices=BulkAction.choices)
    cases = serializers.ListField(
        child=serializers.IntegerField(min_value=1), allow_empty=False,
        help_text=f"Ids of the cases, at most {MAX_SELECTION}; each is answered for itself.")
    to_user = serializers.CharField(required=False, help_text="reassign: the username of "
                                    "the person who gets the cases.")
    priority = serializers.IntegerField(required=False, min_value=0, max_value=32767,
                                        help_text="priority: the new priority.")
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="cancel: why (required); release: optional.")


class BulkCaseResultSerializer(serializers.Serializer):
    case = serializers.IntegerField(source="case_id")
    result = serializers.ChoiceField(source="outcome", choices=Outcome.choices, help_text=(
        "done; conflict: the case's state or version did not allow it now; refused: not "
        "allowed for this case (e.g. the person does not work its queue), or no such case."))
    detail = serializers.CharField(help_text="Why, in words, when not done.")
    state = serializers.SerializerMethodField(help_text="The case's state after the action.")
    version = serializers.SerializerMethodField()

    def get_state(self, result) -> str | None:
        return result.case.state if result.case is not None else None

    def get_version(self, result) -> int | None:
        return result.case.version if result.case is not None else None


class BulkResultSerializer(serializers.Serializer):
    results = BulkCaseResultSerializer(many=True, help_text="One per case, in the order sent.")
