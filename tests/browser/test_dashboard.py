"""A manager's SLA dashboard and RACI matrix in a real browser.

The world: the reviewer workbench (decisions posted through intake) plus four weeks of
history in four queues of three processes, frozen at a fixed instant so the figures,
and the screenshots, come out the same on every run. Screenshots are written with

    BACKSTOP_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_dashboard.py

(docs/screenshots/dashboard.png); look at it before committing.
"""

import os
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from playwright.sync_api import expect

from tests.browser.workbench import SCREENSHOTS, build_workbench
from tests.factories import QueueFactory, UserFactory
from workflows.models import Case, CaseState, Escalation, Process, RaciAssignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A Monday afternoon.
FROZEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
AT_RISK_TITLE = "Invoice INV-2026-04471 · Nordlicht AG"
H, M, D = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)


def shoot(page, name):
    if not os.environ.get("BACKSTOP_SCREENSHOTS"):
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True,
                    animations="disabled", caret="hide")


# (queue, resolution target, first-response target, resolved per day, open now)
QUEUES = {
    "invoice-review": (8 * H, 1 * H, 14, 14),
    "invoice-qa": (24 * H, 4 * H, 6, 5),
    "claims-review": (2 * D, 4 * H, 5, 9),
    "kyc-review": (4 * H, 30 * M, 9, 7),
}
TITLES = {
    "invoice-review": ("Invoice INV-2026-{n:05d}", ["ACME GmbH", "Bolt & Nut Ltd",
                                                    "Nordlicht AG", "Kestrel Freight"]),
    "invoice-qa": ("QA sample INV-2026-{n:05d}", ["ACME GmbH", "Fjord Paper AS"]),
    "claims-review": ("Claim CLM-{n:05d}", ["water damage", "storm", "theft", "glass"]),
    "kyc-review": ("KYC check {n:05d}", ["Lindqvist Holding AB", "Ortega & Hijos SL",
                                         "Blue Harbour Ltd"]),
}


def _title(slug, rng, n):
    pattern, subjects = TITLES[slug]
    return f"{pattern.format(n=n)} · {rng.choice(subjects)}"


