"""A person's own settings in a real browser: away means away; times in their zone."""

import os
import re
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.workbench import NARROW, SCREENSHOTS
from workflows.models import CaseState
from workflows.services import outbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name):
    """With BACKSTOP_SCREENSHOTS=1, keep this page for docs/screenshots/ (look at it first)."""
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True,
                        animations="disabled", caret="hide")


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
    shoot(page, "home-away-refused")
    assert not bench.queue.cases.filter(state=CaseState.ASSIGNED).exists()

    banner.get_by_role("button", name="I am available").click()
    expect(page.get_by_role("status")).to_contain_text("Welcome back")
    expect(page.get_by_role("region", name="You are marked away")).to_have_count(0)
    page.get_by_role("button", name="Next case").click()
    page.wait_for_url(f"{live_server.url}/cases/*/")
    assert bench.queue.cases.filter(state=CaseState.ASSIGNED,
                                    assignee=bench.reviewer).count() == 1


def test_times_follow_the_browsers_zone_until_the_person_chooses_one(
        live_server, bench, sign_in, new_page):
    page = sign_in(new_page(timezone_id="Asia/Tokyo"), bench.reviewer)
    case = bench.case("inv-2026-000123")
    page.goto(f"{live_server.url}/cases/{case.pk}/")
    first_event = page.locator(".timeline__when time").first
    expect(first_event).to_have_text(re.compile(r" JST$"))  # the browser's zone

    page.get_by_text(bench.reviewer.display_name, exact=True).click()  # the account menu
    page.get_by_role("link", name="Profile and time zone").click()
    expect(page.get_by_text("Times are shown in Asia/Tokyo (your browser's zone)")).to_be_visible()
    page.get_by_label("Show times in").select_option("America/Sao_Paulo")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Saved: times are shown in America/Sao_Paulo now.")
    shoot(page, "profile-time-zone")

    page.goto(f"{live_server.url}/cases/{case.pk}/")
    expect(first_event).to_have_text(re.compile(r" -03$"))  # Sao Paulo has no abbreviation
    opened_at = timezone.localtime(case.created_at, ZoneInfo("America/Sao_Paulo"))
    expect(first_event).to_have_text(f"{opened_at:%b} {opened_at.day}, {opened_at:%H:%M} -03")


def test_the_delivery_log_names_people_and_fits_a_phone(live_server, bench, sign_in, new_page):
    case = bench.case("inv-2026-000123")
    bench.reviewer.email = "alice.reviewer-with-a-long-address@accounts-payable.example.com"
    bench.reviewer.save()
    outbox.notify_users(users=[bench.reviewer],
                        text=f"{case.label} escalated to level 1 (SLA breached): waiting in "
                             "Invoice review.",
                        dedup_prefix="escalation:narrow", case=case)
    page = sign_in(new_page(NARROW), bench.manager)

    page.goto(f"{live_server.url}/outbox/")

    in_app = page.locator("tr", has_text="In-app notification")
    expect(in_app.get_by_text(bench.reviewer.display_name)).to_be_visible()
    expect(in_app.get_by_role("link", name=case.label)).to_be_visible()
    # Nothing runs off the right edge: long addresses and keys wrap.
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    shoot(page, "delivery-log-narrow")
