"""What a reviewer sees and does in a real browser, from sign-in to a resolved case."""

import re

import pytest
from playwright.sync_api import expect

from exceptions_app.services.intake import submit_decisions
from tests.browser.workbench import NARROW, invoice
from workflows.models import CaseState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORDINARY = "inv-2026-000123"
FOUR_EYES = "inv-2026-000124"


def queue_card(page, name):
    return page.locator(".queue").filter(has=page.get_by_role("heading", name=name))


def test_reviewer_takes_the_next_case_corrects_a_field_and_the_next_one_opens(
        page, live_server, bench, sign_in):
    sign_in(page, bench.reviewer)
    expect(page.get_by_role("heading", name="Your queues")).to_be_visible()
    expect(queue_card(page, "Invoice review").locator(".stat__value").first).to_have_text("2")

    page.keyboard.press("n")  # the "Next case" shortcut

    case = bench.case(ORDINARY)
    page.wait_for_url(f"{live_server.url}/cases/{case.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice approval: {ORDINARY}")
    expect(page.get_by_text("Confidence under 0.9: a person checks the extraction")).to_be_visible()

    page.keyboard.press("c")  # correct: the output's fields appear, the first has focus
    amount = page.get_by_label("Amount", exact=True)
    expect(amount).to_be_visible()
    expect(amount).to_have_value("4180.0")
    amount.fill("4100")
    page.get_by_label("Reason code").select_option("wrong-amount")
    notes = page.get_by_label("Notes")
    notes.fill("Footer misread; a and r typed here are text, not shortcuts")
    expect(page.get_by_role("radio", name=re.compile("Correct"))).to_be_checked()
    page.get_by_role("button", name="Resolve the case").click()

    # Flow (on by default): the next waiting case opens, claimed for the reviewer.
    following = bench.case(FOUR_EYES)
    page.wait_for_url(f"{live_server.url}/cases/{following.pk}/")
    expect(page.get_by_role("status").first).to_contain_text(f"{ORDINARY} resolved")
    expect(page.get_by_text(f"Here is your next case: Invoice approval: {FOUR_EYES}.")
           ).to_be_visible()
    following.refresh_from_db()
    assert (following.state, following.assignee) == (CaseState.ASSIGNED, bench.reviewer)
    case.refresh_from_db()
    assert case.state == CaseState.RESOLVED
    assert case.resolution.output["amount"] == 4100.0
    assert case.resolution.notes.startswith("Footer misread")

    # On a case page too, n takes the next waiting case.
    page.keyboard.press("n")
    page.wait_for_url(re.compile(r"/cases/\d+/$"))
    expect(page).not_to_have_url(re.compile(rf"/cases/{following.pk}/$"))


def test_a_bad_correction_shows_every_problem_beside_its_field_at_once(
        page, live_server, bench, sign_in):
    case = bench.case(ORDINARY)
    sign_in(page, bench.reviewer)
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    page.get_by_role("button", name="Take this case").click()
    page.get_by_role("radio", name=re.compile("^Correct")).check()
    action = page.get_by_label("Action", exact=True)
    expect(action.locator("option")).to_have_text(["—", "Approve", "Hold", "Reject"])
    action.select_option("")
    page.get_by_label("Amount", exact=True).fill("-12")
    page.get_by_label("Currency", exact=True).select_option("")
    page.get_by_role("button", name="Resolve the case").click()

    expect(action).to_have_accessible_description(  # after the field's help text
        re.compile(r"Action: choose one of Approve, Hold, Reject\.$"))
    expect(page.get_by_label("Amount", exact=True)).to_have_accessible_description(
        "Amount must be 0 or more.")
    expect(page.get_by_label("Currency", exact=True)).to_have_accessible_description(
        "Currency: choose one of EUR, USD, GBP.")
    expect(page.get_by_label("Reason code")).to_have_accessible_description(
        re.compile("^Say why with a reason code: choose one of The amount was extracted "
                   r"wrongly \(wrong-amount\), No matching purchase order \(no-po\)"))
    for field in ("Action", "Amount", "Currency"):
        expect(page.get_by_label(field, exact=True)).to_have_attribute("aria-invalid", "true")
    expect(action).to_be_focused()  # the first field to fix
    case.refresh_from_db()
    assert case.state == CaseState.ASSIGNED


def test_four_eyes_approval_by_a_second_reviewer(page, live_server, bench, sign_in, new_page):
    case = bench.case(FOUR_EYES)
    sign_in(page, bench.reviewer)
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    page.get_by_role("button", name="Take this case").click()
    expect(page.get_by_role("heading", name="Your decision")).to_be_visible()
    page.keyboard.press("a")  # accept; focus moves to the submit button
    expect(page.get_by_role("button", name="Submit for approval")).to_be_focused()
    page.keyboard.press("Enter")
    # Flow: the other waiting case opens next.
    page.wait_for_url(f"{live_server.url}/cases/{bench.case(ORDINARY).pk}/")
    expect(page.get_by_role("status").first).to_contain_text("waiting for four-eyes approval")

    second = sign_in(new_page(), bench.second_reviewer)
    approvals = second.get_by_role("link", name=re.compile("Approvals"))
    expect(approvals).to_contain_text("1")
    approvals.click()
    row = second.locator(".approval").filter(has_text=FOUR_EYES)
    expect(row).to_contain_text("by Alice Moreau")
    # The figures being approved are on screen (the use case's summary fields).
    expect(row.locator(".approval__summary")).to_contain_text("Nordlicht AG")
    expect(row.locator(".approval__summary")).to_contain_text("12,400.00")
    row.get_by_role("button", name=re.compile("Approve")).click()

    expect(second.get_by_role("status")).to_contain_text("approved")
    expect(second.get_by_text("Nothing waits for your approval")).to_be_visible()
    second.goto(f"{live_server.url}/cases/{case.pk}/")
    expect(second.locator(".case-meta .badge").first).to_have_text("Resolved")
    expect(second.get_by_text("Approved by")).to_be_visible()
    case.refresh_from_db()
    assert case.state == CaseState.RESOLVED
    assert case.resolution.approved_by == bench.second_reviewer


