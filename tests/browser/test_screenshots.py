"""Screenshots of the main pages for docs/screenshots/ (and for a designer's eye).

Off by default; run with

    BACKSTOP_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_screenshots.py

and look at every image before committing it.
"""

import os
import re

import pytest
from playwright.sync_api import expect

from tests.browser.workbench import NARROW, SCREENSHOTS, WIDE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, reset_sequences=True),
    pytest.mark.skipif(not os.environ.get("BACKSTOP_SCREENSHOTS"),
                       reason="set BACKSTOP_SCREENSHOTS=1 to write docs/screenshots/"),
]

ORDINARY = "inv-2026-000123"
FOUR_EYES = "inv-2026-000124"
QA_SAMPLE = "inv-2026-000125"


def shoot(page, name, *, full_page=True):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The SLA countdown and "oldest wait" change by the second; nothing else moves.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page,
                    animations="disabled", caret="hide")


def test_write_screenshots(page, live_server, bench, sign_in, new_page):
    url = live_server.url
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    shoot(page, "login", full_page=False)

    # The four-eyes case, resolved by alice, waits for bob.
    sign_in(page, bench.reviewer)
    four_eyes = bench.case(FOUR_EYES)
    page.goto(f"{url}/cases/{four_eyes.pk}/")
    page.get_by_role("button", name="Take this case").click()
    page.get_by_role("radio", name=re.compile("^Correct")).check()
    page.get_by_label("Action", exact=True).select_option("hold")
    page.get_by_label("Reason code").select_option("no-po")
    page.get_by_label("Notes").fill("PO-7731 was closed last month; hold until AP reopens it.")
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_url(f"{url}/")

    # Home with one case in hand.
    page.get_by_role("button", name="Next case").click()
    page.wait_for_url(re.compile(r"/cases/\d+/$"))
    page.goto(f"{url}/")
    shoot(page, "home")

    ordinary = bench.case(ORDINARY)
    page.goto(f"{url}/cases/{ordinary.pk}/")
    page.get_by_role("radio", name=re.compile("^Correct")).check()
    page.get_by_label("Amount", exact=True).fill("4100")
    shoot(page, "case")

    # Three problems at once: no action, a negative amount, no reason code.
    page.get_by_label("Action", exact=True).select_option("")
    page.get_by_label("Amount", exact=True).fill("-5")
    page.get_by_role("button", name="Resolve the case").click()
    expect(page.get_by_label("Amount", exact=True)).to_have_attribute("aria-invalid", "true")
    page.locator(".resolve-form").scroll_into_view_if_needed()
    page.locator(".resolve-form").screenshot(
        path=str(SCREENSHOTS / "case-field-error.png"), animations="disabled", caret="hide")

    narrow = sign_in(new_page(viewport=NARROW), bench.reviewer)
    narrow.goto(f"{url}/cases/{ordinary.pk}/")
    shoot(narrow, "case-narrow")

    # A stale page: the manager escalates while alice still has the case open.
    page.goto(f"{url}/cases/{ordinary.pk}/")
    manager = sign_in(new_page(), bench.manager)
    manager.goto(f"{url}/cases/{ordinary.pk}/")
    manager.locator("summary", has_text="Escalate").click()
    manager.get_by_label("Why escalate?").fill("The vendor called about this invoice.")
    manager.get_by_role("button", name="Escalate", exact=True).click()
    manager.wait_for_url(f"{url}/")
    page.get_by_role("radio", name=re.compile("^Accept")).check()
    page.get_by_role("button", name="Resolve the case").click()
    expect(page.get_by_role("alert")).to_be_visible()
    shoot(page, "conflict", full_page=False)

    qa = bench.case(QA_SAMPLE)
    page.goto(f"{url}/cases/{qa.pk}/")
    page.get_by_role("button", name="Take this case").click()
    shoot(page, "case-blind-qa")

    # The same person, in a second tab, releases the case the first tab still shows.
    other_tab = page.context.new_page()
    other_tab.goto(f"{url}/cases/{qa.pk}/")
    other_tab.locator("summary", has_text="Release").click()
    other_tab.get_by_role("button", name="Release to the queue").click()
    expect(other_tab.get_by_role("status")).to_contain_text("released")
    other_tab.close()
    page.get_by_role("button", name="Resolve the case").click()
    expect(page.get_by_role("alert")).to_contain_text("you changed it in another tab")
    shoot(page, "conflict-another-tab", full_page=False)

    bob = sign_in(new_page(), bench.second_reviewer)
    bob.get_by_role("link", name=re.compile("Approvals")).click()
    bob.locator(".approval summary").first.click()
    bob.get_by_label("What should change?").fill("")
    shoot(bob, "approvals")

    bob.goto(f"{url}/cases/{four_eyes.pk}/")
    shoot(bob, "case-pending-approval")
    bob.get_by_role("button", name="Approve the resolution").click()
    bob.goto(f"{url}/cases/{four_eyes.pk}/")
    shoot(bob, "case-resolved")

    assert {path.stem for path in SCREENSHOTS.glob("*.png")} >= {
        "login", "home", "case", "case-blind-qa", "approvals", "conflict", "case-narrow"}
    assert WIDE["width"] == 1280
