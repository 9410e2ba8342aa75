"""Odd but well-formed input a client can send answers 4xx, never a 500."""

import base64
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from tests.factories import CaseFactory

CASES = "/api/v1/cases/"


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def forged_cursor(position: str) -> str:
    return base64.b64encode(urlencode({"p": position}).encode()).decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", [CASES, "/api/v1/notifications/", "/api/v1/outbox/"])
@pytest.mark.parametrize("cursor", [forged_cursor("abc"), "not base64!"])
def test_a_forged_cursor_answers_400_naming_the_cursor(path, cursor, manager):
    response = signed_in(manager).get(path, {"cursor": cursor})

    assert response.status_code == 400
    assert list(response.json()) == ["cursor"]


@pytest.mark.django_db
def test_due_before_takes_any_iso_offset(queue, manager):
    case = CaseFactory(queue=queue)
    client = signed_in(manager)

    later = client.get(CASES, {"due_before": "2999-01-01T00:00:00-16:00"})
    earlier = client.get(CASES, {"due_before": "2000-01-01T00:00:00+15:30"})

    assert later.status_code == 200
    assert [row["id"] for row in later.json()["results"]] == [case.pk]
    assert earlier.status_code == 200
    assert earlier.json()["results"] == []
