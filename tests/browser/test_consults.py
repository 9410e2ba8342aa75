"""A consult answered on the case page: the Consulted person reads the escalated case and
answers there; until they do, its holder cannot resolve it."""

import re

import pytest
from playwright.sync_api import expect

from tests.workflows.chain import make_chain
from workflows.actors import SYSTEM
from workflows.models import CaseState
from workflows.services import claiming, escalation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORDINARY = "inv-2026-000123"


def test_the_consulted_answer_on_the_case_page_and_then_it_can_resolve(
        page, live_server, bench, sign_in, new_page, tmp_path):
    chain = make_chain(bench.queue)
    chain.legal.first_name, chain.legal.last_name = "Lena", "Legal"
    chain.legal.save()
    case = bench.case(ORDINARY)
    claiming.claim(case_id=case.pk, user=bench.reviewer)
    # The SLA breached: the owner holds the case now and legal's answer is required.
    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause="resolution_breach", expected_level=0)
    url = f"{live_server.url}/cases/{case.pk}/"

    owner = sign_in(page, chain.owner)
    owner.goto(url)
    expect(owner.locator("#consults-pending")).to_contain_text(
        "cannot be resolved until Lena Legal answers the consult")
    owner.get_by_role("radio", name=re.compile("^Accept")).check()
    owner.get_by_role("button", name="Resolve the case").click()
    expect(owner.get_by_role("alert").filter(has_text="Not yet")).to_contain_text(
        "Lena Legal must answer the consult first")
    owner.screenshot(path=str(tmp_path / "consult-refused.png"), full_page=True)

    legal = sign_in(new_page(), chain.legal)
    legal.goto(f"{live_server.url}/consults/")
    legal.get_by_role("link", name=re.compile(ORDINARY)).click()
    legal.wait_for_url(re.compile(rf"/cases/{case.pk}/"))
    consults = legal.locator("#consults")
    expect(consults).to_contain_text("waiting for an answer")
    expect(legal.get_by_text("Nothing for you to do on this case now.")).to_be_visible()
    consults.get_by_label("Your answer").fill("The PO allows 2%; 4,180 is fine by legal.")
    legal.screenshot(path=str(tmp_path / "consult-answering.png"), full_page=True)
    consults.get_by_role("button", name="Send answer").click()

    expect(legal.get_by_role("status")).to_contain_text("your answer is on the case")
    expect(consults).to_contain_text("The PO allows 2%; 4,180 is fine by legal.")
    expect(consults.get_by_role("button", name="Send answer")).to_have_count(0)
    legal.screenshot(path=str(tmp_path / "consult-answered.png"), full_page=True)

    owner.goto(url)
    expect(owner.locator("#consults-pending")).to_have_count(0)
    owner.get_by_role("radio", name=re.compile("^Accept")).check()
    owner.get_by_role("button", name="Resolve the case").click()
    expect(owner.get_by_role("status")).to_contain_text("resolved")
    case.refresh_from_db()
    assert case.state == CaseState.RESOLVED
