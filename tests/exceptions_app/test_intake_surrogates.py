"""A lone UTF-16 surrogate ("\\ud800") is valid JSON text but not storable text: PostgreSQL
refuses it. The item carrying one is a 400 naming where it is; nothing of it is stored,
and the other items of a batch are taken."""

import json

import pytest

from exceptions_app.api.serializers import validate_decisions
from exceptions_app.models import Decision
from tests.exceptions_app.intake_support import invoice, stored

URL = "/api/v1/decisions/"
BATCH_URL = "/api/v1/decisions/batch/"
LONE = "\\ud800"  # as the client writes it in its JSON


def with_lone_surrogate(field: str) -> dict:
    """An invoice with a marker where the lone surrogate goes, written in by ``raw``."""
    body = invoice("inv-bad")
    if field in ("input", "output"):
        body[field]["vendor" if field == "input" else "action"] = "MARK"
    elif field == "meta":
        body["meta"] = {"trace": ["ok", "MARK"]}
    elif field == "meta-key":
        body["meta"] = {"MARK": 1}
    else:
        body[field] = "MARK"
    return body


def raw(body) -> str:
    return json.dumps(body).replace("MARK", f"ACME{LONE}")


CASES = [
    ("input", "input", "vendor: "),
    ("output", "output", "action: "),
    ("meta", "meta", "trace/1: "),
    ("meta-key", "meta", ""),
    ("external_id", "external_id", ""),
    ("model_version", "model_version", ""),
    ("explanation", "explanation", ""),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("where", "field", "path"), CASES)
def test_a_lone_surrogate_is_a_400_naming_the_field(ai_client, where, field, path):
    response = ai_client.post(URL, raw(with_lone_surrogate(where)),
                              content_type="application/json")

    assert response.status_code == 400
    [message] = response.json()[field]
    assert message.startswith(path)
    assert "surrogate" in message.lower()
    assert stored() == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(("where", "field", "path"), CASES)
def test_in_a_batch_only_the_item_with_a_lone_surrogate_fails(ai_client, where, field, path):
    body = raw({"decisions": [invoice("inv-1"), with_lone_surrogate(where),
                              invoice("inv-2", confidence=0.5)]})

    response = ai_client.post(BATCH_URL, body, content_type="application/json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["status"] for result in results] == [201, 400, 201]
    assert "surrogate" in results[1]["errors"][field][0].lower()
    assert sorted(Decision.objects.values_list("external_id", flat=True)) == ["inv-1", "inv-2"]


def test_fast_path_and_serializer_refuse_a_lone_surrogate_alike():
    item = json.loads(raw(with_lone_surrogate("input")))

    [(fast, errors)] = validate_decisions([item])

    assert fast is None
    assert errors == {"input": ["vendor: text may not contain a lone UTF-16 surrogate "
                                "(an invalid character such as \\ud800)"]}
