"""Onboarding without a shell, on pages: a manager registers an AI system, issues and
revokes its keys (shown once), rotates its secret with an overlap, sets up and edits a
use case with errors beside their fields; each step audited. Others are refused, and the
Accountable approves a proposed policy with one button."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exceptions_app.activities import DomainActivity
from exceptions_app.models import AiSystem, AiSystemAPIKey, PolicyStatus, PolicyVersion, UseCase
from exceptions_app.services import policies
from exceptions_app.services.policies import RuleSpec
from tests.exceptions_app.factories import AiSystemFactory, UseCaseFactory
from tests.factories import QueueFactory, UserFactory, make_manager
from workflows.models import AuditEvent, RaciAssignment, RaciRole


@pytest.fixture
def manager(db):
    return make_manager(username="mia")


@pytest.fixture
def browser(client, manager):
    client.force_login(manager)
    return client


def verbs():
    return list(AuditEvent.objects.order_by("id").values_list("verb", flat=True))


def system_form(**values):
    data = {"name": "Receipt reader", "slug": "receipt-reader", "owner": "",
            "callback_url": "https://claims.example.com/hook", "document_hosts":
            "receipts.example.com\nscans.example.com", "is_active": "on"}
    data.update(values)
    return data


def test_a_manager_registers_an_ai_system_and_it_is_audited(browser, manager):
    use_case = UseCaseFactory(slug="expense-claims")

    response = browser.post(reverse("ai-system-create"),
                            system_form(owner=manager.pk, use_cases=[use_case.pk]))

    assert response.status_code == 302
    system = AiSystem.objects.get(slug="receipt-reader")
    assert system.document_hosts == ["receipts.example.com", "scans.example.com"]
    assert list(system.use_cases.all()) == [use_case]
    assert system.signing_secret
    assert verbs() == ["ai_system.created"]


def test_a_bad_callback_url_and_host_are_refused_beside_their_fields(browser, manager):
    response = browser.post(reverse("ai-system-create"), system_form(
        owner=manager.pk, callback_url="http://127.0.0.1/hook",
        document_hosts="https://receipts.example.com/"))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_callback_url_error"' in page and 'id="id_document_hosts_error"' in page
    assert not AiSystem.objects.exists() and verbs() == []


def test_a_key_is_shown_once_and_works_until_revoked(browser, manager):
    system = AiSystemFactory(slug="receipt-reader", owner=manager)

    response = browser.post(reverse("ai-system-issue-key", args=[system.slug]),
                            {"key-name": "production"})

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    key = response.context["new_key"]
    assert key in response.content.decode()
    stored = AiSystemAPIKey.objects.get_from_key(key)
    assert stored.ai_system == system
    assert key not in browser.get(reverse("ai-system", args=[system.slug])).content.decode()

    browser.post(reverse("ai-system-revoke-key", args=[system.slug, stored.prefix]))

    assert AiSystemAPIKey.objects.get(pk=stored.pk).revoked
    assert verbs() == ["api_key.issued", "api_key.revoked"]


def test_rotating_the_secret_shows_the_new_one_once_and_keeps_the_old_signing(browser, manager):
    system = AiSystemFactory(slug="receipt-reader", owner=manager, signing_secret="whsec_old")

    response = browser.post(reverse("ai-system-rotate-secret", args=[system.slug]),
                            {"secret-overlap_hours": "6"})

    system.refresh_from_db()
    assert response.context["new_secret"] == system.signing_secret != "whsec_old"
    assert system.previous_signing_secret == "whsec_old"
    assert (system.previous_secret_expires_at - timezone.now()) > timedelta(hours=5.9)
    event = AuditEvent.objects.get(verb="ai_system.secret_rotated")
    assert "whsec_old" not in json.dumps(event.data)
    assert system.signing_secret not in json.dumps(event.data)


def test_editing_an_ai_system_writes_one_event_with_before_and_after(browser, manager):
    system = AiSystemFactory(slug="receipt-reader", owner=manager)

    browser.post(reverse("ai-system", args=[system.slug]), {
        "name": system.name, "owner": manager.pk, "callback_url": "https://new.example.com/h",
        "document_hosts": "", "is_active": "on"})

    event = AuditEvent.objects.get()
    assert (event.verb, event.data["after"]) == (
        "ai_system.changed", {"callback_url": "https://new.example.com/h"})


def use_case_form(queue, **values):
    data = {"name": "Expense claims", "slug": "expense-claims", "description": "",
            "review_queue": queue.pk, "qa_queue": "", "automate_qa_rate": "0.1",
            "optimize_qa_rate": "0.02",
            "reason_codes": "wrong-amount: The amount is wrong\nnot-claimable: Not claimable",
            "summary_fields": "output.amount",
            "input_schema": "", "output_schema": json.dumps(
                {"type": "object", "properties": {"amount": {"type": "number"}}})}
    data.update(values)
    return data


def test_a_manager_sets_up_a_use_case_with_labelled_reason_codes(browser):
    queue = QueueFactory(slug="claims-review")

    response = browser.post(reverse("use-case-create"), use_case_form(queue))

    assert response.status_code == 302
    use_case = UseCase.objects.get(slug="expense-claims")
    assert use_case.reason_codes == [{"code": "wrong-amount", "label": "The amount is wrong"},
                                     {"code": "not-claimable", "label": "Not claimable"}]
    assert (use_case.stage, verbs()) == ("audit", ["use_case.created"])


@pytest.mark.parametrize(("values", "field", "words"), [
    ({"reason_codes": "misread\nillegible"}, "reason_codes", "write it as"),
    ({"output_schema": '{"type": "thing"}'}, "output_schema", "Not a valid JSON Schema"),
    ({"input_schema": '{"type": '}, "input_schema", "Not JSON"),
    ({"summary_fields": "output.vendor"}, "summary_fields", "has no field"),
    ({"automate_qa_rate": "10"}, "automate_qa_rate", "less than or equal to 1"),
])
def test_a_use_case_in_a_bad_shape_is_refused_beside_the_field(browser, values, field, words):
    response = browser.post(reverse("use-case-create"),
                            use_case_form(QueueFactory(slug="claims-review"), **values))

    assert response.status_code == 400
    assert words in " ".join(response.context["form"].errors[field])
    assert not UseCase.objects.exists() and verbs() == []


def test_editing_a_use_case_records_only_what_changed(browser):
    use_case = UseCaseFactory(slug="expense-claims")
    form = use_case_form(use_case.review_queue, qa_queue=use_case.qa_queue.pk,
                         name=use_case.name, reason_codes="wrong-amount: The amount is wrong\n"
                                                          "policy: Against policy",
                         summary_fields="", output_schema="")
    del form["slug"]
    form["automate_qa_rate"] = "0.25"

    response = browser.post(reverse("use-case-edit", args=[use_case.slug]), form)

    assert response.status_code == 302
    event = AuditEvent.objects.get()
    assert event.data["after"] == {"automate_qa_rate": 0.25}


@pytest.mark.parametrize("name", ["ai-systems", "ai-system-create", "use-case-create"])
def test_a_reviewer_is_refused_the_onboarding_pages(client, db, name):
    client.force_login(UserFactory(username="rita"))

    assert client.get(reverse(name)).status_code == 403


def test_a_reviewer_cannot_issue_a_key(client, db):
    system = AiSystemFactory(slug="receipt-reader")
    client.force_login(UserFactory(username="rita"))

    response = client.post(reverse("ai-system-issue-key", args=[system.slug]), {"key-name": "x"})

    assert response.status_code == 403 and not AiSystemAPIKey.objects.exists()


# --- the Accountable's approval -------------------------------------------------------------

@pytest.fixture
def proposed(db, manager):
    olivia = UserFactory(username="olivia")
    use_case = UseCaseFactory(slug="expense-claims", owner=olivia)
    use_case.review_queue.members.add(olivia)
    policy = policies.policy_create_draft(
        use_case=use_case, text="Review everything unsure.", author=manager,
        rules=[RuleSpec(name="unsure", description="Unsure", expression="confidence < 0.9",
                        action="review")])
    policies.policy_propose(policy=policy, actor=manager)
    return olivia, use_case, policy


def test_the_accountable_approves_and_activates_with_one_button(client, proposed):
    olivia, use_case, policy = proposed
    client.force_login(olivia)
    page = client.get(reverse("use-case", args=[use_case.slug])).content.decode()
    assert "Approve and activate version 1" in page

    client.post(reverse("policy-approve-and-activate", args=[use_case.slug, 1]))

    assert PolicyVersion.objects.get(pk=policy.pk).status == PolicyStatus.ACTIVE
    assert verbs()[-2:] == ["policy.approved", "policy.activated"]


def test_an_approved_version_waiting_to_go_live_is_activated_with_one_button(client, proposed):
    olivia, use_case, policy = proposed
    policies.policy_approve(policy=policy, actor=olivia)
    client.force_login(olivia)
    assert "Activate version 1" in client.get(
        reverse("use-case", args=[use_case.slug])).content.decode()

    client.post(reverse("policy-approve-and-activate", args=[use_case.slug, 1]))

    assert PolicyVersion.objects.get(pk=policy.pk).status == PolicyStatus.ACTIVE


def test_the_author_sees_no_button_and_cannot_approve(browser, proposed):
    _, use_case, policy = proposed
    page = browser.get(reverse("use-case", args=[use_case.slug])).content.decode()
    assert "Approve and activate" not in page

    response = browser.post(reverse("policy-approve-and-activate", args=[use_case.slug, 1]),
                            follow=True)

    assert PolicyVersion.objects.get(pk=policy.pk).status == PolicyStatus.PROPOSED
    assert "Only the use case&#x27;s Accountable owner (olivia)" in response.content.decode()


def test_someone_outside_the_use_case_gets_404(client, proposed):
    client.force_login(UserFactory(username="outsider"))

    refused = client.post(reverse("policy-approve-and-activate", args=["expense-claims", 1]))
    assert refused.status_code == 404
    assert RaciAssignment.objects.filter(activity=DomainActivity.POLICY_CHANGE,
                                         role=RaciRole.ACCOUNTABLE).count() == 1
