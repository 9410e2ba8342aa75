"""Onboarding by API: a manager registers an AI system, issues and revokes its keys (the
key in one answer only), rotates its secret, sets up and changes a use case; refusals
name the field; reviewers get 403 for writes, outsiders 404 for what they may not see."""

import pytest
from django.urls import reverse

from exceptions_app.models import AiSystem, AiSystemAPIKey, UseCase
from tests.exceptions_app.factories import AiSystemFactory, UseCaseFactory
from tests.factories import QueueFactory, UserFactory, client_for, make_manager
from workflows.models import AuditEvent


@pytest.fixture
def manager(db):
    return make_manager(username="mia")


def test_a_manager_registers_an_ai_system_and_gives_it_a_key_that_works(manager):
    use_case = UseCaseFactory(slug="expense-claims")
    api = client_for(manager)

    created = api.post(reverse("ai-system-list"), {
        "slug": "receipt-reader", "name": "Receipt reader", "owner": "mia",
        "use_cases": ["expense-claims"], "document_hosts": ["receipts.example.com"]},
        format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["use_cases"] == [use_case.slug]
    assert created.json()["has_signing_secret"] is True

    issued = api.post(reverse("ai-system-keys", args=["receipt-reader"]), {"name": "prod"},
                      format="json")
    assert issued.status_code == 201 and issued["Cache-Control"] == "no-store"
    key = issued.json()["key"]
    assert AiSystemAPIKey.objects.get_from_key(key).ai_system.slug == "receipt-reader"
    shown = api.get(reverse("ai-system-detail", args=["receipt-reader"])).json()
    assert key not in str(shown)
    assert shown["keys"][0]["prefix"] == issued.json()["prefix"]

    revoked = api.post(reverse("ai-system-key-revoke",
                               args=["receipt-reader", issued.json()["prefix"]]))
    assert revoked.status_code == 204
    assert AiSystemAPIKey.objects.get(prefix=issued.json()["prefix"]).revoked
    assert list(AuditEvent.objects.values_list("verb", flat=True).order_by("id")) == [
        "ai_system.created", "api_key.issued", "api_key.revoked"]


def test_a_bad_callback_url_is_refused_naming_the_field(manager):
    system = AiSystemFactory(slug="receipt-reader", owner=manager)

    response = client_for(manager).patch(reverse("ai-system-detail", args=[system.slug]),
                                         {"callback_url": "http://10.0.0.1/hook"},
                                         format="json")

    assert response.status_code == 400 and "callback_url" in response.json()
    assert not AuditEvent.objects.exists()


def test_a_name_with_a_nul_character_is_refused_naming_the_field(manager):
    QueueFactory(slug="expenses")
    api = client_for(manager)

    system = api.post(reverse("ai-system-list"), {"name": "Reader", "owner": "\u0000"},
                      format="json")
    use_case = api.post(reverse("use-case-list"), {
        "slug": "expense-claims", "name": "Expense claims", "review_queue": "exp\u0000"},
        format="json")

    assert system.status_code == 400
    assert system.json()["owner"] == ["Null characters are not allowed."]
    assert use_case.status_code == 400
    assert use_case.json()["review_queue"] == ["Null characters are not allowed."]
    assert not AuditEvent.objects.exists()


def test_rotating_the_secret_answers_it_once_with_the_overlap(manager):
    system = AiSystemFactory(slug="receipt-reader", owner=manager, signing_secret="old")

    response = client_for(manager).post(reverse("ai-system-secret-rotation",
                                                args=[system.slug]), {"overlap_hours": 2},
                                        format="json")

    system.refresh_from_db()
    assert response.json()["signing_secret"] == system.signing_secret
    assert system.previous_signing_secret == "old"
    assert response.json()["previous_signs_until"] is not None


def test_a_use_case_is_set_up_and_reason_codes_in_the_wrong_shape_are_refused(manager):
    QueueFactory(slug="claims-review")
    api = client_for(manager)
    body = {"slug": "expense-claims", "name": "Expense claims", "review_queue": "claims-review",
            "reason_codes": ["misread", "illegible"]}

    refused = api.post(reverse("use-case-list"), body, format="json")
    assert refused.status_code == 400
    assert "reason_codes" in refused.json() and not UseCase.objects.exists()

    body["reason_codes"] = [{"code": "misread", "label": "The reader misread it"}]
    created = api.post(reverse("use-case-list"), body, format="json")
    assert created.status_code == 201 and created.json()["stage"] == "audit"

    changed = api.patch(reverse("use-case-detail", args=["expense-claims"]),
                        {"output_schema": {"type": "thing"}}, format="json")
    assert changed.status_code == 400 and "output_schema" in changed.json()
    assert list(AuditEvent.objects.values_list("verb", flat=True)) == ["use_case.created"]


def test_a_reviewer_may_read_their_use_case_but_not_change_it(db):
    reviewer = UserFactory(username="rita")
    use_case = UseCaseFactory(slug="expense-claims")
    use_case.review_queue.members.add(reviewer)
    api = client_for(reviewer)

    assert api.get(reverse("use-case-detail", args=[use_case.slug])).status_code == 200
    response = api.patch(reverse("use-case-detail", args=[use_case.slug]), {"name": "X"},
                         format="json")
    assert response.status_code == 403
    assert api.post(reverse("ai-system-list"), {}, format="json").status_code == 403


def test_an_outsider_finds_neither_the_use_case_nor_the_ai_system(db):
    use_case = UseCaseFactory(slug="expense-claims")
    system = AiSystemFactory(slug="receipt-reader", use_cases=[use_case])
    api = client_for(UserFactory(username="oscar"))

    assert api.get(reverse("use-case-detail", args=[use_case.slug])).status_code == 404
    assert api.get(reverse("ai-system-detail", args=[system.slug])).status_code == 404
    assert api.post(reverse("ai-system-keys", args=[system.slug]),
                    {"name": "x"}, format="json").status_code == 404
    assert api.get(reverse("ai-system-list")).json() == []
    assert not AiSystemAPIKey.objects.exists() and AiSystem.objects.count() == 1
