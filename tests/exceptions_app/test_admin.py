"""The domain's admin writes through the same audited services as the pages and the API
(I7): each save by a superuser writes exactly one audit event with before and after;
rows only services write are read-only and refuse a POST."""

import pytest
from django.urls import reverse

from exceptions_app.models import AiSystem, AiSystemAPIKey, PolicyStatus, PolicyVersion, UseCase
from tests.exceptions_app.factories import (
    AiSystemFactory,
    PolicyVersionFactory,
    RuleFactory,
    UseCaseFactory,
)
from tests.factories import QueueFactory, UserFactory
from workflows.models import AuditEvent


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, root):
    client.force_login(root)
    return client


def events(object_type):
    return list(AuditEvent.objects.filter(object_type=object_type).order_by("id"))


def use_case_form(use_case=None, **values):
    queue = use_case.review_queue if use_case else QueueFactory(slug="invoice-review")
    data = {"slug": "invoice-approval", "name": "Invoice approval", "description": "",
            "input_schema": "null", "output_schema": "null",
            "reason_codes": '[{"code": "po-mismatch", "label": "Amount does not match"}]',
            "process": "", "review_queue": queue.pk, "qa_queue": "",
            "automate_qa_rate": 0.1, "optimize_qa_rate": 0.02}
    if use_case is not None:
        data.update(slug=use_case.slug, name=use_case.name,
                    reason_codes='[{"code": "wrong-amount", "label": "The amount is wrong"}, '
                                 '{"code": "policy", "label": "Against policy"}]',
                    qa_queue=use_case.qa_queue_id)
    data.update(values)
    return data


# --- use cases ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_adding_a_use_case_in_the_admin_is_audited_once(admin_client):
    response = admin_client.post(reverse("admin:exceptions_app_usecase_add"), use_case_form())

    assert response.status_code == 302
    use_case = UseCase.objects.get(slug="invoice-approval")
    event, = events("use_case")
    assert (event.verb, event.object_id, event.actor_label) == (
        "use_case.created", str(use_case.pk), "root")
    assert event.data["before"] is None and event.data["after"]["name"] == "Invoice approval"


@pytest.mark.django_db
def test_changing_a_use_case_in_the_admin_is_audited_once_with_before_and_after(admin_client):
    use_case = UseCaseFactory(automate_qa_rate=0.1)

    response = admin_client.post(
        reverse("admin:exceptions_app_usecase_change", args=[use_case.pk]),
        use_case_form(use_case, automate_qa_rate=0.25))

    assert response.status_code == 302
    assert UseCase.objects.get(pk=use_case.pk).automate_qa_rate == 0.25
    event, = events("use_case")
    assert event.verb == "use_case.changed"
    assert event.data["before"] == {"automate_qa_rate": 0.1}
    assert event.data["after"] == {"automate_qa_rate": 0.25}


@pytest.mark.django_db
def test_the_admin_refuses_reason_codes_as_a_plain_list_of_strings(admin_client):
    use_case = UseCaseFactory()

    response = admin_client.post(
        reverse("admin:exceptions_app_usecase_change", args=[use_case.pk]),
        use_case_form(use_case, reason_codes='["po-mismatch", "duplicate"]'))

    assert response.status_code == 200  # the form again, with the error at the field
    assert "reason_codes must be a list of objects like" in response.content.decode()
    assert UseCase.objects.get(pk=use_case.pk).reason_code_values == ["wrong-amount", "policy"]
    assert events("use_case") == []


@pytest.mark.django_db
def test_a_use_case_cannot_be_deleted_in_the_admin(admin_client):
    use_case = UseCaseFactory()

    response = admin_client.post(
        reverse("admin:exceptions_app_usecase_delete", args=[use_case.pk]), {"post": "yes"})

    assert response.status_code == 403 and UseCase.objects.filter(pk=use_case.pk).exists()


# --- AI systems and their keys ----------------------------------------------------------------

def ai_system_form(ai_system, **values):
    data = {"slug": ai_system.slug, "name": ai_system.name, "owner": ai_system.owner_id,
            "callback_url": ai_system.callback_url, "is_active": "on",
            "use_cases": [use_case.pk for use_case in ai_system.use_cases.all()]}
    data.update(values)
    return data


