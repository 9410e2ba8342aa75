"""The operator's commands: seed_demo, issue_api_key and simulate."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from exceptions_app.demo.simulation import synthetic_decisions
from exceptions_app.models import (
    AiSystem,
    AiSystemAPIKey,
    Decision,
    LabelledExample,
    PolicyStatus,
    PolicyVersion,
    Rule,
    UseCase,
)
from exceptions_app.services.intake import submit_decisions
from workflows.models import AuditEvent, Case, Queue


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def seeded_state() -> dict:
    """Everything seed_demo writes, in a comparable form."""
    return {
        "users": list(get_user_model().objects.order_by("username")
                      .values_list("username", "password", "email")),
        "groups": sorted(get_user_model().groups.through.objects
                         .values_list("user__username", "group__name")),
        "queues": list(Queue.objects.order_by("slug")
                       .values_list("slug", "name", "blind", "resolution_target")),
        "members": sorted(Queue.members.through.objects
                          .values_list("queue__slug", "user__username")),
        "use_cases": list(UseCase.objects.values_list("slug", "stage", "process__slug",
                                                      "review_queue__slug", "qa_queue__slug")),
        "policies": list(PolicyVersion.objects.values_list("use_case__slug", "number", "status",
                                                           "text")),
        "rules": list(Rule.objects.order_by("policy", "position")
                      .values_list("name", "expression", "action", "priority", "four_eyes")),
        "ai_systems": sorted(AiSystem.use_cases.through.objects
                             .values_list("aisystem__slug", "usecase__slug")),
        "decisions": Decision.objects.count(),
        "cases": Case.objects.count(),
        "audit_events": AuditEvent.objects.count(),
        "api_keys": AiSystemAPIKey.objects.count(),
    }


def invoice(external_id, *, confidence=0.96, amount=4094.0, po_amount=4100.0,
            vendor="ACME GmbH", action="approve"):
    return {
        "use_case": "invoice-approval", "external_id": external_id,
        "model_version": "invoice-extractor-3.2.1", "confidence": confidence,
        "input": {"vendor": "ACME GmbH", "invoice_number": f"AC-2026-{external_id}",
                  "po_number": "PO-448812", "po_amount": po_amount, "currency": "EUR",
                  "line_items": [{"description": "Toner cartridge, black", "quantity": 46,
                                  "unit_price": 89.0}]},
        "output": {"action": action, "amount": amount, "vendor": vendor},
        "explanation": "", "meta": {},
    }


@pytest.mark.django_db
def test_seed_demo_refuses_to_create_known_passwords_outside_the_demo(settings):
    settings.DEMO = False

    with pytest.raises(CommandError, match="only in the laptop demo"):
        run("seed_demo")

    assert not get_user_model().objects.filter(username="manager").exists()


@pytest.mark.django_db
def test_seed_demo_run_twice_changes_nothing():
    run("seed_demo")
    first = seeded_state()

    run("seed_demo", "--no-key")

    assert seeded_state() == first
    assert first["decisions"] == 64 + 36  # invoice-approval's and intercompany-invoices'
    assert first["api_keys"] == 1
    assert len(first["users"]) == 5  # reviewer, reviewer2, manager, auditor, admin
    manager = get_user_model().objects.get(username="manager")
    assert manager.has_perm("workflows.manage_cases")
    assert manager.check_password("manager-demo")
    assert not get_user_model().objects.get(username="reviewer").has_perm(
        "workflows.manage_cases")
    assert Queue.objects.get(slug="invoice-qa").blind


@pytest.mark.django_db
def test_seed_demo_says_why_a_callback_url_is_refused(settings):
    # Outside make demo, webhooks may not go to this machine (bin/demo allows it).
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    with pytest.raises(CommandError, match=r"127\.0\.0\.1 is a loopback address"):
        run("seed_demo", "--no-key", "--callback-url", "http://127.0.0.1:8001/webhooks/backstop")

    assert not AiSystem.objects.exists()


@pytest.mark.django_db
def test_seed_demo_issues_a_new_key_each_run():
    first = run("seed_demo", verbosity=0).strip()
    second = run("seed_demo", verbosity=0).strip()

    assert first != second
    assert AiSystemAPIKey.objects.filter(ai_system__slug="demo-ai").count() == 2


@pytest.mark.django_db
def test_seeded_policy_routes_invoices_as_its_text_says():
    run("seed_demo", "--no-key")
    policy = PolicyVersion.objects.get(use_case__slug="invoice-approval",
                                       status=PolicyStatus.ACTIVE)
    assert "two people" in policy.text and "under 5,000" in policy.text
    # (the invoice, its route, the rule that decided, the case's priority)
    expected = [
        (invoice("small"), "auto", "small-matching", None),
        (invoice("large", amount=62000.0, po_amount=62000.0), "review", "large-invoice", 90),
        (invoice("unsure", confidence=0.72), "review", "low-confidence", 70),
        (invoice("vendor", vendor="ACME Holding AG"), "review", "vendor-mismatch", 65),
        (invoice("over-po", amount=4300.0), "review", "po-mismatch", 60),
        (invoice("under-po", amount=3900.0), "review", "po-mismatch", 60),
        (invoice("hold", action="hold"), "review", "not-an-approval", 50),
        (invoice("mid", amount=12000.0, po_amount=12000.0), "review", None, 40),
    ]
    demo_ai = AiSystem.objects.get(slug="demo-ai")

    results = submit_decisions(ai_system=demo_ai, items=[item for item, *_ in expected])

    for result, (item, route, rule, priority) in zip(results, expected, strict=True):
        assert result.status == 201, (item["external_id"], result.errors)
        decision = result.decision
        assert (decision.route, decision.reasons[0]["rule"]) == (route, rule), item
        assert decision.policy_version == policy
        if priority is None:
            assert decision.case is None
        else:
            assert decision.case.priority == priority
            assert decision.case.queue.slug == "invoice-review"
            assert decision.case.requires_four_eyes == (rule == "large-invoice")


@pytest.mark.django_db
def test_issued_key_authenticates_its_ai_system():
    run("seed_demo", "--no-key")

    key = run("issue_api_key", "demo-ai", "--name", "pipeline", verbosity=0).strip()

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    response = client.post("/api/v1/decisions/", invoice("via-key"), format="json")
    assert response.status_code == 201, response.json()
    assert Decision.objects.get(external_id="via-key").ai_system.slug == "demo-ai"
    assert AiSystemAPIKey.objects.get(name="pipeline").ai_system.slug == "demo-ai"
    assert AuditEvent.objects.filter(verb="api_key.issued").count() == 1


@pytest.mark.django_db
def test_issue_api_key_for_an_unknown_system_is_a_clear_error():
    with pytest.raises(CommandError, match="no AI system 'nope'"):
        run("issue_api_key", "nope")
    assert not AiSystemAPIKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_simulate_posts_decisions_to_a_live_server(live_server):
    run("seed_demo", "--no-key")
    key = run("issue_api_key", "demo-ai", verbosity=0).strip()
    before = Decision.objects.count()

    summary = run("simulate", "--count", "12", "--rate", "0", "--error-rate", "0.3",
                  "--seed", "7", "--url", live_server.url, "--api-key", key, "--no-progress")

    assert Decision.objects.count() == before + 12
    assert Decision.objects.filter(external_id__startswith="sim-s7-").count() == 12
    assert "201: 12" in summary

    # The same seed posts the same external_ids: replays, through the batch endpoint.
    replay = run("simulate", "--count", "12", "--rate", "0", "--error-rate", "0.3",
                 "--seed", "7", "--batch-size", "5", "--url", live_server.url,
                 "--api-key", key, "--no-progress")

    assert "200: 12" in replay
    assert Decision.objects.count() == before + 12


@pytest.mark.django_db(transaction=True)
def test_simulated_reviewers_work_the_queues_through_the_api(live_server):
    run("seed_demo", "--no-key")
    key = run("issue_api_key", "demo-ai", verbosity=0).strip()
    tokens = [run("issue_user_token", name).strip() for name in ("reviewer", "reviewer2")]

    summary = run("simulate", "--count", "30", "--rate", "0", "--error-rate", "0.4",
                  "--seed", "5", "--url", live_server.url, "--api-key", key, "--no-progress",
                  "--reviewer-token", tokens[0], "--reviewer-token", tokens[1],
                  "--reviewer-accuracy", "1", "--reviewer-seconds", "0")

    truths = {s.body["external_id"]: s for s in
              synthetic_decisions(count=30, error_rate=0.4, seed=5)}
    labels = LabelledExample.objects.filter(decision__external_id__in=truths)
    assert labels.count() == Decision.objects.filter(
        external_id__in=truths, route="review").count() > 0
    for label in labels.select_related("decision"):
        truth = truths[label.decision.external_id]
        if truth.truth["action"] != "reject":  # a duplicate shows only in the history
            assert label.human_output == truth.truth
            assert label.verdict == ("corrected" if truth.wrong else "accepted")
    assert "judged right: 100%" in summary
    assert not Case.objects.filter(state__in=["open", "pending_approval"],
                                   queue__slug="invoice-review").exists()


def test_simulate_without_a_key_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("BACKSTOP_API_KEY", raising=False)
    with pytest.raises(CommandError, match="issue_api_key"):
        run("simulate", "--count", "1", "--api-key", "")
