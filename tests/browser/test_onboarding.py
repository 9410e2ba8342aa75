"""From an empty database to routed decisions with one YAML file and one approval.

A manager applies the team's governance file, issues the new AI system's key on its
page (shown once), the Accountable approves and activates the proposed policy on the
use case's page, and the AI system's first decision is routed by it to the review queue.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/ai-system.png`` and
``docs/screenshots/use-case-editor.png``.
"""

import os
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import Group
from django.core.management import call_command
from playwright.sync_api import expect

from exceptions_app.models import PolicyStatus, PolicyVersion
from tests.browser.workbench import SCREENSHOTS
from tests.factories import UserFactory, make_manager

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "governance-example.yaml"


def screenshot(page, name: str) -> None:
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True, animations="disabled",
                        caret="hide")


def test_one_file_and_one_approval_take_a_new_team_to_routed_decisions(
        page, live_server, new_page, sign_in):
    # Only people exist: they sign in; the file says what they do.
    reviewers = Group.objects.create(name="claims-reviewers")
    rita = UserFactory(username="rita", first_name="Rita", last_name="Reviewer")
    rita.groups.add(reviewers)
    manager = make_manager(username="mia", first_name="Mia", last_name="Manager")
    owner = UserFactory(username="olivia", first_name="Olivia", last_name="Owner")

    call_command("governance", "apply", str(EXAMPLE), "--as", "mia", stdout=StringIO())

    # The manager gives the new AI system its key, shown once.
    sign_in(page, manager)
    page.goto(f"{live_server.url}/use-cases/")
    page.get_by_role("link", name="AI systems").click()
    page.get_by_role("link", name="Receipt reader").click()
    expect(page.get_by_role("heading", name="Receipt reader", level=1)).to_be_visible()
    page.get_by_label("What the key is for").fill("production")
    page.get_by_role("button", name="Issue a key").click()
    key = page.get_by_test_id("new-key").inner_text()
    expect(page.get_by_role("alert")).to_contain_text("shown once")
    screenshot(page, "ai-system.png")

    # Until the owner approves, the use case has no active policy: decisions are refused.
    decision = {"use_case": "expense-claims", "external_id": "claim-0001",
                "model_version": "receipts-1.4", "confidence": 0.71,
                "input": {"employee": "Ann Example", "category": "meals",
                          "receipt_total": 42.5},
                "output": {"action": "approve", "amount": 42.5}}
    headers = {"Authorization": f"Api-Key {key}"}
    refused = requests.post(f"{live_server.url}/api/v1/decisions/", json=decision,
                            headers=headers, timeout=10)
    assert refused.status_code == 400, refused.text

    # The Accountable approves and activates the proposed version in one step.
    owner_page = new_page()
    sign_in(owner_page, owner)
    owner_page.goto(f"{live_server.url}/use-cases/expense-claims/")
    waiting = owner_page.get_by_role("region", name="Waiting for approval")
    expect(waiting).to_contain_text("Version 1, drafted by Mia Manager")
    waiting.get_by_role("button", name="Approve and activate version 1").click()
    expect(owner_page.get_by_role("status")).to_contain_text("Version 1 is approved and active")
    expect(owner_page.get_by_role("region", name="The policy (v1)")).to_contain_text(
        "Claims up to 250 EUR")
    assert PolicyVersion.objects.get(use_case__slug="expense-claims").status == (
        PolicyStatus.ACTIVE)

    # The AI system's decision is routed by the new policy: unsure, so to review.
    answer = requests.post(f"{live_server.url}/api/v1/decisions/", json=decision,
                           headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["route"], body["stage"], body["case"]["queue"]) == (
        "review", "audit", "claims-review")
    assert "The reader is unsure of the receipt" in [r["text"] for r in body["reasons"]]

    # The reviewer finds it waiting in the team's queue.
    reviewer_page = new_page()
    sign_in(reviewer_page, rita)
    expect(reviewer_page.get_by_text("Expense claims review").first).to_be_visible()
    reviewer_page.goto(f"{live_server.url}/cases/{body['case']['id']}/")
    expect(reviewer_page.get_by_text("The reader is unsure of the receipt").first).to_be_visible()

    # The use case editor, as the manager sees it.
    page.goto(f"{live_server.url}/use-cases/expense-claims/edit/")
    expect(page.get_by_label("Reason codes")).to_have_value(
        "wrong-amount: The reader got the amount wrong\n"
        "not-claimable: Not a claimable expense\n"
        "missing-receipt: The receipt is missing or unreadable")
    screenshot(page, "use-case-editor.png")