@pytest.mark.django_db
def test_changing_an_ai_systems_callback_url_in_the_admin_is_audited_once(admin_client):
    ai_system = AiSystemFactory(callback_url="https://old.example.com/hook")

    response = admin_client.post(
        reverse("admin:exceptions_app_aisystem_change", args=[ai_system.pk]),
        ai_system_form(ai_system, callback_url="https://new.example.com/hook"))

    assert response.status_code == 302
    event, = events("ai_system")
    assert event.verb == "ai_system.changed"
    assert event.data["before"] == {"callback_url": "https://old.example.com/hook"}
    assert event.data["after"] == {"callback_url": "https://new.example.com/hook"}


@pytest.mark.django_db
def test_adding_an_ai_system_in_the_admin_is_audited_once(admin_client, root):
    use_case = UseCaseFactory()
    data = {"slug": "invoice-bot", "name": "Invoice bot", "owner": root.pk,
            "callback_url": "", "is_active": "on", "use_cases": [use_case.pk]}

    response = admin_client.post(reverse("admin:exceptions_app_aisystem_add"), data)

    assert response.status_code == 302
    ai_system = AiSystem.objects.get(slug="invoice-bot")
    assert list(ai_system.use_cases.all()) == [use_case]
    event, = events("ai_system")
    assert event.verb == "ai_system.created"
    assert event.data["after"]["use_cases"] == [use_case.slug]


@pytest.mark.django_db
def test_document_hosts_are_edited_in_the_admin_and_a_url_is_refused_in_words(admin_client,
                                                                              root):
    ai_system = AiSystemFactory(owner=root)
    data = {"slug": ai_system.slug, "name": ai_system.name, "owner": root.pk,
            "callback_url": "", "is_active": "on"}
    change = reverse("admin:exceptions_app_aisystem_change", args=[ai_system.pk])

    refused = admin_client.post(change, {**data, "document_hosts": '["https://docs.example.com/"]'})
    saved = admin_client.post(change, {**data, "document_hosts": '["docs.example.com"]'})

    assert "is not a host name" in refused.content.decode()
    assert saved.status_code == 302
    assert AiSystem.objects.get(pk=ai_system.pk).document_hosts == ["docs.example.com"]
    event, = events("ai_system")
    assert event.data["after"] == {"document_hosts": ["docs.example.com"]}


@pytest.mark.django_db
def test_rotating_the_signing_secret_is_audited_without_the_secret(admin_client):
    ai_system = AiSystemFactory()
    ai_system.signing_secret = "whsec_old"
    ai_system.save()

    response = admin_client.post(reverse("admin:exceptions_app_aisystem_changelist"), {
        "action": "rotate_signing_secret", "_selected_action": [ai_system.pk]})

    assert response.status_code == 302
    secret = AiSystem.objects.get(pk=ai_system.pk).signing_secret
    assert secret.startswith("whsec_") and secret != "whsec_old"
    event, = events("ai_system")
    assert event.verb == "ai_system.secret_rotated"
    assert secret not in str(event.data) and "whsec_old" not in str(event.data)


@pytest.mark.django_db
def test_keys_are_issued_and_revoked_in_the_admin_through_audited_services(admin_client):
    ai_system = AiSystemFactory()

    issued = admin_client.post(reverse("admin:exceptions_app_aisystemapikey_add"),
                               {"ai_system": ai_system.pk, "name": "production"})
    api_key = AiSystemAPIKey.objects.get(ai_system=ai_system)
    revoked = admin_client.post(reverse("admin:exceptions_app_aisystemapikey_changelist"), {
        "action": "revoke", "_selected_action": [api_key.pk]})

    assert issued.status_code == 302 and revoked.status_code == 302
    assert AiSystemAPIKey.objects.get(pk=api_key.pk).revoked
    assert [e.verb for e in events("ai_system_api_key")] == ["api_key.issued",
                                                             "api_key.revoked"]


@pytest.mark.django_db
def test_a_key_cannot_be_edited_or_deleted_in_the_admin(admin_client):
    ai_system = AiSystemFactory()
    api_key, _ = AiSystemAPIKey.objects.create_key(name="production", ai_system=ai_system)

    changed = admin_client.post(
        reverse("admin:exceptions_app_aisystemapikey_change", args=[api_key.pk]),
        {"name": "renamed", "ai_system": ai_system.pk})
    deleted = admin_client.post(
        reverse("admin:exceptions_app_aisystemapikey_delete", args=[api_key.pk]),
        {"post": "yes"})

    assert changed.status_code == 403 and deleted.status_code == 403
    assert AiSystemAPIKey.objects.get(pk=api_key.pk).name == "production"


