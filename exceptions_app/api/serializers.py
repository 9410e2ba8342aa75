import codecs
import re

from django.conf import settings
from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from exceptions_app.contracts import json_value_problem
from exceptions_app.models import Decision, Route, Stage
from exceptions_app.services import callbacks
from workflows.api import codec
from workflows.models import Verdict


class IntakeJSONParser(codec.JSONParser):
    """The API's JSON parser, but what orjson does not read is read as it always was
    here (``NaN`` and lone surrogates too, for the field checks to refuse by name), and
    a hostile nesting depth is a 400, not a RecursionError."""

    def parse_slowly(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(codecs.getreader(encoding)(stream))
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class NamedRowField(serializers.SlugRelatedField):
    """A row named by its slug or username, as ``SlugRelatedField`` reads it; a name with
    a NUL character, which PostgreSQL's text cannot hold, is refused as a CharField
    refuses it instead of failing the lookup's query."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            raise serializers.ValidationError(ProhibitNullCharactersValidator.message)
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JsonObjectField(serializers.Field):
    """A JSON object that PostgreSQL's jsonb and the CEL rules can both take."""

    default_error_messages = {
        "not_an_object": "Expected a JSON object but got {kind}.",
        "unstorable": "{problem}",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_an_object", kind=type(data).__name__)
        if problem := json_value_problem(data):
            self.fail("unstorable", problem=problem)
        return data

    def to_representation(self, value):
        return value


def _json_kind(value) -> str:
    """How a JSON value reads to the developer who sent it."""
    if value is None:
        return "null"
    if type(value) is bool:
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, str):
        return f"the string {json.dumps(value[:40])}"
    return {dict: "an object", list: "an array"}.get(type(value), type(value).__name__)


class JsonNumberField(serializers.FloatField):
    """A JSON number, and only that: DRF's FloatField would also take ``true`` (as 1.0)
    and ``"0.95"``, which a client sending them almost certainly did not mean."""

    default_error_messages = {
        "not_a_number": "Must be a JSON number from 0 to 1, such as 0.82, not {kind}.",
        "null": "Must be a JSON number from 0 to 1, such as 0.82, not null.",
    }

    def to_internal_value(self, data):
        if type(data) is bool or not isinstance(data, int | float):
            self.fail("not_a_number", kind=_json_kind(data))
        return super().to_internal_value(data)


class DecisionInSerializer(serializers.Serializer):
    use_case = serializers.SlugField(max_length=50)
    external_id = serializers.CharField(max_length=200)
    model_version = serializers.CharField(max_length=200)
    confidence = JsonNumberField(min_value=0.0, max_value=1.0)
    input = JsonObjectField()
    output = JsonObjectField()
    explanation = serializers.CharField(required=False, allow_blank=True, default="")
    meta = JsonObjectField(required=False, default=dict)


class ParsedJsonField(serializers.JSONField):
    """Any JSON value, as the parser read it: ``JSONField`` would write each one out
    again to prove it can be (a parsed body always can), 20 µs an item of a batch."""

    def to_internal_value(self, data):
        return data


class BatchInSerializer(serializers.Serializer):
    # Items are checked one by one in the view, so one bad item fails only itself.
    decisions = serializers.ListField(child=ParsedJsonField(), allow_empty=False,
                                      max_length=settings.BATCH_MAX_DECISIONS)


class ReasonSerializer(serializers.Serializer):
    rule = serializers.CharField(allow_null=True)
    action = serializers.CharField()
    text = serializers.CharField()


class DecisionCaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    queue = serializers.CharField(source="queue.slug", read_only=True)  # typed for OpenAPI
    priority = serializers.IntegerField()
    due_at = serializers.DateTimeField()


class DecisionResolutionSerializer(serializers.Serializer):
    """A resolution as its AI system is told of it: the webhook's ``data``, the feed's
    items and a resolved decision's ``resolution`` alike (``callbacks.resolution_data``)."""

    decision_id = serializers.IntegerField()
    external_id = serializers.CharField()
    use_case = serializers.CharField()
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    output = serializers.JSONField(allow_null=True,
                                   help_text="The final output: the AI's when accepted, the "
                                             "correction when corrected, null when rejected.")
    reason_code = serializers.CharField(allow_blank=True)
    notes = serializers.CharField(allow_blank=True)
    resolved_at = serializers.DateTimeField()
    reviewer = serializers.CharField()
    approver = serializers.CharField(allow_null=True)
    position = serializers.IntegerField(help_text="Its place in the resolution feed.")

    def to_representation(self, decision):
        """The declared fields, written out (a feed page holds up to 500):
        ``test_a_feed_item_says_what_the_webhook_says`` holds the two to the same."""
        return self.represent(callbacks.resolution_data(decision, decision.case.resolution))

    @staticmethod
    def represent(data: dict) -> dict:
        """``callbacks.resolution_data``'s dict (or a feed item) as the API writes it."""
        data["resolved_at"] = _DATETIME.to_representation(data["resolved_at"])
        return data


class DecisionOutSerializer(serializers.ModelSerializer):
    use_case = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    policy_version = serializers.IntegerField(source="policy_version.number")
    stage = serializers.ChoiceField(choices=Stage.choices)
    route = serializers.ChoiceField(choices=Route.choices)
    reasons = ReasonSerializer(many=True)
    case = serializers.SerializerMethodField()
    resolution = serializers.SerializerMethodField()

    class Meta:
        model = Decision
        fields = ["id", "use_case", "external_id", "model_version", "confidence", "input",
                  "output", "explanation", "meta", "received_at", "policy_version", "stage",
                  "route", "reasons", "case", "withdrawn_at", "resolution"]

    def get_case(self, decision) -> DecisionCaseSerializer(allow_null=True):
        # QA samples are reviewed behind the scenes; the AI system sees its route only.
        if decision.route != Route.REVIEW or decision.case is None:
            return None
        return DecisionCaseSerializer(decision.case).data

    def get_resolution(self, decision) -> DecisionResolutionSerializer(allow_null=True):
        # Resolved decisions only: a new one (every intake answer) costs no query.
        if decision.feed_position is None:
            return None
        return DecisionResolutionSerializer(decision).data

    def to_representation(self, decision):
        """The declared fields' output, written out: a batch answers up to 1000 decisions,
        and DRF's per-field machinery would cost more than judging them.
        ``test_fast_representation_matches_the_declared_fields`` keeps the two equal.

        With ``many=True`` one instance writes every decision: the instants a batch
        shares (when it was received, its cases' due times) are written once."""
        case = decision.case if decision.route == Route.REVIEW else None
        datetime = self._datetime
        return {
            "id": decision.pk,
            "use_case": decision.use_case.slug,
            "external_id": decision.external_id,
            "model_version": decision.model_version,
            "confidence": float(decision.confidence),
            "input": decision.input,
            "output": decision.output,
            "explanation": decision.explanation,
            "meta": decision.meta,
            "received_at": datetime(decision.received_at),
            "policy_version": decision.policy_version.number,
            "stage": decision.stage,
            "route": decision.route,
            "reasons": [{"rule": None if reason["rule"] is None else str(reason["rule"]),
                         "action": str(reason["action"]), "text": str(reason["text"])}
                        for reason in decision.reasons],
            "case": None if case is None else {
                "id": case.pk, "state": case.state, "queue": case.queue.slug,
                "priority": case.priority, "due_at": datetime(case.due_at)},
            "withdrawn_at": datetime(decision.withdrawn_at),
            "resolution": self.get_resolution(decision),
        }

    def _datetime(self, value):
        if value is None:
            return None
        written = self.__dict__.setdefault("_written_datetimes", {})
        if value not in written:
            written[value] = _DATETIME.to_representation(value)
        return written[value]


_DATETIME = serializers.DateTimeField()
_DECISION_IN = DecisionInSerializer()


def validate_decisions(items: list) -> list[tuple[dict | None, dict | None]]:
    """Each posted item's validated data, or its field errors, in order.

    An item whose every field is plainly what ``DecisionInSerializer`` takes unchanged
    is taken as it is (``_plainly_valid``); any other goes through the serializer, which
    words the errors. One serializer checks them all: DRF deep-copies a serializer's
    fields for every instance, which costs more than the checks themselves. Its fields
    keep no state between validations, as DRF's own ListSerializer relies on when it
    reuses its child for every item.
    """
    checked = []
    for item in items:
        if (plain := _plainly_valid(item)) is not None:
            checked.append((plain, None))
            continue
        try:
            checked.append((_DECISION_IN.run_validation(item), None))
        except serializers.ValidationError as exc:
            checked.append((None, serializers.as_serializer_error(exc)))
    return checked


_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,50}")


