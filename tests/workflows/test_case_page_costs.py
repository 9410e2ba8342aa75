"""The case page reads what it shows once (issue 15): what it read with the case and
the people it already has are not asked again, and never stale.

The query counts with a decision's panels are held in
``tests/exceptions_app/test_case_page_costs.py``.
"""

from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import make_case
from tests.workflows.chain import make_chain
from workflows.actors import SYSTEM
from workflows.models import Case, CaseState
from workflows.services import escalation, transitions

pytestmark = pytest.mark.django_db

CONSULTS = 'SELECT "workflows_consultrequest".'


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_queries(client, case) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/cases/{case.pk}/")
    assert response.status_code == 200
    return response.content.decode(), [query["sql"] for query in queries.captured_queries]


def test_a_case_without_consults_does_not_read_them_and_one_with_consults_shows_them(
        queue, member):
    chain = make_chain(queue)
    case = make_case(queue, state=CaseState.ASSIGNED, assignee=member)
    _, sql = page_queries(signed_in(member), case)
    assert not [query for query in sql if query.startswith(CONSULTS)]

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause="resolution_breach",
                        expected_level=0)
    page, sql = page_queries(signed_in(chain.owner), case)

    assert len([query for query in sql if query.startswith(CONSULTS)]) == 1
    assert "Consulted" in page and chain.legal.display_name in page
    assert "required before resolving" in page


def test_a_refused_action_shows_a_consult_asked_meanwhile(queue, member, monkeypatch):
    """The action's request read the case without consults; an escalation asked for one
    before the service took the case: the refusal page shows it."""
    chain = make_chain(queue)
    case = make_case(queue, state=CaseState.ASSIGNED, assignee=member)
    changing = transitions.changing

    @contextmanager
    def escalated_first(**kwargs):
        escalation.escalate(actor=SYSTEM, case_id=case.pk, cause="resolution_breach",
                            expected_level=0)
        with changing(**kwargs) as changed:
            yield changed

    monkeypatch.setattr(transitions, "changing", escalated_first)
    refused = signed_in(member).post(f"/cases/{case.pk}/release/",
                                     {"release-version": case.version})

    assert refused.status_code == 409
    page = refused.content.decode()
    assert "This case changed since you opened it" in page
    assert "Consulted" in page and chain.legal.display_name in page


def test_the_timeline_names_people_the_page_had_not_read(queue, member, second_member,
                                                         manager):
    second_member.first_name, second_member.last_name = "Sam", "Second"
    second_member.save()
    case = make_case(queue, state=CaseState.ASSIGNED, assignee=member)
    transitions.reassign(case_id=case.pk, user=manager, to_user=second_member)
    transitions.reassign(case_id=case.pk, user=manager, to_user=member)

    page, _ = page_queries(signed_in(member), Case.objects.get(pk=case.pk))

    assert "Sam Second" in page  # reassigned to them, then back: named in the timeline