# --- policy drafts ----------------------------------------------------------------------------

def policy_form(policy=None, *, use_case=None, rules=(), **values):
    data = {"use_case": use_case.pk if use_case else "", "text": "Check everything.",
            "default_action": "review",
            "default_reason": "No rule matched: the policy's default applies",
            "default_priority": 50,
            "rules-TOTAL_FORMS": len(rules), "rules-INITIAL_FORMS": 0,
            "rules-MIN_NUM_FORMS": 0, "rules-MAX_NUM_FORMS": 1000}
    if policy is not None:
        data.update(text=policy.text, default_action=policy.default_action)
        data["rules-INITIAL_FORMS"] = sum(1 for rule in rules if getattr(rule, "pk", None))
    for index, rule in enumerate(rules):
        if getattr(rule, "pk", None):
            data[f"rules-{index}-id"] = rule.pk
            rule = {"position": rule.position, "name": rule.name,
                    "description": rule.description, "expression": rule.expression,
                    "action": rule.action, "priority": rule.priority}
        data.update({f"rules-{index}-{name}": value for name, value in rule.items()})
    data.update(values)
    return data


LOW_CONFIDENCE = {"position": 1, "name": "low-confidence", "description": "Unsure: check",
                  "expression": "confidence < 0.9", "action": "review", "priority": 70}


@pytest.mark.django_db
def test_adding_a_policy_draft_in_the_admin_is_audited_once(admin_client, root):
    use_case = UseCaseFactory()

    response = admin_client.post(reverse("admin:exceptions_app_policyversion_add"),
                                 policy_form(use_case=use_case, rules=[LOW_CONFIDENCE]))

    assert response.status_code == 302
    policy = PolicyVersion.objects.get(use_case=use_case)
    assert (policy.status, policy.created_by) == (PolicyStatus.DRAFT, root)
    assert [rule.name for rule in policy.rules.all()] == ["low-confidence"]
    event, = events("policy_version")
    assert event.verb == "policy.drafted" and event.data["rules"][0]["name"] == "low-confidence"


@pytest.mark.django_db
def test_the_admin_refuses_a_rule_comparing_confidence_with_text(admin_client):
    """The issue's rule: it failed on every decision and sent everything to review."""
    use_case = UseCaseFactory()

    response = admin_client.post(reverse("admin:exceptions_app_policyversion_add"),
                                 policy_form(use_case=use_case, rules=[
                                     {**LOW_CONFIDENCE, "expression": 'confidence < "0.9"'}]))

    assert response.status_code == 200
    assert "compares a number (confidence) and text" in response.content.decode()
    assert not PolicyVersion.objects.exists()


@pytest.mark.django_db
def test_editing_a_policy_draft_in_the_admin_is_audited_once_with_before_and_after(
        admin_client):
    policy = PolicyVersionFactory(status=PolicyStatus.DRAFT, text="Old words.")
    rule = RuleFactory(policy=policy, position=1, name="low-confidence",
                       expression="confidence < 0.9", action="review")

    response = admin_client.post(
        reverse("admin:exceptions_app_policyversion_change", args=[policy.pk]),
        policy_form(policy, rules=[rule], text="New words."))

    assert response.status_code == 302
    assert PolicyVersion.objects.get(pk=policy.pk).text == "New words."
    event, = events("policy_version")
    assert event.verb == "policy.edited"
    assert (event.data["before"]["text"], event.data["after"]["text"]) == ("Old words.",
                                                                           "New words.")


@pytest.mark.django_db
def test_an_active_policy_cannot_be_changed_in_the_admin(admin_client):
    policy = PolicyVersionFactory(status=PolicyStatus.ACTIVE, text="The rules.")

    response = admin_client.post(
        reverse("admin:exceptions_app_policyversion_change", args=[policy.pk]),
        policy_form(policy, text="Rewritten."))

    assert response.status_code == 403
    assert PolicyVersion.objects.get(pk=policy.pk).text == "The rules."


# --- read-only rows ---------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("name", ["decision", "labelledexample"])
def test_decisions_and_labelled_examples_cannot_be_added_in_the_admin(admin_client, name):
    response = admin_client.post(reverse(f"admin:exceptions_app_{name}_add"), {})

    assert response.status_code == 403