def build_dashboard_world():
    """Workbench people and queues, given processes, a RACI matrix and four weeks of work."""
    bench = build_workbench()
    rng = random.Random(20261123)
    now = FROZEN
    invoices = Process.objects.create(slug="invoice-approval", name="Invoice approval")
    claims = Process.objects.create(slug="claims-triage", name="Claims triage")
    kyc = Process.objects.create(slug="kyc-checks", name="KYC checks")
    bench.use_case.process = invoices
    bench.use_case.save(update_fields=["process"])
    carol = UserFactory(username="carol", first_name="Carol", last_name="Nguyen")
    dev = UserFactory(username="dev", first_name="Dev", last_name="Patel")
    queues = {queue.slug: queue for queue in
              [bench.queue, bench.qa_queue, QueueFactory(slug="claims-review"),
               QueueFactory(slug="kyc-review", name="KYC review")]}
    for slug, process in (("invoice-review", invoices), ("invoice-qa", invoices),
                          ("claims-review", claims), ("kyc-review", kyc)):
        queues[slug].process = process
        queues[slug].save(update_fields=["process"])
    queues["invoice-review"].members.add(carol)
    queues["claims-review"].members.add(carol, dev)
    queues["kyc-review"].members.add(dev, bench.second_reviewer)
    people = {"invoice-review": [bench.reviewer, bench.second_reviewer, carol],
              "invoice-qa": [bench.reviewer, bench.second_reviewer],
              "claims-review": [carol, dev], "kyc-review": [dev, bench.second_reviewer]}
    owner = bench.owner
    for activity, role, user in (
            ("review", "R", bench.reviewer), ("review", "R", bench.second_reviewer),
            ("review", "A", owner), ("review", "I", bench.manager),
            ("escalation", "R", bench.manager), ("escalation", "A", owner),
            ("escalation", "C", carol), ("policy_change", "R", bench.manager),
            ("policy_change", "A", owner), ("policy_change", "C", bench.reviewer),
            ("stage_change", "A", owner), ("stage_change", "I", bench.reviewer),
            ("model_update", "C", bench.manager), ("incident", "A", owner),
            ("incident", "I", bench.manager)):
        RaciAssignment.objects.create(process=invoices, activity=activity, role=role,
                                      user=user)

    history, escalations, serial = [], [], 1000
    for slug, (target, response_target, per_day, _) in QUEUES.items():
        queue = queues[slug]
        for _ in range(per_day * 30):
            serial += 1
            created = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            response = timedelta(seconds=rng.lognormvariate(0, 0.9) * 0.45
                                 * response_target.total_seconds())
            resolution = response + timedelta(seconds=rng.lognormvariate(0, 0.7) * 0.45
                                              * target.total_seconds())
            closed = created + resolution
            if closed > now:
                continue
            late = resolution > target
            level = 1 if late and rng.random() < 0.7 else 0
            reviewer = rng.choice(people[slug])
            history.append(Case(
                queue=queue, state=CaseState.RESOLVED, title=_title(slug, rng, serial),
                created_at=created, first_claimed_at=created + response, closed_at=closed,
                due_at=(created + target + 4 * H) if level else created + target,
                warn_at=created + target * 0.75, response_due_at=created + response_target,
                response_warn_at=created + response_target * 0.75, escalation_level=level,
                assignee=reviewer, first_reviewer=reviewer,
                time_spent_seconds=int(min(resolution.total_seconds(), 900)
                                       * rng.uniform(0.3, 1))))
    Case.objects.bulk_create(history)
    for row in history:
        if row.escalation_level:
            escalations.append(Escalation(case=row, level=1, cause="resolution_breach",
                                          due_at=row.created_at + QUEUES[row.queue.slug][0],
                                          created_at=row.created_at + QUEUES[row.queue.slug][0]))

    open_rows = []
    for slug, (target, response_target, _, count) in QUEUES.items():
        queue = queues[slug]
        for index in range(count):
            serial += 1
            # Spread over the deadline: young cases, a few near it, some past it.
            used = rng.choice([0.05, 0.2, 0.3, 0.45, 0.6, 0.8, 0.9, 1.1, 1.6, 3.0, 8.0])
            created = now - target * used - timedelta(minutes=rng.randint(0, 20))
            claimed = used > 0.2 or rng.random() < 0.3
            reviewer = rng.choice(people[slug])
            state = (CaseState.ASSIGNED if claimed and index % 5 else
                     CaseState.WAITING if claimed else CaseState.OPEN)
            open_rows.append(Case(
                queue=queue, state=state, title=_title(slug, rng, serial),
                created_at=created,
                first_claimed_at=created + response_target * 0.5 if claimed else None,
                assignee=reviewer if claimed else None,
                waiting_since=now - 2 * H if state == CaseState.WAITING else None,
                due_at=created + target, warn_at=created + target * 0.75,
                response_due_at=created + response_target,
                response_warn_at=created + response_target * 0.75,
                priority=rng.choice([30, 50, 50, 70])))
    # The case the test reassigns: Alice's, past its warning, due in 40 minutes.
    open_rows.append(Case(
        queue=queues["invoice-review"], state=CaseState.ASSIGNED, title=AT_RISK_TITLE,
        created_at=now - 7 * H - 20 * M, first_claimed_at=now - 6 * H, assignee=bench.reviewer,
        due_at=now + 40 * M, warn_at=now - 1 * H - 20 * M, response_due_at=now - 6 * H - 20 * M,
        response_warn_at=now - 6 * H - 35 * M, priority=70))
    Case.objects.bulk_create(open_rows)
    for row in open_rows[:6]:
        if row.due_at < now:
            escalations.append(Escalation(case=row, level=1, cause="response_breach",
                                          due_at=row.response_due_at,
                                          created_at=row.response_due_at))
    escalations += [Escalation(case=row, level=2, cause="manual", created_at=row.closed_at - H)
                    for row in history[:400] if row.escalation_level][:6]
    Escalation.objects.bulk_create(escalations)
    return bench, queues, invoices


