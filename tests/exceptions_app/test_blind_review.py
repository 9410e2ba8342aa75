"""Blind review: the reviewer answers from the input alone; after submission their answer
is compared with the AI's, on the case page and through the API."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from exceptions_app.models import LabelledExample
from tests.browser.workbench import build_workbench
from tests.exceptions_app.factories import INVOICE_OUTPUT_SCHEMA, UseCaseFactory, make_decision_case
from tests.factories import QueueFactory, UserFactory
from workflows.models import AuditEvent, CaseState

pytestmark = pytest.mark.django_db

QA_SAMPLE = "inv-2026-000125"  # the AI said: approve 880.0 EUR, 98% sure


@pytest.fixture
def bench(db):
    return build_workbench()


@pytest.fixture
def blind_case(client, bench):
    """The QA sample, claimed by alice on its page."""
    case = bench.case(QA_SAMPLE)
    client.force_login(bench.reviewer)
    response = client.post(reverse("case-claim", args=[case.pk]),
                           {"claim-version": case.version})
    assert response.status_code == 302
    case.refresh_from_db()
    return case


def answer(case, *, action="approve", amount="880", currency="EUR", reason_code="",
           verdict="corrected"):
    return {"resolve-version": case.version, "resolve-verdict": verdict,
            "resolve-output__0": action, "resolve-output__1": amount,
            "resolve-output__2": currency, "resolve-reason_code": reason_code,
            "resolve-notes": ""}


# -- the case page ---------------------------------------------------------------------------

def test_an_answer_that_agrees_is_accepted_and_the_page_shows_the_comparison(
        client, blind_case):
    page = client.get(reverse("case", args=[blind_case.pk])).content.decode()
    assert "Optional for an answer" in page  # no reason code asked for up front

    response = client.post(reverse("case-resolve", args=[blind_case.pk]),
                           answer(blind_case), follow=True)

    assert response.redirect_chain[-1][0] == reverse("case", args=[blind_case.pk]) + "#resolution"
    page = response.content.decode()
    assert "Your answer is compared with the AI&#x27;s output below" in page
    assert "agrees with the AI&#x27;s output in every field" in page
    assert "Reviewer's answer" in page and "98%" in page  # the AI's side shows now
    assert 'class="changed"' not in page
    example = LabelledExample.objects.get(decision__case=blind_case)
    assert (example.verdict, example.blind, example.reason_code) == ("accepted", True, "")


def test_an_answer_that_differs_is_a_correction_with_the_field_marked(client, blind_case):
    response = client.post(reverse("case-resolve", args=[blind_case.pk]),
                           answer(blind_case, amount="870.5"), follow=True)

    page = response.content.decode()
    assert "differs from the AI&#x27;s output in Amount" in page
    assert page.count('class="changed"') == 1 and ">differs</span>" in page
    example = LabelledExample.objects.get(decision__case=blind_case)
    assert example.verdict == "corrected" and example.human_output["amount"] == 870.5
    event = AuditEvent.objects.get(case=blind_case, verb="case.resolved")
    assert event.data["blind_answer"] == {"differing_fields": ["amount"]}


def test_a_blind_rejection_needs_a_reason_code(client, blind_case):
    response = client.post(reverse("case-resolve", args=[blind_case.pk]),
                           answer(blind_case, verdict="rejected"))

    assert response.status_code == 400
    assert "Say why with a reason code" in response.content.decode()
    blind_case.refresh_from_db()
    assert blind_case.state == CaseState.ASSIGNED


def test_a_forged_accept_on_a_blind_case_is_refused(client, blind_case):
    response = client.post(reverse("case-resolve", args=[blind_case.pk]),
                           answer(blind_case, verdict="accepted"))

    assert response.status_code == 400
    blind_case.refresh_from_db()
    assert blind_case.state == CaseState.ASSIGNED


# -- the API ---------------------------------------------------------------------------------

def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_compares_a_blind_answer_after_submission(bench):
    case = bench.case(QA_SAMPLE)
    client = api(bench.reviewer)
    url = f"/api/v1/cases/{case.pk}/"
    claimed = client.post(f"{url}claim/").json()
    assert claimed["suggestion"] is None

    # A whole number where the AI gave 880.0: the same answer.
    resolved = client.post(f"{url}resolve/", {
        "verdict": "corrected", "output": {"action": "approve", "amount": 880,
                                           "currency": "EUR"}}, format="json")

    assert resolved.status_code == 200, resolved.content
    body = resolved.json()
    assert body["state"] == "resolved"
    assert body["resolution"]["verdict"] == "accepted"
    assert body["resolution"]["differing_fields"] == []
    assert body["suggestion"]["output"]["amount"] == 880.0
    assert LabelledExample.objects.get(decision__case=case).verdict == "accepted"


def test_the_api_names_the_fields_a_blind_answer_got_different(bench):
    case = bench.case(QA_SAMPLE)
    client = api(bench.reviewer)
    url = f"/api/v1/cases/{case.pk}/"
    client.post(f"{url}claim/")

    refused = client.post(f"{url}resolve/", {"verdict": "accepted"}, format="json")
    assert refused.status_code == 400 and "blind review" in refused.json()["verdict"][0]

    body = client.post(f"{url}resolve/", {
        "verdict": "corrected", "output": {"action": "hold", "amount": 880.0,
                                           "currency": "EUR"}}, format="json").json()

    assert body["resolution"]["verdict"] == "corrected"
    assert body["resolution"]["differing_fields"] == ["action"]


def test_in_a_blind_four_eyes_case_the_verdict_waits_for_the_approval(client):
    member, second_member = UserFactory(username="member"), UserFactory(username="second")
    qa = QueueFactory(slug="qa", name="QA", blind=True)
    qa.members.add(member, second_member)
    use_case = UseCaseFactory(slug="invoices", review_queue=qa,
                              output_schema=INVOICE_OUTPUT_SCHEMA)
    decision = make_decision_case(use_case, queue=qa, four_eyes=True,
                                  state=CaseState.ASSIGNED, assignee=member)
    url = f"/api/v1/cases/{decision.case_id}/"
    submitted = api(member).post(f"{url}resolve/", {
        "verdict": "corrected", "output": {"action": "approve", "amount": 4180}},
        format="json").json()
    assert submitted["state"] == "pending_approval"

    # The approver decides blind too: whether the answer matched would give it away.
    seen = api(second_member).get(url).json()
    assert seen["suggestion"] is None
    assert seen["resolution"]["verdict"] is None
    assert seen["resolution"]["differing_fields"] is None
    assert seen["resolution"]["output"] == {"action": "approve", "amount": 4180}
    client.force_login(second_member)
    page = client.get(reverse("case", args=[decision.case_id])).content.decode()
    assert "Answer submitted" in page and "accepted" not in page.lower()
    assert "compared with the AI&#x27;s output once the case is closed" in page
    listed = client.get(reverse("approvals")).content.decode()
    assert "Answered blind: <span>action approve</span>" in listed and ">4180<" in listed
    assert "accepted" not in listed.lower()

    approved = api(second_member).post(f"{url}approve/").json()
    assert approved["resolution"]["verdict"] == "accepted"
    assert LabelledExample.objects.get(decision=decision).approver == second_member


# -- one rule for who sees the suggestion, on the page and in the API -------------------------

def _sees_suggestion(client, user, case) -> tuple[bool, bool]:
    """(on the page, in the API): whether ``user`` sees the AI's suggestion of ``case``."""
    client.force_login(user)
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    body = api(user).get(f"/api/v1/cases/{case.pk}/").json()
    return "AI suggestion hidden" not in page, body["suggestion"] is not None


def test_only_the_person_answering_a_blind_case_is_kept_from_its_suggestion(client, bench):
    case = bench.case(QA_SAMPLE)
    api(bench.reviewer).post(f"/api/v1/cases/{case.pk}/claim/")

    # Reviewers may answer it (the holder now, the others if it comes back): hidden.
    assert _sees_suggestion(client, bench.reviewer, case) == (False, False)
    assert _sees_suggestion(client, bench.second_reviewer, case) == (False, False)
    # A manager who is not answering it may look, on both surfaces.
    assert _sees_suggestion(client, bench.manager, case) == (True, True)

    # A manager who takes the case to answer it answers blind like anyone else.
    api(bench.reviewer).post(f"/api/v1/cases/{case.pk}/release/")
    api(bench.manager).post(f"/api/v1/cases/{case.pk}/claim/")
    assert _sees_suggestion(client, bench.manager, case) == (False, False)
    refused = api(bench.manager).post(f"/api/v1/cases/{case.pk}/resolve/",
                                      {"verdict": "accepted"}, format="json")
    assert refused.status_code == 400 and "blind review" in refused.json()["verdict"][0]