def _plain_text(value, max_length: int, *, allow_blank: bool = False) -> bool:
    """Whether ``CharField(max_length=...)`` takes ``value`` unchanged: text without
    surrounding whitespace, NUL or (being ASCII) surrogates. Other text may be valid
    too; the serializer decides."""
    return (type(value) is str and len(value) <= max_length and value.isascii()
            and (bool(value) or allow_blank) and value == value.strip() and "\x00" not in value)


def _plain_object(value) -> bool:
    return type(value) is dict and json_value_problem(value) is None


def _plainly_valid(item) -> dict | None:
    """What ``DecisionInSerializer`` would answer for ``item`` if it plainly passes every
    check, at a fifth of the cost; None if in any doubt (the serializer then decides).
    ``test_plain_items_are_validated_as_the_serializer_does`` keeps the two equal."""
    if type(item) is not dict:
        return None
    confidence = item.get("confidence")
    if not (type(item.get("use_case")) is str and _SLUG.fullmatch(item["use_case"])
            and _plain_text(item.get("external_id"), 200)
            and _plain_text(item.get("model_version"), 200)
            and type(confidence) in (float, int) and 0.0 <= confidence <= 1.0
            and _plain_object(item.get("input")) and _plain_object(item.get("output"))
            and ("explanation" not in item
                 or _plain_text(item["explanation"], 10**9, allow_blank=True))
            and ("meta" not in item or _plain_object(item["meta"]))):
        return None
    return {"use_case": item["use_case"], "external_id": item["external_id"],
            "model_version": item["model_version"], "confidence": float(confidence),
            "input": item["input"], "output": item["output"],
            "explanation": item.get("explanation", ""), "meta": item.get("meta", {})}


class BatchItemSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status this item alone would get.")
    decision = DecisionOutSerializer(required=False)
    errors = serializers.DictField(required=False)


class BatchOutSerializer(serializers.Serializer):
    results = BatchItemSerializer(many=True)
