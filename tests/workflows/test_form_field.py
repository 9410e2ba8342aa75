"""A form field written by the ``form_field`` tag is what ``forms/_field.html`` writes:
every field of the case page's forms, fresh, filled in and refused, with and without
the required mark, byte for byte."""

import pytest
from django.template import Context, Template
from django.template.loader import get_template

from tests.workflows.test_widget_html import CASE, _resolve
from workflows.forms import CaseCommentForm, CommentForm, ReasonForm
from workflows.templatetags.casework import form_field

INCLUDED = get_template("forms/_field.html")
BY_TAG = Template("{% load casework %}{% form_field field %}")


def forms_of_the_case_page(data):
    reason = ReasonForm(data and {"escalate-version": "12", "escalate-reason": data.get(
        "reason", "")}, case=CASE, prefix="escalate", label="Why <escalate>?",
        help_text="The next level & the one after.")
    comment = CaseCommentForm(data and {"comment-body": ""}, prefix="comment")
    send_back = CommentForm(data and {"send_back-version": "12"}, case=CASE,
                            prefix="send_back", auto_id="id_case4_%s")
    for form in (reason, comment, send_back):
        if data is not None:
            form.is_valid()
    return [_resolve(None, data and data.get("resolve"), blind=blind)
            for blind in (False, True)] + [reason, comment, send_back]


@pytest.mark.parametrize("data", [
    None,
    {"reason": "Why <not>", "resolve": {
        "resolve-version": "12", "resolve-verdict": "corrected", "resolve-output__0": "12.5",
        "resolve-output__1": "Vendor \"<x>\"", "resolve-output__2": "hold",
        "resolve-reason_code": "po_mismatch", "resolve-notes": "a note & <b>"}},
    {"resolve": {"resolve-version": "nope", "resolve-output__0": "not a number",
                 "resolve-output__1": ""}},
], ids=["fresh", "filled", "refused"])
@pytest.mark.parametrize("show_required", [None, True])
def test_each_field_is_what_the_field_template_writes(data, show_required):
    shown = 0
    for form in forms_of_the_case_page(data):
        for field in form:
            context = {"field": field}
            if show_required:
                context["show_required"] = True
            expected = INCLUDED.render(context)
            assert form_field(Context(context), field) == expected, field.name
            assert BY_TAG.render(Context(context)) == expected
            shown += 1
    assert shown >= 14