def test_an_invalid_correction_shows_the_field_error(page, live_server, bench, sign_in):
    sign_in(page, bench.reviewer)
    page.get_by_role("button", name="Next case").click()
    page.wait_for_url(re.compile(r"/cases/\d+/$"))

    page.get_by_role("radio", name=re.compile("^Correct")).check()
    page.get_by_label("Amount", exact=True).fill("-5")
    page.get_by_label("Reason code").select_option("wrong-amount")
    page.get_by_role("button", name="Resolve the case").click()

    amount = page.get_by_label("Amount", exact=True)
    expect(amount).to_have_attribute("aria-invalid", "true")
    error = page.locator("#" + amount.get_attribute("aria-describedby").split()[-1])
    expect(error).to_have_text("Amount must be 0 or more.")
    expect(amount).to_have_value("-5")  # what was typed stays, to be fixed
    assert bench.case(ORDINARY).state == CaseState.ASSIGNED


def test_a_stale_page_shows_the_conflict_message(
        page, live_server, bench, sign_in, new_page):
    case = bench.case(ORDINARY)
    sign_in(page, bench.reviewer)
    page.get_by_role("button", name="Next case").click()
    page.wait_for_url(f"{live_server.url}/cases/{case.pk}/")

    # Meanwhile a manager escalates the case from their own browser.
    manager = sign_in(new_page(), bench.manager)
    manager.goto(f"{live_server.url}/cases/{case.pk}/")
    manager.locator("summary", has_text="Escalate").click()
    manager.get_by_label("Why escalate?").fill("The vendor called about this invoice")
    manager.get_by_role("button", name="Escalate", exact=True).click()
    expect(manager.get_by_role("status")).to_contain_text("escalated")

    page.get_by_role("radio", name=re.compile("^Accept")).check()
    page.get_by_role("button", name="Resolve the case").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(
        "This case changed since you opened it: Maria Lindqvist changed it.")
    expect(alert.get_by_role("listitem")).to_have_text(["Maria Lindqvist: escalated, just now"])
    alert.get_by_role("link", name="Reload the case").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_text("The vendor called about this invoice")).to_be_visible()
    case.refresh_from_db()
    assert case.state == CaseState.ESCALATED


def test_a_page_made_stale_in_another_tab_says_it_was_you(
        page, live_server, bench, sign_in, csp_violations):
    case = bench.case(ORDINARY)
    sign_in(page, bench.reviewer)
    page.get_by_role("button", name="Next case").click()
    page.wait_for_url(f"{live_server.url}/cases/{case.pk}/")

    # The same reviewer, in a second tab of the same browser, gives the case back.
    other_tab = page.context.new_page()
    csp_violations.watch(other_tab)
    other_tab.goto(f"{live_server.url}/cases/{case.pk}/")
    other_tab.locator("summary", has_text="Release").click()
    other_tab.get_by_role("button", name="Release to the queue").click()
    expect(other_tab.get_by_role("status")).to_contain_text("released")

    page.get_by_role("radio", name=re.compile("^Accept")).check()
    page.get_by_role("button", name="Resolve the case").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(
        "This case changed since you opened it: you changed it in another tab or window.")
    expect(alert.get_by_role("listitem")).to_have_text(
        ["You, in another tab or window: released back to the queue, just now"])
    expect(alert).not_to_contain_text("someone else")
    case.refresh_from_db()
    assert case.state == CaseState.OPEN


def test_the_case_page_works_on_a_narrow_screen(live_server, bench, sign_in, new_page):
    page = sign_in(new_page(viewport=NARROW), bench.reviewer)
    page.get_by_role("button", name="Next case").click()
    page.wait_for_url(re.compile(r"/cases/\d+/$"))

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], "the page scrolls sideways"
    expect(page.get_by_role("button", name="Resolve the case")).to_be_visible()


def test_shortcuts_choose_verdicts_and_open_escalation_but_not_while_typing(
        page, live_server, bench, sign_in):
    sign_in(page, bench.reviewer)
    page.get_by_role("button", name="Next case").click()
    expect(page.get_by_role("heading", name="Your decision")).to_be_visible()

    page.keyboard.press("r")
    expect(page.get_by_role("radio", name=re.compile("^Reject"))).to_be_checked()
    expect(page.get_by_label("Reason code")).to_be_focused()

    page.get_by_label("Notes").click()
    page.keyboard.type("ace")  # typing: no shortcut fires
    expect(page.get_by_label("Notes")).to_have_value("ace")
    expect(page.get_by_role("radio", name=re.compile("^Reject"))).to_be_checked()

    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("e")
    expect(page.get_by_label("Why escalate?")).to_be_focused()


def test_queue_counts_refresh_by_themselves(page, live_server, bench, sign_in):
    page.clock.install()
    sign_in(page, bench.reviewer)
    count = queue_card(page, "Invoice review").locator(".stat__value").first
    expect(count).to_have_text("2")

    submit_decisions(ai_system=bench.ai_system, items=[
        invoice("inv-2026-000200", confidence=0.5, amount=990.0, po_amount=990.0)])
    page.clock.run_for(31_000)  # htmx polls the queue fragment every 30 s

    expect(count).to_have_text("3")
