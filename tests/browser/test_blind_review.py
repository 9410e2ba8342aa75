"""Blind review in a real browser: the reviewer answers from the input alone, then sees
their answer beside the AI's."""

import re

import pytest
from playwright.sync_api import expect

from exceptions_app.models import LabelledExample

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QA_SAMPLE = "inv-2026-000125"  # the AI said: approve 880.00 EUR, 98% sure


def test_a_blind_reviewer_answers_and_then_sees_the_comparison(
        page, live_server, bench, sign_in, tmp_path):
    case = bench.case(QA_SAMPLE)
    sign_in(page, bench.reviewer)
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    page.get_by_role("button", name="Take this case").click()

    expect(page.get_by_role("heading", name="AI suggestion hidden")).to_be_visible()
    expect(page.get_by_text("98%")).to_have_count(0)
    expect(page.get_by_role("radio", name=re.compile("^Accept"))).to_have_count(0)
    expect(page.get_by_role("radio", name=re.compile("^Answer"))).to_be_checked()
    amount = page.get_by_label("Amount", exact=True)
    expect(amount).to_have_value("")  # nothing of the AI's answer shows through
    page.get_by_label("Action", exact=True).select_option("approve")
    amount.fill("870")
    page.get_by_label("Currency", exact=True).select_option("EUR")
    page.screenshot(path=str(tmp_path / "blind-answer.png"), full_page=True)
    page.get_by_role("button", name="Resolve the case").click()

    # Back on the case: the answer beside the AI's, the differing field marked.
    page.wait_for_url(re.compile(rf"/cases/{case.pk}/#resolution$"))
    expect(page.get_by_role("status")).to_contain_text("compared with the AI's output")
    comparison = page.locator("#blind-comparison")
    expect(comparison).to_contain_text("differs from the AI's output in Amount")
    resolution = page.locator("#resolution")
    expect(resolution.locator(".card__head .badge")).to_have_text("Corrected")
    changed = resolution.locator("tr.changed")
    expect(changed).to_have_count(1)
    expect(changed.get_by_role("rowheader")).to_have_text("Amount")
    expect(changed).to_contain_text("880")
    expect(changed).to_contain_text("870")
    expect(page.locator("#confidence-meter")).to_be_visible()  # the AI's side shows now
    page.screenshot(path=str(tmp_path / "blind-compared.png"), full_page=True)

    example = LabelledExample.objects.get(decision__case=case)
    assert (example.verdict, example.blind) == ("corrected", True)
    assert example.human_output["amount"] == 870.0
