"""A policy release in the browser: the drafter writes v2 in the editor (a rule checked
live as it is typed), proposes it; the owner reads the diff, approves and activates it.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/policy-editor.png`` and
``docs/screenshots/policy-diff.png``.
"""

import os

import pytest
from playwright.sync_api import expect

from exceptions_app.demo import data
from exceptions_app.models import PolicyStatus, PolicyVersion
from exceptions_app.services import policies
from tests.browser.workbench import SCREENSHOTS
from tests.exceptions_app.factories import UseCaseFactory
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def release(transactional_db):
    owner = UserFactory(username="olivia", first_name="Olivia", last_name="Owner")
    drafter = UserFactory(username="dana", first_name="Dana", last_name="Drafter")
    use_case = UseCaseFactory(slug="invoice-approval", name="Invoice approval", owner=owner,
                              drafter=drafter, input_schema=data.INPUT_SCHEMA,
                              output_schema=data.OUTPUT_SCHEMA)
    first = policies.policy_create_draft(
        use_case=use_case, text=data.POLICY_TEXT, rules=data.POLICY_RULES, author=drafter,
        default_reason=data.DEFAULT_REASON)
    policies.policy_propose(policy=first, actor=drafter)
    policies.policy_approve(policy=first, actor=owner)
    policies.policy_activate(policy=first, actor=owner)
    return owner, drafter


def screenshot(page, name: str) -> None:
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True, animations="disabled",
                        caret="hide")


def test_a_draft_is_written_proposed_approved_by_the_owner_and_activated(
        page, new_page, live_server, sign_in, release):
    owner, drafter = release
    sign_in(page, drafter)

    page.goto(f"{live_server.url}/use-cases/invoice-approval/policies/")
    page.get_by_role("button", name="Start a new draft").click()
    expect(page.get_by_role("heading", name="Invoice approval policy, draft v2")).to_be_visible()
    page.get_by_label("The policy, in business language (Markdown)").fill(
        data.POLICY_TEXT.replace("version 1", "version 2").replace(
            "under 0.9", "under 0.95"))

    unsure = page.locator('textarea[name="rules-1-expression"]')
    unsure.fill('confidence < "0.95"')
    expect(page.locator("#rules-1-check")).to_contain_text(
        "compares a number (confidence) and text")
    unsure.fill("confidence < 0.95")
    expect(page.locator("#rules-1-check")).to_contain_text("Fits the data contract.")

    page.get_by_role("button", name="Add a rule").click()
    page.locator('input[name="rules-6-name"]').fill("many-lines")
    page.locator('input[name="rules-6-description"]').fill("More than 20 lines: a person checks")
    page.locator('input[name="rules-6-ORDER"]').fill("2")
    new_rule = page.locator('textarea[name="rules-6-expression"]')
    new_rule.fill("size(input.line_itemz) > 20")
    expect(page.locator("#rules-6-check")).to_contain_text(
        "the input schema has no field 'line_itemz'")
    screenshot(page, "policy-editor.png")
    new_rule.fill("size(input.line_items) > 20")
    expect(page.locator("#rules-6-check")).to_contain_text("Fits the data contract.")
    page.get_by_role("button", name="Save and propose for approval").click()
    expect(page.get_by_text("v2 proposed for approval.")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)  # not the author's

    owners_page = new_page()
    sign_in(owners_page, owner)
    owners_page.goto(f"{live_server.url}/policies/approvals/")
    owners_page.get_by_role("link", name="What changed").click()
    expect(owners_page.get_by_role("heading", name="What changed from v1 to v2")).to_be_visible()
    expect(owners_page.locator(".rule-change--added")).to_contain_text("many-lines")
    expect(owners_page.locator(".rule-change--changed")).to_contain_text("confidence < 0.95")
    expect(owners_page.locator(".text-diff__line--added").first).to_contain_text("version 2")
    screenshot(owners_page, "policy-diff.png")

    owners_page.goto(f"{live_server.url}/use-cases/invoice-approval/policies/2/")
    owners_page.get_by_role("button", name="Approve").click()
    expect(owners_page.get_by_text("it is now approved")).to_be_visible()
    owners_page.get_by_role("button", name="Activate").click()
    expect(owners_page.get_by_text("it is now active")).to_be_visible()

    assert dict(PolicyVersion.objects.values_list("number", "status")) == {
        1: PolicyStatus.RETIRED, 2: PolicyStatus.ACTIVE}
    second = PolicyVersion.objects.get(number=2)
    assert (second.created_by, second.approved_by) == (drafter, owner)
    assert list(second.rules.order_by("position").values_list("name", flat=True))[:3] == [
        "large-invoice", "many-lines", "low-confidence"]
