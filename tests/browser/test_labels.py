"""A manager exports the labelled data of a use case from its page, as a file.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/labels.png``.
"""

import csv
import io
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.workbench import SCREENSHOTS
from workflows.models import Case, Verdict
from workflows.services import claiming, transitions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def resolved(bench):
    """Two of the workbench's cases resolved by Alice, one accepted and one rejected (a
    four-eyes case Maria approves): their external ids."""
    cases = list(Case.objects.filter(queue=bench.queue, state="open").order_by("pk")[:2])
    for case, verdict in zip(cases, (Verdict.ACCEPTED, Verdict.REJECTED), strict=True):
        claiming.claim(case_id=case.pk, user=bench.reviewer)
        transitions.resolve(case_id=case.pk, user=bench.reviewer, verdict=verdict,
                            output=None, reason_code="" if verdict == Verdict.ACCEPTED
                            else "duplicate")
        if case.requires_four_eyes:
            transitions.approve(case_id=case.pk, user=bench.manager)
    return [case.decision.external_id for case in cases]


def test_a_manager_downloads_the_rejections_of_a_use_case_as_csv(
        page, live_server, bench, resolved, sign_in):
    sign_in(page, bench.manager)
    page.goto(f"{live_server.url}/use-cases/{bench.use_case.slug}/")
    page.get_by_role("link", name="Export its labelled data").click()

    expect(page.get_by_role("heading", name="Labelled data", level=1)).to_be_visible()
    form = page.get_by_role("form", name="Export labelled data")
    expect(form.get_by_label("Use case")).to_have_value(bench.use_case.slug)
    expect(page.get_by_role("cell", name="seconds_to_decision")).to_be_visible()
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "labels.png"), full_page=True,
                        animations="disabled", caret="hide")

    form.get_by_label("Verdict").select_option("rejected")
    with page.expect_download() as download:
        form.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))

    assert download.value.suggested_filename.startswith(f"labels-{bench.use_case.slug}-")
    assert [(row["external_id"], row["verdict"], row["reason_code"]) for row in rows] == [
        (resolved[1], "rejected", "duplicate")]

    # A model version nothing was labelled with is refused on the form, by name.
    page.goto(f"{live_server.url}/labels/")
    form = page.get_by_role("form", name="Export labelled data")
    form.get_by_label("Model version").fill("gpt-0")
    form.get_by_role("button", name="Download JSON Lines").click()
    expect(page.get_by_text("No labelled example has model version 'gpt-0'.")).to_be_visible()
