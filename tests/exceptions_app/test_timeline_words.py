"""The case timeline speaks the audit vocabulary: every verb has its words there."""

import pytest

from exceptions_app.verbs import DomainVerb
from workflows import verbs
from workflows.models import AuditEvent
from workflows.templatetags.casework import describe_event
from workflows.verbs import AuditVerb


def test_the_domain_verbs_are_registered_with_the_engine():
    assert set(DomainVerb.values) <= set(verbs.known())


@pytest.mark.parametrize("verb", [*AuditVerb, *DomainVerb])
def test_the_timeline_describes_each_verb_in_its_own_words(verb):
    event = AuditEvent(verb=verb.value, object_type="case", object_id="1", data={})
    assert describe_event(event)["what"] == verb.label


def test_the_timeline_has_no_words_for_a_verb_nothing_emits():
    assert "case.sla_breached" not in verbs.known()

