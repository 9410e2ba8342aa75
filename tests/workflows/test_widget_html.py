"""The widgets written in Python (``workflows.widget_html``) are Django's templates' HTML.

Each widget, and each field of the case pages' forms (fresh, filled in and refused),
is rendered by Django's own template renderer and by ``WidgetRenderer``: the two
strings must be equal, byte for byte.
"""

import datetime
from types import SimpleNamespace

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from tests.factories import UserFactory
from workflows.forms import (
    CaseActionForm,
    CaseCommentForm,
    CommentForm,
    PreferencesForm,
    ReasonForm,
    ReassignForm,
    ResolveForm,
)
from workflows.widget_html import WRITERS, widget_renderer

DJANGO = DjangoTemplates()

CHOICES = [("", "No reason code"), ("po_mismatch", "PO <mismatch> & \"quotes\""),
           (3, 3), ("lazy", gettext_lazy("Lazy label"))]
GROUPED = [("Group <A>", [("a1", "A one"), ("a2", "A two")]), ("b", "B alone"),
           ("Group B", [(1, "B one")])]

WIDGETS = [
    (forms.TextInput(), "plain text"),
    (forms.TextInput(attrs={"required": True, "autofocus": True, "disabled": False,
                            "aria-describedby": "x_error x_helptext", "maxlength": 10}),
     'quote " and <tag> & amp'),
    (forms.TextInput(attrs={"placeholder": mark_safe("<b>safe</b>")}), mark_safe("<i>ok</i>")),
    (forms.TextInput(), None),
    (forms.TextInput(), ""),
    (forms.NumberInput(attrs={"step": "any", "min": 0}), 0),
    (forms.NumberInput(), 4094.5),
    (forms.HiddenInput(), 7),
    (forms.EmailInput(), "a@example.com"),
    (forms.URLInput(), "https://example.com/?a=1&b=2"),
    (forms.PasswordInput(render_value=True), "secret"),
    (forms.DateInput(), datetime.date(2026, 12, 4)),
    (forms.DateTimeInput(), datetime.datetime(2026, 12, 4, 9, 30)),
    (forms.TimeInput(), datetime.time(9, 30)),
    (forms.Textarea(attrs={"rows": 3}), "line one\n<script>alert(1)</script> & more"),
    (forms.Textarea(), ""),
    (forms.Textarea(), None),
    (forms.Textarea(attrs={"cols": 20, "required": True}), "\nstarts with a newline"),
    (forms.Select(choices=CHOICES), "po_mismatch"),
    (forms.Select(choices=CHOICES), 3),
    (forms.Select(choices=CHOICES), None),
    (forms.Select(choices=CHOICES, attrs={"disabled": True, "id": "pick"}), ""),
    (forms.Select(choices=GROUPED), "a2"),
    (forms.Select(choices=[]), None),
    (forms.NullBooleanSelect(), True),
    (forms.CheckboxInput(), True),
    (forms.CheckboxInput(), False),
    (forms.CheckboxInput(), None),
    (forms.CheckboxInput(), "on"),
    (forms.CheckboxInput(attrs={"disabled": True}), ""),
]


@pytest.mark.parametrize(("widget", "value"), WIDGETS,
                         ids=[f"{type(w).__name__}-{i}" for i, (w, _) in enumerate(WIDGETS)])
def test_each_plain_widget_renders_as_djangos_template_does(widget, value):
    assert widget.template_name in WRITERS
    attrs = {"id": "id_field", "class": "wide"}
    ours = widget.render("field", value, attrs=attrs, renderer=widget_renderer)
    assert ours == widget.render("field", value, attrs=attrs, renderer=DJANGO)


def test_other_widgets_are_left_to_djangos_templates():
    for widget, value in ((forms.RadioSelect(choices=CHOICES), "po_mismatch"),
                          (forms.SelectMultiple(choices=CHOICES), ["po_mismatch", 3]),
                          (forms.ClearableFileInput(), None)):
        ours = widget.render("field", value, renderer=widget_renderer)
        assert ours == widget.render("field", value, renderer=DJANGO)


