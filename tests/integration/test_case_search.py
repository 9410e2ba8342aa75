"""The case list's search with the domain plugged in: a decision's input values find its
case, from a single post and from a batch (PostgreSQL writes a batch by COPY)."""

import pytest

from tests.exceptions_app.intake_support import invoice
from tests.factories import client_for as person_client
from tests.factories import make_manager
from workflows.models import Case

DECISIONS = "/api/v1/decisions/"
CASES = "/api/v1/cases/"


def from_vendor(external_id: str, vendor: str) -> dict:
    body = invoice(external_id, confidence=0.5)  # low confidence: a person reviews it
    body["input"]["vendor"] = vendor
    return body


def found(search: str) -> set[int]:
    response = person_client(make_manager(username="finder")).get(CASES, {"search": search})
    assert response.status_code == 200
    return {item["id"] for item in response.json()["results"]}


@pytest.mark.django_db
def test_a_cases_input_values_and_external_id_find_it(ai_client):
    single = ai_client.post(DECISIONS, from_vendor("inv-7001", "Globex AG"),
                            format="json").json()["case"]["id"]
    batch = ai_client.post(f"{DECISIONS}batch/", {"decisions": [
        from_vendor("inv-7002", "Initech Ltd"),
        from_vendor("inv-7003", "Umbrella plc")]}, format="json")
    assert batch.status_code == 200
    initech = Case.objects.get(decision__external_id="inv-7002")

    assert found("globex") == {single}
    assert found("INITECH") == {initech.pk}
    assert found("inv-7003") == {Case.objects.get(decision__external_id="inv-7003").pk}
    assert found("invoice approval umbrella") == {
        Case.objects.get(decision__external_id="inv-7003").pk}
    assert initech.search_text.startswith("invoice approval: inv-7002 initech ltd")
