"""Issuing an AI system's API key (``exceptions_app.services.api_keys``)."""

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from exceptions_app.models import AiSystemAPIKey
from exceptions_app.services.api_keys import default_key_name, issue_api_key
from tests.exceptions_app.factories import AiSystemFactory
from tests.factories import UserFactory
from workflows.actors import SYSTEM
from workflows.models import AuditEvent


@pytest.mark.django_db
def test_an_issued_key_authenticates_its_system_and_only_its_hash_is_kept(invoice_policy):
    system = AiSystemFactory(slug="billing-bot", use_cases=[invoice_policy.use_case])
    operator = UserFactory(username="ops")

    key = issue_api_key(ai_system=system, name="billing, prod", actor=operator)

    stored = AiSystemAPIKey.objects.get(ai_system=system)
    assert stored.name == "billing, prod"
    assert key.startswith(stored.prefix + ".") and key not in stored.hashed_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/decisions/999999/").status_code == 404  # in, not refused
    event = AuditEvent.objects.get(verb="api_key.issued")
    assert (event.actor_label, event.object_id, event.data) == (
        "ops", stored.prefix, {"ai_system": "billing-bot", "name": "billing, prod"})


@pytest.mark.django_db
def test_each_key_is_new_and_a_name_must_fit():
    system = AiSystemFactory(slug="billing-bot")

    assert (issue_api_key(ai_system=system, name="a", actor=SYSTEM)
            != issue_api_key(ai_system=system, name="b", actor=SYSTEM))
    with pytest.raises(ValueError, match="1 to 50 characters"):
        issue_api_key(ai_system=system, name="x" * 51, actor=SYSTEM)
    assert AiSystemAPIKey.objects.count() == 2


@pytest.mark.django_db
def test_the_default_name_says_which_system_and_when():
    system = AiSystemFactory(slug="billing-bot")

    assert default_key_name(ai_system=system, now=datetime(2026, 11, 30, 5, 7, tzinfo=UTC)) == (
        "billing-bot 2026-11-30 05:07")