def _same_fields(build) -> None:
    """Every field of the form, visible and as hidden, equal under both renderers."""
    ours, django = build(widget_renderer), build(DJANGO)
    assert ours.renderer is widget_renderer
    for name in django.fields:
        assert str(ours[name]) == str(django[name]), name
        assert ours[name].as_hidden() == django[name].as_hidden(), name


CASE = SimpleNamespace(version=12)


def _output_fields() -> dict:
    return {"amount": forms.DecimalField(label="Amount", required=False,
                                         widget=forms.NumberInput(attrs={"step": "any"})),
            "vendor": forms.CharField(label="Vendor", max_length=200),
            "action": forms.ChoiceField(label="Action", choices=[("approve", "Approve"),
                                                                 ("hold", "Hold")]),
            "due": forms.DateField(label="Due", required=False)}


# A resolve form fresh, filled in, and refused (also test_case_panels.py's).
RESOLVE_FORM_DATA = [
    None,
    {"resolve-version": "12", "resolve-verdict": "corrected", "resolve-output__0": "12.5",
     "resolve-output__1": "Vendor \"<x>\"", "resolve-output__2": "hold",
     "resolve-reason_code": "po_mismatch", "resolve-notes": "a note & <b>"},
    {"resolve-version": "nope", "resolve-output__0": "not a number", "resolve-output__1": ""},
]
RESOLVE_FORM_IDS = ["fresh", "filled", "refused"]


def _resolve(renderer, data=None, *, blind=False):
    form = ResolveForm(data, case=CASE, prefix="resolve", renderer=renderer,
                       suggested={"amount": 4094, "vendor": "ACME <GmbH>"},
                       reason_codes=[{"code": "po_mismatch", "label": "PO & vendor"},
                                     {"code": "other"}],
                       output_fields=_output_fields(), blind=blind)
    form.is_valid()  # a bound form shows its errors (aria-invalid) and what was typed
    return form


@pytest.mark.parametrize("data", RESOLVE_FORM_DATA, ids=RESOLVE_FORM_IDS)
@pytest.mark.parametrize("blind", [False, True])
def test_the_resolve_form_renders_as_with_djangos_templates(data, blind):
    _same_fields(lambda renderer: _resolve(renderer, data, blind=blind))


@pytest.mark.parametrize("data", [None, {"escalate-version": "12", "escalate-reason": ""},
                                  {"escalate-version": "12", "escalate-reason": "Why <not>"}])
def test_the_action_forms_render_as_with_djangos_templates(data):
    def reason(renderer):
        form = ReasonForm(data, case=CASE, prefix="escalate", label="Why escalate?",
                          help_text="The next level takes over.", renderer=renderer)
        if data:
            form.is_valid()
        return form

    _same_fields(reason)
    _same_fields(lambda renderer: CaseActionForm(case=CASE, prefix="claim", renderer=renderer))
    _same_fields(lambda renderer: CommentForm(case=CASE, prefix="send_back",
                                              auto_id="id_case4_%s", renderer=renderer))
    _same_fields(lambda renderer: CaseCommentForm(prefix="comment", renderer=renderer))


@pytest.mark.django_db
def test_the_reassign_form_renders_as_with_djangos_templates():
    UserFactory(username="ann", first_name="Ann", last_name="O'Neil <QA>")
    UserFactory(username="bob")
    from django.contrib.auth import get_user_model

    people = get_user_model().objects.order_by("username")
    for data in (None, {"reassign-version": "12", "reassign-to_user": "999"}):
        def reassign(renderer, data=data):
            form = ReassignForm(data, case=CASE, prefix="reassign", candidates=people,
                                renderer=renderer)
            if data:
                form.is_valid()
            return form

        _same_fields(reassign)


@pytest.mark.parametrize("data", [None, {"open_next_after_resolving": "on"}, {}])
def test_home_pages_preferences_render_as_with_djangos_templates(data):
    for initial in (True, False):
        _same_fields(lambda renderer, initial=initial: PreferencesForm(
            data, initial={"open_next_after_resolving": initial}, renderer=renderer))


def test_the_case_pages_forms_use_the_python_widgets():
    assert CaseActionForm(case=CASE).renderer is widget_renderer
    assert PreferencesForm().renderer is widget_renderer
    assert CaseCommentForm().renderer is widget_renderer
