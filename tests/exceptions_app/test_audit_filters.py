"""The audit log's use case filter: the events of its cases and of its configuration, and
none of another use case's."""

import pytest
from django.urls import reverse

from tests.exceptions_app.factories import UseCaseFactory, make_decision_case
from tests.factories import client_for, make_manager
from workflows.actors import SYSTEM
from workflows.services import audit
from workflows.verbs import AuditVerb


@pytest.mark.django_db
def test_a_use_case_shows_its_cases_and_configuration_events_and_no_other():
    mine, theirs = UseCaseFactory(slug="mine"), UseCaseFactory(slug="theirs")
    my_case = make_decision_case(mine, external_id="a").case_id
    their_case = make_decision_case(theirs, external_id="b").case_id
    claimed = audit.record(actor=SYSTEM, verb=AuditVerb.CASE_ESCALATED, object_type="case",
                           object_id=my_case, case_id=my_case)
    audit.record(actor=SYSTEM, verb=AuditVerb.CASE_ESCALATED, object_type="case",
                 object_id=their_case, case_id=their_case)
    changed = audit.record(actor=SYSTEM, verb="use_case.changed", object_type="use_case",
                           object_id=mine.pk)
    audit.record(actor=SYSTEM, verb="use_case.changed", object_type="use_case",
                 object_id=theirs.pk)

    body = client_for(make_manager()).get(reverse("audit-event-list"),
                                          {"use_case": "mine"}).json()

    assert [event["id"] for event in body["results"]] == [changed.pk, claimed.pk]


@pytest.mark.django_db
def test_a_use_case_that_does_not_exist_is_named():
    response = client_for(make_manager()).get(reverse("audit-event-list"), {"use_case": "nope"})

    assert response.status_code == 400
    assert response.json() == {"use_case": ["No use case is called 'nope'."]}
