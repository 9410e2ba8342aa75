"""The onboarding pages' forms: AI systems, their keys and secret, and use cases.

The forms only turn what a person typed into values (reason codes from "code: label"
lines, schemas from JSON, hosts from lines); the services check and save them, and
their refusals are shown beside the field they name (``add_service_errors``).
"""

import json

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from exceptions_app.models import UseCase
from workflows.models import Queue


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """A service's refusal, each message beside the field it names (else the form's)."""
    if hasattr(error, "error_dict"):
        for name, messages in error.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


class PersonChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.picker_label


class UseCaseChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name} ({obj.slug})"


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class AiSystemForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="What people call it, e.g. "
                                                     "\"Invoice extractor\".")
    slug = forms.SlugField(max_length=50, help_text="Its short name in the API and the audit "
                                                    "trail, e.g. invoice-extractor. Fixed once "
                                                    "created.")
    owner = PersonChoice(queryset=get_user_model().objects.none(),
                         help_text="The person answerable for the system and its keys.")
    use_cases = UseCaseChoices(
        queryset=UseCase.objects.none(), required=False, widget=forms.CheckboxSelectMultiple,
        label="Use cases it may post to")
    callback_url = forms.CharField(
        max_length=200, required=False, label="Callback URL",
        help_text="Where resolutions are sent, signed (https). Empty: it pulls them from "
                  "GET /api/v1/resolutions/.")
    document_hosts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False,
        label="Allowed document hosts",
        help_text="One host name per line, e.g. docs.example.com: the only hosts its "
                  "decisions' document URLs may name.")
    is_active = forms.BooleanField(required=False, initial=True, label="May post decisions")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        User = get_user_model()
        self.fields["owner"].queryset = User.objects.filter(is_active=True).order_by(
            User.USERNAME_FIELD)
        self.fields["use_cases"].queryset = UseCase.objects.order_by("name")
        if editing:
            del self.fields["slug"]

    def clean_document_hosts(self) -> list[str]:
        return _lines(self.cleaned_data["document_hosts"])

    def values(self) -> dict:
        values = dict(self.cleaned_data)
        values["use_cases"] = list(values["use_cases"])
        return values


class IssueKeyForm(forms.Form):
    name = forms.CharField(max_length=50, label="What the key is for",
                           help_text="e.g. \"production\" or \"staging\"; shown in the key "
                                     "list and the audit trail.")


class RotateSecretForm(forms.Form):
    overlap_hours = forms.FloatField(
        min_value=0, max_value=24 * 14, initial=settings.WEBHOOK_SECRET_OVERLAP_HOURS,
        label="Hours the old secret still signs",
        help_text="Every webhook carries both signatures meanwhile, so the receiver can "
                  "switch to the new secret at any moment in them.")


class JsonSchemaField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 10, "class": "mono", "spellcheck": "false"})

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not JSON: {exc.msg} at line {exc.lineno}, column "
                                  f"{exc.colno}.") from exc
        if not isinstance(schema, dict):
            raise ValidationError("A JSON Schema is an object: { \"type\": \"object\", ... }.")
        return schema

    def prepare_value(self, value):
        if isinstance(value, dict):
            return json.dumps(value, indent=2)
        return value


class ReasonCodesField(forms.CharField):
    """One reason code a line, ``code: label``; the label is what reviewers pick."""

    widget = forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"})

    def to_python(self, value):
        codes, problems = [], []
        for number, line in enumerate((super().to_python(value) or "").splitlines(), start=1):
            if not line.strip():
                continue
            code, colon, label = line.partition(":")
            if not colon or not code.strip() or not label.strip():
                problems.append(f"Line {number} ({line.strip()!r}): write it as "
                                f"\"code: label\", e.g. \"po-mismatch: The amount does not "
                                f"match the PO\".")
                continue
            codes.append({"code": code.strip(), "label": label.strip()})
        if problems:
            raise ValidationError(problems)
        return codes

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(f"{item.get('code')}: {item.get('label', '')}" for item in value)
        return value


class FieldPathsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"})

    def to_python(self, value):
        return _lines(super().to_python(value))

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value


class UseCaseForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=50, help_text="Its name in the API (\"use_case\" of a "
                                                    "decision). Fixed once created.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    review_queue = forms.ModelChoiceField(queryset=Queue.objects.none(),
                                          help_text="Where its decisions go for review.")
    qa_queue = forms.ModelChoiceField(queryset=Queue.objects.none(), required=False,
                                      label="QA queue",
                                      help_text="Where passed decisions are sampled for QA "
                                                "(best a blind queue). Empty: none sampled.")
    automate_qa_rate = forms.FloatField(min_value=0, max_value=1, label="QA rate at automate",
                                        help_text="Share of passed decisions sampled, 0 to 1 "
                                                  "(0.1 is 10%).")
    optimize_qa_rate = forms.FloatField(min_value=0, max_value=1, label="QA rate at optimize")
    reason_codes = ReasonCodesField(
        required=False, help_text="One a line, \"code: label\", e.g. \"wrong-amount: The AI "
                                  "read the amount wrong\". Reviewers pick the label; the API "
                                  "and labelled data carry the code.")
    summary_fields = FieldPathsField(
        required=False, help_text="One a line, the figures lists show for each case, e.g. "
                                  "input.vendor and output.amount.")
    input_schema = JsonSchemaField(required=False, label="Input contract (JSON Schema)",
                                   help_text="What the AI system must post as input. Empty: "
                                             "anything.")
    output_schema = JsonSchemaField(required=False, label="Output contract (JSON Schema)",
                                    help_text="What it posts as output, and what reviewers' "
                                              "corrections must satisfy.")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("review_queue", "qa_queue"):
            self.fields[name].queryset = Queue.objects.order_by("name")
        if editing:
            del self.fields["slug"]

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if slug == "new":
            raise ValidationError("\"new\" is taken by the page that creates use cases; "
                                  "choose another.")
        return slug
