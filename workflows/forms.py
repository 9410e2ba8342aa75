"""Forms of the case pages.

They parse what a person typed into the arguments of a service call; the services
decide whether the action is allowed and whether the values are acceptable, and
their field errors come back onto these forms (``add_service_errors``).
"""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from workflows.models import Verdict
from workflows.presentation import field_label
from workflows.widget_html import widget_renderer


class CaseActionForm(forms.Form):
    """Every action on a case carries the version the page showed (I4: a stale page loses)."""

    default_renderer = widget_renderer  # the case pages' fields, without template work
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, case, **kwargs):
        self.case = case
        kwargs.setdefault("initial", {}).setdefault("version", case.version)
        super().__init__(*args, **kwargs)

    def focus_first_error(self) -> None:
        """Put the cursor in the first field to fix when the page comes back."""
        for name, field in self.fields.items():
            if name in self.errors:
                field.widget.attrs["autofocus"] = True
                return

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's ValidationError next to the fields it names."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for name, messages in error.message_dict.items():
            field = name
            if name not in self.fields or name == "version":
                field, messages = None, [_prefixed(name, message) for message in messages]
            for message in messages:
                self.add_error(field, message)


def _prefixed(name: str, message: str) -> str:
    if name in ("", NON_FIELD_ERRORS, "__all__"):
        return message
    return f"{field_label(name)}: {message}"


class ReasonForm(CaseActionForm):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, label: str = "Reason", help_text: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].label = label
        self.fields["reason"].help_text = help_text


class CommentForm(CaseActionForm):
    comment = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
        label="What should change?",
        help_text="The first reviewer sees this when the case comes back to them.")


class PreferencesForm(forms.Form):
    default_renderer = widget_renderer
    open_next_after_resolving = forms.BooleanField(
        required=False, label="After resolving, open the next case",
        help_text="The most urgent case waiting in your queues is claimed for you.")


class CaseCommentForm(forms.Form):
    """A comment on the case: not an action, so it carries no version (a comment on a
    case that changed meanwhile is still the comment its author meant)."""

    default_renderer = widget_renderer
    body = forms.CharField(
        max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), label="Add a comment",
        help_text="Markdown works (**bold**, lists, links). Mention someone who can see "
                  "this case with @username to notify them.")


class ReassignForm(CaseActionForm):
    to_user = forms.ModelChoiceField(queryset=get_user_model().objects.none(),
                                     label="Reassign to", empty_label="Choose a person")

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_user"].queryset = candidates
        self.fields["to_user"].label_from_instance = (
            lambda user: user.display_name)