@pytest.fixture
def world(transactional_db):
    cache.clear()  # the dashboard caches complete hours of closed cases
    with time_machine.travel(FROZEN, tick=True):
        yield build_dashboard_world()
    cache.clear()


def test_manager_watches_filters_and_reassigns_an_at_risk_case(page, live_server, world,
                                                              sign_in):
    bench, _, _ = world
    sign_in(page, bench.manager)

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="SLA dashboard", level=1)).to_be_visible()
    # Charts, each with its title, and the gauges.
    for title in ("Open cases by queue: on track, at risk and breached",
                  "Backlog age: open cases by time since they opened",
                  "Escalations by level, stacked by cause"):
        expect(page.get_by_role("img", name=re.compile(re.escape(title)))).to_be_visible()
    assert page.locator("svg[role=img]").count() >= 9
    urgent = page.get_by_role("region", name="At risk and breached")
    row = urgent.get_by_role("row").filter(has_text=AT_RISK_TITLE)
    expect(row).to_contain_text("At risk")
    expect(row).to_contain_text("Alice Moreau")
    expect(row.get_by_role("link", name=AT_RISK_TITLE)).to_have_attribute(
        "href", re.compile(r"^/cases/\d+/$"))
    page.wait_for_timeout(300)  # let fonts settle for the screenshot
    shoot(page, "dashboard")

    # Filter by queue: htmx swaps the figures in place and the URL follows.
    page.get_by_label("Queue", exact=True).select_option("invoice-review")
    expect(page).to_have_url(re.compile(r"queue=invoice-review"))
    expect(page.get_by_text("Invoice review", exact=True).first).to_be_visible()
    expect(page.locator(".dash-scope")).to_contain_text("Invoice review")
    status_chart = page.get_by_role("img", name=re.compile("^Open cases by queue"))
    expect(status_chart).not_to_contain_text("Claims review")
    expect(status_chart).to_contain_text("Invoice review")

    # Reassign the at-risk case to Bob, from the dashboard.
    row = page.get_by_role("region", name="At risk and breached").get_by_role("row").filter(
        has_text=AT_RISK_TITLE)
    row.get_by_label(re.compile("^Reassign")).select_option(label="Bob Okafor")
    row.get_by_role("button", name="Reassign").click()
    expect(page.get_by_role("status").filter(has_text="is now with Bob Okafor")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/dashboard/\?.*queue=invoice-review"))
    row = page.get_by_role("row").filter(has_text=AT_RISK_TITLE)
    expect(row).to_contain_text("Bob Okafor")
    case = Case.objects.get(title=AT_RISK_TITLE)
    assert case.assignee == bench.second_reviewer


def test_manager_sees_the_raci_matrix(page, live_server, world, sign_in):
    bench, _, invoices = world
    sign_in(page, bench.manager)

    page.goto(f"{live_server.url}/raci/{invoices.slug}/")

    expect(page.get_by_role("heading", name="Invoice approval", level=1)).to_be_visible()
    matrix = page.get_by_role("table")
    for header in ("Activity", "Responsible", "Accountable", "Consulted", "Informed"):
        expect(matrix.get_by_role("columnheader", name=re.compile(header))).to_be_visible()
    review = matrix.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Review"))
    expect(review).to_contain_text("Alice Moreau")
    expect(review).to_contain_text("Bob Okafor")
    assert matrix.get_by_role("row").count() == 7  # the header and six activities
    # docs/screenshots/raci-matrix.png comes from tests/browser/test_raci_matrix.py:
    # one writer per screenshot keeps them reproducible.
