"""An auditor checks the whole audit trail from the audit log and reads the report.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/audit-verification.png``.
"""

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from exceptions_app.roles import setup_roles
from tests.browser.workbench import screenshot
from tests.factories import UserFactory
from workflows.actors import SYSTEM
from workflows.services import audit, audit_verifications
from workflows.verbs import AuditVerb

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def auditor(transactional_db, monkeypatch):
    # The worker's part, done in the request's place (the live server has no worker).
    monkeypatch.setattr(audit_verifications, "_enqueue", audit_verifications.run)
    setup_roles(actor=SYSTEM)
    for n in range(12):
        audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue", object_id=n)
    audit.seal()
    person = UserFactory(username="ada")
    person.groups.add(Group.objects.get(name="auditors"))
    return person


def test_an_auditor_checks_the_trail_from_the_audit_log(page, live_server, auditor, sign_in):
    sign_in(page, auditor)
    page.goto(f"{live_server.url}/audit/")
    page.get_by_role("link", name="Check the whole trail").click()

    form = page.get_by_role("form", name="Check the audit trail")
    form.get_by_label("Expected head (optional)").fill("12:abc")
    form.get_by_role("button", name="Check the whole trail").click()
    expect(page.get_by_text("Give the head as SEQ:HASH")).to_be_visible()

    form.get_by_label("Expected head (optional)").fill("")
    form.get_by_role("button", name="Check the whole trail").click()

    expect(page.get_by_role("heading", name="Check 1 of the audit trail")).to_be_visible()
    expect(page.get_by_text("The trail is intact.")).to_be_visible()
    # The twelve events and those setting up the roles wrote, all sealed.
    expect(page.get_by_text(re.compile(r"(\d+) sealed events checked link by link up to "
                                       r"seal #\1"))).to_be_visible()
    screenshot(page, "audit-verification.png")
    page.get_by_role("link", name="checks").click()
    expect(page.get_by_role("cell", name="Intact")).to_be_visible()
