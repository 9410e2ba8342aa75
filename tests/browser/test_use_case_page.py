"""A manager finds a use case from the top bar and reads who owns its decisions.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/use-case.png``.
"""

import os
import re

import pytest
from playwright.sync_api import expect

from exceptions_app.activities import DomainActivity
from tests.browser.workbench import NARROW, SCREENSHOTS
from workflows.actors import SYSTEM
from workflows.models import Activity, Process, RaciRole
from workflows.services import raci

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def owned_bench(bench):
    """The workbench's invoice use case with a process whose matrix names its owners."""
    process = Process.objects.create(slug="invoice-approval", name="Invoice approval")
    bench.use_case.process = process
    bench.use_case.description = ("Supplier invoices read by the extractor: paid when they "
                                  "match their purchase order, checked by people otherwise.")
    bench.use_case.save()
    owner = bench.owner
    for activity, role, people in [
            (Activity.REVIEW, RaciRole.RESPONSIBLE, [bench.reviewer, bench.second_reviewer]),
            (Activity.REVIEW, RaciRole.ACCOUNTABLE, [owner]),
            (Activity.ESCALATION, RaciRole.ACCOUNTABLE, [owner]),
            (Activity.ESCALATION, RaciRole.INFORMED, [bench.manager]),
            (DomainActivity.POLICY_CHANGE, RaciRole.ACCOUNTABLE, [owner]),
            (DomainActivity.POLICY_CHANGE, RaciRole.CONSULTED, [bench.manager])]:
        raci.set_assignments(process=process, activity=activity, role=role, users=people,
                             actor=SYSTEM)
    return bench


def test_a_manager_reaches_the_use_case_from_the_nav_and_sees_who_owns_it(
        page, live_server, owned_bench, sign_in):
    sign_in(page, owned_bench.manager)

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Use cases").click()
    expect(page.get_by_role("heading", name="Use cases", level=1)).to_be_visible()
    expect(nav.get_by_role("link", name="Use cases")).to_have_attribute("aria-current", "page")
    page.get_by_role("link", name="Invoice approval").click()

    expect(page.get_by_role("heading", name="Invoice approval", level=1)).to_be_visible()
    # The policy as the business wrote it, and its rules in words.
    policy = page.get_by_role("region", name="The policy (v3)")
    expect(policy.get_by_role("heading", name="Invoice approval policy")).to_be_visible()
    expect(policy).to_contain_text("Invoices are paid when they match their purchase order")
    rules = page.get_by_role("region", name="How the policy is enforced")
    expect(rules.get_by_role("listitem")).to_have_count(5)  # four rules and the default
    expect(rules.get_by_role("listitem").nth(1)).to_contain_text(
        "Over 10,000: a second person confirms the decision")
    # The answer to "who owns this decision?".
    owners = page.get_by_role("region", name="Who owns this decision?")
    review = owners.get_by_role("row", name=re.compile("^Review"))
    expect(review).to_contain_text("Alice Moreau, Bob Okafor")
    expect(review).to_contain_text("Olivia Owner")
    expect(page.get_by_text("Business owner (Accountable): Olivia Owner")).to_be_visible()
    # The data contract folds away until asked for.
    contract = page.get_by_role("region", name="Data contract")
    output = contract.locator("summary", has_text=re.compile("^Output"))
    expect(contract.get_by_role("term").filter(has_text="Amount")).to_be_hidden()
    output.click()
    expect(contract.get_by_role("term").filter(has_text="Amount")).to_be_visible()
    output.click()

    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "use-case.png"), full_page=True,
                        animations="disabled", caret="hide")

    owners.get_by_role("link", name="Edit").click()
    expect(page).to_have_url(f"{live_server.url}/raci/invoice-approval/")
    expect(nav.get_by_role("link", name="RACI")).to_have_attribute("aria-current", "page")


def test_the_use_case_page_and_the_nav_fit_a_narrow_screen(live_server, owned_bench, sign_in,
                                                          new_page, tmp_path):
    page = sign_in(new_page(viewport=NARROW), owned_bench.manager)
    page.goto(f"{live_server.url}/use-cases/invoice-approval/")

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], "the page scrolls sideways"
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Home", "Next case", "Use cases", "Consults", "Availability", "Notifications",
                 "Dashboard", "RACI", "Delivery log"):
        expect(nav.get_by_text(name, exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="Who owns this decision?")).to_be_visible()
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        # For a look only (docs/screenshots/ keeps the wide one): the top, and the matrix.
        page.screenshot(path=str(tmp_path / "use-case-narrow-top.png"),
                        animations="disabled", caret="hide")
        page.get_by_role("region", name="Who owns this decision?").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "use-case-narrow-raci.png"),
                        animations="disabled", caret="hide")
        print("narrow screenshots:", tmp_path)
