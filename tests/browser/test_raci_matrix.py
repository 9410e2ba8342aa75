"""A manager edits a process's RACI matrix in the browser: one cell at a time, in place.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/raci-matrix.png``.
"""

import os

import pytest
from playwright.sync_api import expect

from exceptions_app.activities import DomainActivity
from tests.browser.workbench import SCREENSHOTS
from tests.factories import UserFactory, make_manager
from workflows.actors import SYSTEM
from workflows.models import Activity, AuditEvent, Process, RaciRole
from workflows.services import raci

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def process(transactional_db):
    process = Process.objects.create(slug="invoice-approval", name="Invoice approval")
    people = {name: UserFactory(username=name.lower(), first_name=name, last_name=last)
              for name, last in [("Alice", "Moreau"), ("Bob", "Okafor"),
                                 ("Olivia", "Owner"), ("Lena", "Legal"),
                                 ("Walter", "Watcher")]}
    cells = [(Activity.REVIEW, RaciRole.RESPONSIBLE, ["Alice", "Bob"]),
             (Activity.REVIEW, RaciRole.ACCOUNTABLE, ["Olivia"]),
             (Activity.ESCALATION, RaciRole.ACCOUNTABLE, ["Olivia"]),
             (Activity.ESCALATION, RaciRole.CONSULTED, ["Lena"]),
             (Activity.ESCALATION, RaciRole.INFORMED, ["Walter"]),
             (DomainActivity.POLICY_CHANGE, RaciRole.ACCOUNTABLE, ["Olivia"])]
    for activity, role, names in cells:
        raci.set_assignments(process=process, activity=activity, role=role,
                             users=[people[name] for name in names], actor=SYSTEM)
    return process


def test_a_manager_edits_a_cell_in_place(page, live_server, sign_in, process):
    manager = make_manager(username="maria", first_name="Maria", last_name="Lindqvist")
    sign_in(page, manager)

    page.goto(f"{live_server.url}/raci/{process.slug}/")
    expect(page.get_by_role("heading", name="Invoice approval")).to_be_visible()
    incident = page.locator("#cell-incident-A")
    expect(incident).to_contain_text("Nobody")

    incident.get_by_role("link", name="Edit Accountable for incident").click()
    form = page.locator("form#cell-incident-A")
    form.get_by_role("checkbox", name="Olivia Owner (olivia)").check()
    form.get_by_role("button", name="Save").click()

    cell = page.locator("#cell-incident-A")
    expect(cell).to_contain_text("Olivia Owner")
    expect(page.locator("form#cell-incident-A")).to_have_count(0)
    assert page.url.endswith(f"/raci/{process.slug}/")  # swapped in place, no reload
    event = AuditEvent.objects.get(verb="raci.changed", actor=manager)
    assert event.data["after"] == {"users": ["olivia"], "groups": []}
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "raci-matrix.png"), full_page=True,
                        animations="disabled", caret="hide")


def test_a_reviewer_is_refused_the_matrix(page, live_server, sign_in, process):
    reviewer = UserFactory(username="rita")
    sign_in(page, reviewer)

    response = page.goto(f"{live_server.url}/raci/{process.slug}/")

    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
