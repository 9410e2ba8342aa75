"""A person's own settings in a real browser: away means away; times in their zone."""

import pytest
from playwright.sync_api import expect

from workflows.models import CaseState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_marked_away_is_refused_the_next_case_until_available(
        page, live_server, bench, sign_in):
    sign_in(page, bench.reviewer)
    page.get_by_role("link", name="Availability").click()
    page.get_by_role("button", name="I am away").click()
    expect(page.get_by_role("status")).to_contain_text("You are away.")

    page.get_by_role("link", name="Home").click()
    banner = page.get_by_role("region", name="You are marked away")
    expect(banner).to_contain_text("you cannot take one")
    page.get_by_role("button", name="Next case").click()

    expect(page.get_by_role("status")).to_contain_text(
        "mark yourself available to take cases.")
    assert not bench.queue.cases.filter(state=CaseState.ASSIGNED).exists()

    banner.get_by_role("button", name="I am available").click()
    expect(page.get_by_role("status")).to_contain_text("Welcome back")
    expect(page.get_by_role("region", name="You are marked away")).to_have_count(0)
    page.get_by_role("button", name="Next case").click()
    page.wait_for_url(f"{live_server.url}/cases/*/")
    assert bench.queue.cases.filter(state=CaseState.ASSIGNED,
                                    assignee=bench.reviewer).count() == 1
