import pytest

from exceptions_app.models import Decision
from workflows.models import AuditEvent, Case

URL = "/api/v1/decisions/"


def invoice(external_id="inv-1", *, confidence=0.95, amount=4100.0, po_amount=4100.0, **extra):
    return {"use_case": "invoice-approval", "external_id": external_id,
            "model_version": "extractor-3.2.1", "confidence": confidence,
            "input": {"vendor": "ACME GmbH", "po_amount": po_amount, "currency": "EUR"},
            "output": {"action": "approve", "amount": amount}, **extra}


@pytest.mark.django_db
def test_confident_matching_invoice_passes_automatically(ai_client):
    response = ai_client.post(URL, invoice(), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["route"] == "auto"
    assert body["case"] is None
    assert body["reasons"][0]["rule"] == "matches-po"
    assert body["policy_version"] == Decision.objects.get().policy_version.number
    assert AuditEvent.objects.filter(verb="decision.received").count() == 1


@pytest.mark.django_db
def test_low_confidence_invoice_opens_a_case(ai_client):
    response = ai_client.post(URL, invoice(confidence=0.5), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["route"] == "review"
    assert body["case"]["state"] == "open"
    assert body["case"]["priority"] == 70
    assert body["reasons"][0]["text"].startswith("Confidence under 0.9")
    case = Case.objects.get(pk=body["case"]["id"])
    assert case.decision.external_id == "inv-1"
    assert AuditEvent.objects.filter(case=case).count() == 2
