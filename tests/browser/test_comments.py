"""A comment with a mention on the case page: the reviewer asks a colleague in the
case's timeline; the colleague is notified and reads the comment there."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.workbench import screenshot
from workflows.services import claiming, outbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORDINARY = "inv-2026-000123"


def test_a_comment_mentioning_a_colleague_notifies_them_and_shows_in_the_timeline(
        page, live_server, bench, sign_in, new_page):
    case = bench.case(ORDINARY)
    claiming.claim(case_id=case.pk, user=bench.reviewer)

    reviewer = sign_in(page, bench.reviewer)
    reviewer.goto(f"{live_server.url}/cases/{case.pk}/")
    reviewer.get_by_label("Add a comment").fill(
        f"@{bench.second_reviewer.username} is **4,180** within the PO?")
    reviewer.get_by_role("button", name="Comment").click()

    expect(reviewer.get_by_role("status")).to_contain_text("Bob Okafor notified")
    timeline = reviewer.locator(".case-history")
    expect(timeline.locator(".comment strong")).to_have_text("4,180")
    expect(timeline).to_contain_text("mentions Bob Okafor")
    screenshot(reviewer, "case-comment.png")

    outbox.relay_due()  # the relay a worker runs: the in-app notice arrives
    colleague = sign_in(new_page(), bench.second_reviewer)
    colleague.goto(f"{live_server.url}/notifications/")
    notice = colleague.get_by_role("row").filter(has_text="Alice Moreau mentioned you")
    notice.get_by_role("button", name=re.compile("^Open")).click()
    colleague.wait_for_url(re.compile(rf"/cases/{case.pk}/"))
    expect(colleague.locator(".case-history .comment")).to_contain_text("within the PO?")


def test_a_manager_reads_who_works_a_queue(page, live_server, bench, sign_in):
    sign_in(page, bench.manager)
    page.goto(f"{live_server.url}/queues/{bench.queue.slug}/members/")

    expect(page.get_by_role("heading", level=1)).to_contain_text(bench.queue.name)
    expect(page.locator("main")).to_contain_text(bench.reviewer.display_name)
    screenshot(page, "queue-members.png")
