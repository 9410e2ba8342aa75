"""Consults on the case page: the Consulted read the case and answer there; a required
answer comes before the case can resolve or be approved (409 until then)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import make_case
from tests.workflows.chain import make_chain
from workflows.actors import SYSTEM
from workflows.models import AuditEvent, Case, CaseState, ConsultRequest, Resolution
from workflows.services import consults, escalation, transitions

S = CaseState
BREACH = "resolution_breach"

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def breached(queue, member):
    """An invoice case whose SLA breached: the owner (Accountable) holds it and legal
    (Consulted) was asked, their answer required before it can resolve."""
    chain = make_chain(queue)
    opened = make_case(queue, state=S.ASSIGNED, assignee=member)
    escalation.escalate(actor=SYSTEM, case_id=opened.pk, cause=BREACH, expected_level=0)
    case = Case.objects.get(pk=opened.pk)
    assert (case.state, case.assignee) == (S.ASSIGNED, chain.owner)
    return chain, case, ConsultRequest.objects.get(case=case)


def test_resolving_before_the_required_answer_is_409_and_stores_nothing(breached):
    chain, case, consult = breached

    refused = api(chain.owner).post(f"/api/v1/cases/{case.pk}/resolve/",
                                    {"verdict": "accepted"}, format="json")

    assert refused.status_code == 409
    body = refused.json()
    assert "legal must answer the consult first" in body["detail"]
    assert (body["state"], body["version"]) == ("assigned", case.version)
    assert not Resolution.objects.filter(case=case).exists()
    assert not AuditEvent.objects.filter(case=case, verb="case.resolved").exists()

    consults.answer_consult(consult_id=consult.pk, user=chain.legal, answer="Fine by us.")
    resolved = api(chain.owner).post(f"/api/v1/cases/{case.pk}/resolve/",
                                     {"verdict": "accepted"}, format="json")
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"


def test_approving_before_the_required_answer_is_409(queue, member, second_member):
    chain = make_chain(queue)
    case = make_case(queue, state=S.ASSIGNED, assignee=member, four_eyes=True)
    transitions.resolve(case_id=case.pk, user=member, verdict="rejected",
                        output=None, reason_code="wrong-amount")
    # The approval is late: the chain escalates it and asks legal, whose answer counts.
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    consult = ConsultRequest.objects.get(case=case.pk)

    with pytest.raises(consults.ConsultsUnanswered, match="cannot be approved yet"):
        transitions.approve(case_id=case.pk, user=second_member)
    refused = api(second_member).post(f"/api/v1/cases/{case.pk}/approve/")
    assert refused.status_code == 409 and refused.json()["state"] == "pending_approval"

    consults.answer_consult(consult_id=consult.pk, user=chain.legal, answer="Reject it.")
    approved = api(second_member).post(f"/api/v1/cases/{case.pk}/approve/")
    assert approved.status_code == 200 and approved.json()["state"] == "resolved"


def test_the_consulted_read_the_case_and_answer_on_its_page(client, breached):
    chain, case, consult = breached
    client.force_login(chain.legal)
    url = reverse("case", args=[case.pk])

    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert consult.question.splitlines()[0] in html
    assert f'id="consult-answer-{consult.pk}"' in html and "Send answer" in html
    assert 'href="#consults">Answer the consult' in html  # the way there on a phone
    assert "Take this case" not in html and "Your decision" not in html  # read-only
    assert "Nothing for you to do on this case now." in html
    assert api(chain.legal).get(f"/api/v1/cases/{case.pk}/").json()[
        "available_transitions"] == []
    assert client.post(reverse("case-escalate", args=[case.pk]), {
        "escalate-version": case.version, "escalate-reason": "Mine now"}).status_code == 403

    answered = client.post(reverse("consult-answer-page", args=[consult.pk]),
                           {"answer": "Legal sees no problem.", "return_to": "case"},
                           follow=True)

    assert answered.redirect_chain[-1][0] == f"{url}#consult-{consult.pk}"
    html = answered.content.decode()
    assert "Thank you: your answer is on the case." in html
    assert "Legal sees no problem." in html and "Send answer" not in html
    assert "Answer the consult" not in html
    consult.refresh_from_db()
    assert consult.answered_at is not None


def test_the_consulted_see_the_case_only_while_it_is_open(client, breached, outsider):
    chain, case, consult = breached
    client.force_login(outsider)
    assert client.get(reverse("case", args=[case.pk])).status_code == 404

    consults.answer_consult(consult_id=consult.pk, user=chain.legal, answer="Agreed.")
    transitions.resolve(case_id=case.pk, user=chain.owner, verdict="accepted", output=None,
                        reason_code="")

    client.force_login(chain.legal)
    assert client.get(reverse("case", args=[case.pk])).status_code == 404
    assert api(chain.legal).get(f"/api/v1/cases/{case.pk}/").status_code == 404


def test_the_holder_is_told_why_the_case_cannot_resolve_yet(client, breached):
    chain, case, _ = breached
    client.force_login(chain.owner)
    url = reverse("case", args=[case.pk])

    html = client.get(url).content.decode()
    assert "This case cannot be resolved until legal answers the consult" in html
    assert "waiting for an answer" in html and "Send answer" not in html  # not theirs

    refused = client.post(reverse("case-resolve", args=[case.pk]), {
        "resolve-version": case.version, "resolve-verdict": "accepted",
        "resolve-reason_code": "", "resolve-notes": ""})

    assert refused.status_code == 409
    html = refused.content.decode()
    assert "Not yet: a required consult is unanswered." in html
    assert "legal must answer the consult first" in html
    assert "someone else changed this case" not in html
    assert Case.objects.get(pk=case.pk).state == S.ASSIGNED


def test_an_answered_consult_shows_on_the_case_page(client, breached):
    chain, case, consult = breached
    consults.answer_consult(consult_id=consult.pk, user=chain.legal,
                              answer="Check the VAT id first.")
    client.force_login(chain.owner)

    html = client.get(reverse("case", args=[case.pk])).content.decode()

    assert "Check the VAT id first." in html and "answered" in html
    assert html.count("Check the VAT id first.") == 2  # in the panel and the timeline
    assert "cannot be resolved until" not in html


def test_a_consult_whose_case_closed_no_longer_waits_for_an_answer(client, queue, member):
    chain = make_chain(queue, consult_required=False)
    case = make_case(queue, state=S.ASSIGNED, assignee=member)
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause=BREACH, expected_level=0)
    client.force_login(chain.legal)
    assert "Send answer" in client.get(reverse("my-consults")).content.decode()

    # The answer was optional: the owner resolved without it.
    transitions.resolve(case_id=case.pk, user=chain.owner, verdict="accepted",
                        output=None, reason_code="")

    page = client.get(reverse("my-consults")).content.decode()
    assert "Send answer" not in page and "Nobody is waiting for your input." in page
