"""An owner tries a lower confidence threshold before proposing it: the threshold
trade-off over the labelled history, then a backtest of the draft beside the active
version, from the use case's page.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/threshold.png`` and
``docs/screenshots/backtest.png``.
"""

import pytest
from playwright.sync_api import expect

from exceptions_app.services import backtests
from tests.browser.workbench import screenshot
from tests.exceptions_app.quality_support import (
    known_history,
    lowered_threshold_draft,
    quality_use_case,
    queue_people,
)
from tests.factories import make_manager

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history(transactional_db, monkeypatch):
    # The worker's part runs in the request's thread here; tests/integration/
    # test_backtest_worker.py has a real worker do it.
    monkeypatch.setattr(backtests, "_enqueue", backtests.run)
    use_case = quality_use_case()
    known_history(use_case, *queue_people(use_case))
    lowered_threshold_draft(use_case)
    return use_case


def test_an_owner_reads_the_threshold_trade_off_then_backtests_the_draft(
        page, live_server, history, sign_in):
    sign_in(page, make_manager())
    page.goto(f"{live_server.url}/use-cases/{history.slug}/")

    page.get_by_role("link", name="Confidence threshold").click()
    filters = page.get_by_role("form", name="Period, model version and tolerated error")
    filters.get_by_label("From").fill("2026-03-02")
    filters.get_by_label("To", exact=True).fill("2026-03-03")
    filters.get_by_label("Tolerated error rate").fill("0.69")
    filters.get_by_role("button", name="Show").click()
    expect(page.locator('[data-figure="labelled"]')).to_have_text("10")
    expect(page.locator('[data-figure="suggested"]')).to_have_text("0.00")
    expect(page.get_by_role("img", name="Share passed and error rate by confidence "
                                        "threshold")).to_be_visible()
    screenshot(page, "threshold.png")

    page.get_by_role("link", name="backtest").click()
    expect(page.get_by_role("heading", name="New backtest")).to_be_visible()
    page.get_by_label("Policy version").select_option("2")
    page.get_by_label("The most recent decisions").fill("1000")
    page.get_by_role("button", name="Run the backtest").click()

    expect(page.get_by_role("heading", name="Backtest of version 2", exact=False)
           ).to_be_visible()
    expect(page.locator('[data-figure="changed"]')).to_have_text("2")
    expect(page.locator('[data-figure="corrected"]')).to_have_text("2")
    changes = page.get_by_role("table").last
    expect(changes.get_by_role("cell", name="0 of 2 accepted as the AI had it")).to_be_visible()
    screenshot(page, "backtest.png")
