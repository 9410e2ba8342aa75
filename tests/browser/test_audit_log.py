"""An auditor reads the audit log: filters it by use case and event, follows a case to its
trail, and finds no way to change anything.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/audit-log.png``.
"""

import os

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from exceptions_app.roles import setup_roles
from tests.browser.workbench import SCREENSHOTS
from tests.factories import UserFactory
from workflows.actors import SYSTEM
from workflows.models import Case, Verdict
from workflows.services import audit, claiming, transitions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def auditor(bench):
    setup_roles(actor=SYSTEM)
    person = UserFactory(username="alex", first_name="Alex", last_name="Auditor")
    person.groups.add(Group.objects.get(name="auditors"))
    return person


@pytest.fixture
def worked(bench):
    """Two of the workbench's cases claimed and resolved by Alice, then sealed."""
    cases = list(Case.objects.filter(queue=bench.queue, state="open").order_by("pk")[:2])
    for case in cases:
        claiming.claim(case_id=case.pk, user=bench.reviewer)
        transitions.resolve(case_id=case.pk, user=bench.reviewer, verdict=Verdict.ACCEPTED,
                            output=None, reason_code="")
        if case.requires_four_eyes:
            transitions.approve(case_id=case.pk, user=bench.manager)
    audit.seal()
    return cases


def test_an_auditor_filters_the_log_and_reads_a_case_trail(
        page, live_server, bench, auditor, worked, sign_in):
    sign_in(page, auditor)
    page.get_by_role("link", name="Audit log").click()

    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    form = page.get_by_role("form", name="Filter the audit log")
    form.get_by_label("Use case").select_option(bench.use_case.slug)
    form.get_by_role("button", name="Show").click()
    expect(page.get_by_role("row").filter(has_text="Decision received").first).to_be_visible()
    expect(page.get_by_role("link", name="Export the evidence of a period")).to_be_visible()
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "audit-log.png"), full_page=True,
                        animations="disabled", caret="hide")

    form.get_by_label("Event").select_option("case.claimed")
    form.get_by_role("button", name="Show").click()
    rows = page.get_by_role("row").filter(has_text="Claimed")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("alice")
    expect(rows.first).to_contain_text("sealed #")

    newest = worked[-1]
    rows.first.get_by_role("link", name=str(newest.pk)).click()
    expect(page.get_by_role("heading", name=f"Audit trail of case {newest.pk}")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="Claimed")).to_have_count(1)
    expect(page.get_by_role("row").filter(has_text="Case opened")).to_have_count(1)

    # The case itself: readable, with nothing to press.
    page.get_by_role("link", name=f"case {newest.pk}").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.get_by_role("button", name="Claim")).to_have_count(0)
    expect(page.get_by_label("Add a comment")).to_have_count(0)