class ResolveForm(CaseActionForm):
    """Accept the suggested output, correct it field by field, or reject it.

    ``output_fields`` are the corrected output's fields ({output key: form field}), typed
    by the domain that knows the output's shape (``hooks.CasePresentation``);
    ``suggested`` is the output they correct.
    """

    verdict = forms.ChoiceField(choices=Verdict.choices, widget=forms.RadioSelect)
    reason_code = forms.ChoiceField(required=False, label="Reason code")
    notes = forms.CharField(required=False, max_length=5000,
                            widget=forms.Textarea(attrs={"rows": 3}))

    OUTPUT_PREFIX = "output__"

    def __init__(self, *args, suggested: dict, reason_codes: list, output_fields: dict,
                 blind: bool = False, suggestion_name: str = "the suggested output",
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.blind = blind
        if blind:
            # Blind review: the reviewer cannot accept what they do not see; they give
            # their own answer (compared with the suggestion after submission) or reject.
            self.fields["verdict"].choices = [(Verdict.CORRECTED, "Answer"),
                                              (Verdict.REJECTED, "Reject")]
            self.fields["verdict"].initial = Verdict.CORRECTED
            self.fields["reason_code"].help_text = (
                f"Optional for an answer: it is compared with {suggestion_name} after you "
                "submit. Needed when you reject.")
        else:
            self.fields["verdict"].choices = [(Verdict.ACCEPTED, "Accept"),
                                              (Verdict.CORRECTED, "Correct"),
                                              (Verdict.REJECTED, "Reject")]
        self.fields["reason_code"].choices = [("", "No reason code")] + [
            (item["code"], item.get("label") or item["code"]) for item in reason_codes]
        self.output_fields: dict[str, str] = {}  # output key -> form field name
        for index, (key, field) in enumerate(output_fields.items()):
            name = f"{self.OUTPUT_PREFIX}{index}"
            self.fields[name] = field
            self.output_fields[key] = name
        # The page's order, so the cursor goes to the first field to fix on the page.
        self.order_fields(["verdict", *self.output_fields.values(), "reason_code", "notes"])
        self.suggested = suggested

    def add_service_errors(self, error: ValidationError) -> None:
        """The service names a correction's fields ``output.<key>`` (deeper problems
        ``output.<key>.<index or key>...``): each goes on its key's input. Errors about
        the output as a whole, and any on a field the form has no input for, go on top.
        A field that already has the form's own error (a number that is not one) keeps
        that one: the service only saw the field as missing."""
        if not hasattr(error, "error_dict"):
            super().add_service_errors(error)
            return
        rest: dict[str, list] = {}
        for name, items in error.error_dict.items():
            key = name.removeprefix("output.").split(".")[0] if name.startswith("output.") else None
            field = self.output_fields.get(key) if key is not None else None
            if name == "output" or (key is not None and field is None):
                for item in items:
                    self.add_error(None, item)
            elif field is not None:
                if field not in self.errors:
                    for item in items:
                        self.add_error(field, item)
            elif name not in self.errors:
                rest[name] = items
        if rest:
            super().add_service_errors(ValidationError(rest))

    def readable_resolution(self) -> dict | None:
        """What the person submitted that the form could read, for the service to judge
        the rest of (so a refused form shows every problem at once, not in rounds):
        ``{"verdict", "output", "reason_code"}``, without the output fields the form
        refused. None when the verdict itself was refused."""
        data = getattr(self, "cleaned_data", {})
        verdict = data.get("verdict")
        if verdict is None:
            return None
        return {"verdict": verdict, "output": self._output(verdict, data),
                "reason_code": data.get("reason_code", "")}

    @property
    def verdict_options(self) -> list[dict]:
        """The verdict radios with their keyboard shortcut and where focus goes next."""
        first_output = self.correction_fields[0].auto_id if self.output_fields else None
        shortcut = {Verdict.ACCEPTED: ("a", "resolve-submit"),
                    Verdict.CORRECTED: ("c", first_output),
                    Verdict.REJECTED: ("r", self["reason_code"].auto_id)}
        current = self["verdict"].value()
        return [{"value": value, "label": label, "key": shortcut[value][0],
                 "focus": shortcut[value][1], "checked": current == value,
                 "reject": value == Verdict.REJECTED}
                for value, label in self.fields["verdict"].choices]

    @property
    def correction_fields(self):
        return [self[name] for name in self.output_fields.values()]

    def clean(self):
        cleaned = super().clean()
        if "verdict" in cleaned:
            cleaned["output"] = self._output(cleaned["verdict"], cleaned)
        return cleaned

    def _output(self, verdict: str, cleaned: dict) -> dict | None:
        if verdict == Verdict.ACCEPTED:
            return self.suggested
        if verdict != Verdict.CORRECTED:
            return None
        output = {}
        for key, name in self.output_fields.items():
            if name in self.errors:
                continue  # refused by the form: its own error says why
            value = cleaned.get(name)
            if value is None and key not in self.suggested:
                continue  # an optional field the suggestion left out, still empty
            output[key] = value
        return output


class NextCaseForm(forms.Form):
    queue = forms.SlugField(required=False)


class CaseIdsField(forms.Field):
    """Ticked cases by id; the service judges each (out of scope, closed...)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        try:
            return [int(item) for item in value or []]
        except (TypeError, ValueError):
            raise ValidationError("Tick cases on the list to act on.") from None


class BulkActionForm(forms.Form):
    """A manager's action on the cases ticked on the case list (``services.bulk``)."""

    action = forms.ChoiceField(label="Action", choices=())
    cases = CaseIdsField(required=False)
    to_user = forms.ModelChoiceField(label="Give to", required=False, queryset=None,
                                     empty_label="Choose a person",
                                     help_text="Cases of queues this person does not work "
                                               "are refused, each named.")
    priority = forms.IntegerField(label="New priority", required=False, min_value=0,
                                  max_value=32767, help_text="Higher is more urgent.")
    reason = forms.CharField(label="Reason", required=False, max_length=2000,
                             help_text="Needed to cancel; kept in each case's timeline.")

    def __init__(self, *args, actions, people, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = actions
        self.fields["to_user"].queryset = people
        self.fields["to_user"].label_from_instance = lambda user: user.picker_label

    def add_service_errors(self, error: ValidationError) -> None:
        for name, messages in error.message_dict.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
