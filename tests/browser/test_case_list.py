"""Finding cases and acting on many: a reviewer searches the case list by a vendor's
name; a manager ticks cases and reassigns them, one of which someone cancelled
meanwhile, and reads what happened to each."""

import os

import pytest
from playwright.sync_api import expect

from tests.browser.workbench import SCREENSHOTS, WIDE
from workflows.models import Case, CaseState
from workflows.services import transitions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORDINARY = "inv-2026-000123"
FOUR_EYES = "inv-2026-000124"  # from Nordlicht AG


def keep(page, name: str) -> None:
    """docs/screenshots/, as tests/browser/test_screenshots.py writes them, when asked."""
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        page.set_viewport_size(WIDE)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True,
                        animations="disabled", caret="hide")


def test_a_reviewer_finds_a_case_by_the_vendor_named_in_its_input(
        page, live_server, bench, sign_in):
    sign_in(page, bench.reviewer)
    banner = page.get_by_role("navigation", name="Main")
    banner.get_by_role("link", name="Cases", exact=True).click()
    page.get_by_label("Search").fill("nordlicht")
    page.get_by_role("button", name="Show cases").click()

    rows = page.locator(".case-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(FOUR_EYES)
    keep(page, "case-list-search")

    page.get_by_label("Keep these filters as").fill("Nordlicht")
    page.get_by_role("button", name="Save view").click()
    expect(page.get_by_role("status")).to_contain_text("Saved this view as “Nordlicht”")
    page.get_by_role("link", name="Clear").click()
    expect(page.locator(".case-table tbody tr")).to_have_count(3)
    page.get_by_role("link", name="Nordlicht").click()
    expect(page.locator(".case-table tbody tr")).to_have_count(1)

    page.get_by_label("Search").fill("ab")
    page.get_by_role("button", name="Show cases").click()
    expect(page.locator("#f-search-error")).to_have_text(
        "Type at least 3 characters of an external id, a title or a value to search for.")


def test_a_manager_reassigns_ticked_cases_and_sees_the_one_cancelled_meanwhile(
        page, live_server, bench, sign_in):
    ordinary, four_eyes = bench.case(ORDINARY), bench.case(FOUR_EYES)
    sign_in(page, bench.manager)
    page.goto(f"{live_server.url}/cases/?queue=invoice-review&assignee=none")
    page.get_by_label(f"Tick {ordinary.label}").check()
    page.get_by_label(f"Tick {four_eyes.label}").check()
    page.get_by_label("With the ticked cases").select_option("reassign")
    page.get_by_label("Give to").select_option(label="Bob Okafor (bob)")
    keep(page, "case-list-bulk")
    # Someone else cancels one of them while the manager decides.
    transitions.cancel(case_id=four_eyes.pk, user=bench.manager, reason="Sent twice")
    page.get_by_role("button", name="Apply to ticked cases").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Reassign: 2 cases")
    expect(page.locator(".page-head")).to_contain_text("1 done, 1 in conflict, 0 refused")
    done = page.locator(".bulk-result--done")
    expect(done).to_contain_text(ORDINARY)
    expect(page.locator(".bulk-result--conflict")).to_contain_text("cancelled")
    keep(page, "case-list-bulk-results")
    assert Case.objects.get(pk=ordinary.pk).assignee == bench.second_reviewer
    assert Case.objects.get(pk=four_eyes.pk).state == CaseState.CANCELLED

    page.get_by_role("link", name="Back to the list").click()
    expect(page).to_have_url(f"{live_server.url}/cases/?queue=invoice-review&assignee=none")
