"""The case page's timeline, written in Python (``timeline_items``), is what the
template loop wrote: the former loop is kept beside this file as the reference and both
render every kind of event, byte for byte."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import timezone

from workflows.models import AuditEvent, User
from workflows.templatetags.casework import timeline_items

# The timeline loop of templates/workflows/case.html before the tag wrote it.
REFERENCE = Template(
    (Path(__file__).parent / "case_timeline.html").read_text().removesuffix("\n"))

WHEN = datetime(2026, 12, 4, 9, 5, 7, 123456, tzinfo=UTC)
ANN = User(pk=7, username="ann", first_name="Ann", last_name="O'Neil <QA>")
BOB = User(pk=12345, username="bob & co")
PEOPLE = {ANN.pk: ANN.display_name, BOB.pk: BOB.display_name}


def event(verb, data=None, *, actor=ANN, label="", when=WHEN) -> AuditEvent:
    return AuditEvent(verb=verb, data=data if data is not None else {}, actor=actor,
                      actor_label=label, occurred_at=when)


EVENTS = [
    event("decision.received", {"route": "review", "confidence": 0.42, "model_version":
                                "m <1>", "policy_version": 3, "reason": "review"},
          actor=None, label="demo-ai <system>"),
    event("case.opened", {"queue": "invoices & co", "priority": 90, "reason": "qa-sample"},
          actor=None, label="system"),
    event("case.claimed", {"assignee": ANN.pk}),
    event("case.reassigned", {"from_assignee": ANN.pk, "to_assignee": BOB.pk,
                              "reason": "On leave\nback Monday"}, actor=BOB),
    event("case.sent_back", {"assignee": ANN.pk, "comment": "Check the <PO> & total"}),
    event("case.resolved", {"verdict": "corrected", "reason_code": "po_mismatch",
                            "time_spent_seconds": 3725, "notes": "  ", "first_reviewer":
                            BOB.pk, "qa_sampled": True}),
    event("case.commented", {"comment_id": 41, "markdown": "**Look** at <script>x</script>"
                             " @bob", "mentioned": [BOB.pk, 999]}),
    event("case.commented", {}),
    event("case.escalated", {"level": 2, "reason": "Looks off", "answer": "Fine"},
          when=datetime(2026, 6, 30, 23, 59, tzinfo=UTC)),
    event("case.sla_warning", ["not", "a", "dict"], actor=None, label=""),
    event("some.unknown_verb", {"verdict": "", "confidence": "high", "level": 0}),
]


@pytest.mark.parametrize("events", [EVENTS, EVENTS[:1], []], ids=["all", "one", "none"])
@pytest.mark.parametrize("hide_suggestion", [False, True])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles"])
def test_the_timeline_is_what_the_template_loop_wrote(events, hide_suggestion, zone):
    context = {"timeline": events, "people": PEOPLE, "hide_suggestion": hide_suggestion}
    with timezone.override(zone):
        expected = REFERENCE.render(Context(context))
        assert timeline_items(events, PEOPLE, hide_suggestion) == expected


def test_the_timeline_escapes_what_people_and_systems_wrote():
    html = timeline_items(EVENTS, PEOPLE, False)

    assert "<script>" not in html and "demo-ai &lt;system&gt;" in html
    assert "Check the &lt;PO&gt; &amp; total" in html
