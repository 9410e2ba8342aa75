"""The owner reads the evidence for the next stage, signs off the move up, and throws the
kill switch when something looks wrong.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/stage-evidence.png``.
"""

import os
import random
from datetime import UTC, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from exceptions_app.models import DailyQuality, Route, Stage
from exceptions_app.services.intake import submit_decisions
from tests.browser.workbench import SCREENSHOTS, invoice
from workflows.actors import SYSTEM
from workflows.models import Activity, Process, RaciRole
from workflows.services import raci

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EARLIER, CURRENT = "extractor-3.2.1", "extractor-3.3.0"


def rollups(bench, *, today) -> int:
    """A month of the rollups intake and resolution keep, answering how many decisions of
    the current version were reviewed (their arithmetic is tested in
    tests/exceptions_app/test_quality.py): the earlier model version's first half, the
    current one's last two weeks, agreeing more often with the reviewers."""
    rng = random.Random(3)
    rows = []
    for age in range(30, 0, -1):
        version = EARLIER if age > 14 else CURRENT
        reviewed = int(rng.gauss(70, 6))
        passed = int(rng.gauss(180, 15))
        disagree = rng.uniform(0.07, 0.11) if version == EARLIER else rng.uniform(0.005, 0.03)
        day = today - timedelta(days=age)
        late = rng.choice([0, 0, 1, 2, 5]) if version == EARLIER else rng.choice([0, 1, 2])
        rows.append(DailyQuality(day=day, use_case=bench.use_case, model_version=version,
                                 route=Route.REVIEW, decisions=reviewed, resolved=reviewed,
                                 resolved_in_time=reviewed - late,
                                 overridden=int(reviewed * disagree)))
        rows.append(DailyQuality(day=day, use_case=bench.use_case, model_version=version,
                                 route=Route.AUTO, decisions=passed))
    DailyQuality.objects.bulk_create(rows)
    return sum(row.resolved for row in rows if row.model_version == CURRENT)


def latest_decisions(bench, *, count: int) -> None:
    """Today's decisions come from the current version: the gates weigh its evidence."""
    items = []
    for n in range(count):
        item = invoice(f"inv-today-{n}", confidence=0.97, amount=900.0 + n,
                       po_amount=900.0 + n)
        items.append({**item, "model_version": CURRENT})
    assert {r.status for r in submit_decisions(ai_system=bench.ai_system, items=items)} == {201}


@pytest.fixture
def staged(bench):
    """The workbench's use case at the assist stage, owned by Olivia, with a month of
    evidence."""
    process = Process.objects.create(slug="invoice-approval", name="Invoice approval")
    bench.use_case.process = process
    bench.use_case.stage = Stage.ASSIST
    bench.use_case.save()
    raci.set_assignments(process=process, activity=Activity.REVIEW, role=RaciRole.ACCOUNTABLE,
                         users=[bench.owner], actor=SYSTEM)
    bench.queue.members.add(bench.owner)
    bench.reviewed = rollups(bench, today=timezone.now().astimezone(UTC).date())
    latest_decisions(bench, count=2)
    return bench


def test_the_owner_reads_the_evidence_signs_off_and_throws_the_kill_switch(
        page, live_server, staged, sign_in):
    sign_in(page, staged.owner)
    page.goto(f"{live_server.url}/use-cases/invoice-approval/")
    page.get_by_role("link", name="Evidence, gates and guardrails").click()

    expect(page.get_by_role("heading", name="Stage and guardrails: Invoice approval",
                            level=1)).to_be_visible()
    gates = page.get_by_role("table").first
    expect(page.get_by_role("heading", name="Gates to Automate")).to_be_visible()
    for gate in ("Reviewed decisions", "Agreement with reviewers", "SLA compliance"):
        expect(gates.get_by_role("row").filter(has_text=gate)).to_contain_text("met")
    evidence = page.get_by_role("table").nth(1)
    expect(evidence.get_by_role("row").filter(has_text=f"{CURRENT} (current)")
           ).to_contain_text(f"n = {staged.reviewed}")
    expect(evidence.get_by_role("row").filter(has_text=EARLIER)).to_be_visible()

    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "stage-evidence.png"), full_page=True,
                        animations="disabled", caret="hide")

    sign_off = page.get_by_role("form", name="Sign off the move up")
    sign_off.get_by_label("Sign-off note").fill("Two clean weeks of 3.3.0")
    sign_off.get_by_role("button", name="Sign off: move to Automate").click()
    expect(page.get_by_text("Signed off: Invoice approval is now at the Automate stage.")
           ).to_be_visible()
    expect(page.get_by_role("list").filter(has_text="Advanced with sign-off")
           ).to_contain_text("assist → automate by olivia")
    expect(page.get_by_role("heading", name="Gates to Optimize")).to_be_visible()

    kill = page.get_by_role("form", name="Kill switch")
    kill.get_by_label("Reason").fill("Vendor bank details changed upstream")
    kill.get_by_role("button", name="Kill switch: everything to review").click()
    expect(page.get_by_role("status").filter(has_text="Kill switch on since")
           ).to_contain_text("Vendor bank details changed upstream")
