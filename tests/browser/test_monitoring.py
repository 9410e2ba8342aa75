"""A manager reads how good a use case's AI is and whether its inputs drift.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/monitoring.png``.
"""

import os
import random
from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from exceptions_app.models import (
    CONFIDENCE_BINS,
    DailyQuality,
    Decision,
    Route,
    confidence_bin_fields,
    latency_bucket_field,
)
from exceptions_app.services import drift
from tests.browser.workbench import SCREENSHOTS
from workflows.actors import SYSTEM
from workflows.models import Activity, Process, RaciRole
from workflows.services import raci

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def a_month_of_rollups(bench, *, today) -> None:
    """The rollups a month of traffic leaves before today, whose decisions the workbench
    posted (intake and resolution keep them; their arithmetic is tested in
    tests/exceptions_app/test_quality.py): about 400 decisions a day, a quarter
    reviewed, overrides creeping up in the last ten days."""
    rng = random.Random(7)
    rows = []
    for age in range(30, 0, -1):
        day = today - timedelta(days=age)
        volume = int(rng.gauss(400, 40))
        drifting = age <= 10
        for route, share in ((Route.AUTO, 0.7), (Route.REVIEW, 0.25), (Route.REJECT, 0.05)):
            decisions = int(volume * share)
            row = DailyQuality(day=day, use_case=bench.use_case, model_version="extractor-3.2.1",
                               route=route, decisions=decisions)
            if route == Route.AUTO:
                row.qa_sampled = row.qa_reviewed = decisions // 10
                row.qa_agreed = row.qa_reviewed - rng.randint(0, 3 if drifting else 1)
            if route == Route.REVIEW:
                row.resolved = decisions
                row.overridden = int(decisions * rng.uniform(0.18, 0.3) if drifting
                                     else decisions * rng.uniform(0.08, 0.14))
                row.reviewer_seconds = decisions * 95
                row.seconds_to_decision = decisions * 2400
                for bucket, share_in in enumerate((0.05, 0.2, 0.3, 0.3, 0.1, 0.05, 0, 0)):
                    setattr(row, latency_bucket_field(bucket), int(decisions * share_in))
            if route != Route.REJECT:
                labelled = row.resolved + row.qa_reviewed
                for n in range(5, CONFIDENCE_BINS):
                    resolved, agreed, confidence_sum = confidence_bin_fields(n)
                    count = labelled // 5
                    setattr(row, resolved, count)
                    setattr(row, agreed, int(count * min(1, 0.12 + n / 10)))
                    setattr(row, confidence_sum, count * (n + 0.5) / 10)
            rows.append(row)
    DailyQuality.objects.bulk_create(rows)


def invoices(bench, *, count: int, start: datetime, shifted: bool, rng) -> None:
    Decision.objects.bulk_create(Decision(
        ai_system=bench.ai_system, use_case=bench.use_case, external_id=f"d-{start:%j}-{n}",
        body_hash="0" * 64, model_version="extractor-3.2.1",
        confidence=rng.betavariate(5, 3) if shifted else rng.betavariate(9, 2),
        input={"po_amount": rng.gauss(2600 if shifted else 1800, 400),
               "currency": rng.choice(["EUR", "USD", "CNY"] if shifted else ["EUR", "EUR", "USD"])},
        output={}, received_at=start + timedelta(minutes=n), policy_version=bench.policy,
        stage=bench.use_case.stage, route=Route.AUTO) for n in range(count))


@pytest.fixture
def monitored(bench):
    """The workbench's use case, owned by Olivia, with a month of figures and inputs
    that drifted two days ago."""
    process = Process.objects.create(slug="invoice-approval", name="Invoice approval")
    bench.use_case.process = process
    bench.use_case.input_schema = {"type": "object", "properties": {
        "po_amount": {"type": "number"}, "currency": {"enum": ["EUR", "USD", "CNY"]}}}
    bench.use_case.save()
    raci.set_assignments(process=process, activity=Activity.REVIEW, role=RaciRole.ACCOUNTABLE,
                         users=[bench.owner], actor=SYSTEM)
    today = timezone.now().astimezone(UTC).date()
    a_month_of_rollups(bench, today=today)
    rng = random.Random(11)
    reference_start = datetime.combine(today - timedelta(days=20), time(8), tzinfo=UTC)
    invoices(bench, count=1200, start=reference_start, shifted=False, rng=rng)
    drift.set_reference(use_case=bench.use_case, since=reference_start,
                        until=reference_start + timedelta(days=1), actor=bench.owner)
    invoices(bench, count=800, start=reference_start + timedelta(days=18), shifted=True,
             rng=rng)
    drift.check_drift(use_case=bench.use_case)
    return bench


def test_a_manager_reads_quality_and_drift_and_sets_a_new_reference(
        page, live_server, monitored, sign_in):
    sign_in(page, monitored.manager)
    page.goto(f"{live_server.url}/use-cases/invoice-approval/")
    expect(page.get_by_role("listitem").filter(has_text="Drift alert")).not_to_have_count(0)
    page.get_by_role("link", name="Monitoring: quality and drift").click()

    expect(page.get_by_role("heading", name="Monitoring: Invoice approval", level=1)
           ).to_be_visible()
    for chart in ("Decisions per day by route", "Override rate per day with its 95% interval",
                  "QA accuracy per day with its 95% interval",
                  "Reliability diagram: agreement by confidence",
                  "Population stability index per feature"):
        expect(page.get_by_role("img", name=chart)).to_be_visible()
    alerts = page.get_by_role("list", name="Open drift alerts")
    expect(alerts).to_contain_text("input.po_amount")
    expect(page.get_by_text("against 1200 decisions")).to_be_visible()

    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "monitoring.png"), full_page=True,
                        animations="disabled", caret="hide")

    # A window of one quiet day is too short: the page says so instead of computing.
    form = page.get_by_role("form", name="Set the drift reference")
    quiet = (timezone.now() - timedelta(days=5)).date().isoformat()
    form.get_by_label("From").fill(quiet)
    form.get_by_label("To (inclusive)").fill(quiet)
    form.get_by_role("button", name="Set reference").click()
    expect(page.get_by_text("holds 0 decisions; a drift reference needs at least 500")
           ).to_be_visible()

    # The days after the drift are the new normal: the alerts are cleared.
    recent = (timezone.now() - timedelta(days=2)).date()
    form = page.get_by_role("form", name="Set the drift reference")
    form.get_by_label("From").fill(recent.isoformat())
    form.get_by_label("To (inclusive)").fill(timezone.now().date().isoformat())
    form.get_by_role("button", name="Set reference").click()
    expect(page.get_by_text("Drift reference set")).to_be_visible()
    expect(page.get_by_role("list", name="Open drift alerts")).to_have_count(0)


def test_a_manager_sees_drift_on_the_dashboard_and_follows_it_to_the_monitoring_page(
        page, live_server, monitored, sign_in):
    sign_in(page, monitored.manager)
    page.goto(f"{live_server.url}/dashboard/")

    alerts = page.get_by_role("region", name="Alerts")
    expect(alerts).to_contain_text("Drift on Invoice approval: input.po_amount")
    expect(alerts).to_contain_text("against the reference")
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-drift.png"), full_page=False,
                        animations="disabled", caret="hide")

    alerts.get_by_role("link", name="Drift on Invoice approval: input.po_amount").click()
    expect(page.get_by_role("heading", name="Monitoring: Invoice approval", level=1)
           ).to_be_visible()
    expect(page.get_by_role("list", name="Open drift alerts")).to_contain_text("input.po_amount")
