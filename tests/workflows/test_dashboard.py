"""The managers' SLA dashboard (``workflows.dashboard``, ``views_dashboard``) and the
Prometheus scrape (``workflows.metrics``), on a small hand-built world whose every figure
is worked out below by hand.

``NOW`` is injected into the selectors and frozen with time-machine for the pages.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from tests.factories import CaseFactory, QueueFactory, UserFactory, make_manager
from tests.workflows.metrics_support import samples, scrape
from workflows import dashboard, hooks, metrics
from workflows.models import Case, CaseState, Escalation, Process
from workflows.tasks import count_open_cases, warm_dashboard

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
D = timedelta(days=1)


def at(delta: timedelta) -> datetime:
    return NOW + delta


@pytest.fixture(autouse=True)
def fresh_cache():
    """The dashboard caches complete hours of closed cases: each test starts without."""
    cache.clear()
    yield
    cache.clear()


@dataclass
class World:
    invoices: Process
    claims_process: Process
    review: object  # queues
    qa: object
    claims: object
    alice: object
    bob: object
    carol: object
    manager: object
    oscar: object
    cases: dict


def case(queue, name, *, state, created, due=None, warn=None, response_due=None,
         response_warn=None, claimed=None, closed=None, assignee=None, reviewer=None,
         waiting_since=None, level=0, spent=0, priority=50):
    """A case put straight into a state, with the clocks given (all relative to NOW)."""
    created_at = at(created)
    return CaseFactory(
        queue=queue, title=name, state=state, priority=priority, created_at=created_at,
        due_at=at(due) if due is not None else None,
        warn_at=at(warn) if warn is not None else None,
        response_due_at=at(response_due) if response_due is not None else created_at + H,
        response_warn_at=at(response_warn) if response_warn is not None
        else created_at + 45 * M,
        first_claimed_at=at(claimed) if claimed is not None else None,
        closed_at=at(closed) if closed is not None else None,
        assignee=assignee, first_reviewer=reviewer,
        waiting_since=at(waiting_since) if waiting_since is not None else None,
        escalation_level=level, time_spent_seconds=spent)


def escalation(case_row, level, cause, created):
    return Escalation.objects.create(case=case_row, level=level, cause=cause,
                                     created_at=at(created))


@pytest.fixture
def world(db):
    invoices = Process.objects.create(slug="invoice-approval", name="Invoice approval")
    claims_process = Process.objects.create(slug="claims-triage", name="Claims triage")
    review = QueueFactory(slug="invoice-review", name="Invoice review", process=invoices)
    qa = QueueFactory(slug="invoice-qa", name="Invoice QA", process=invoices)
    claims = QueueFactory(slug="claims", name="Claims", process=claims_process)
    alice = UserFactory(username="alice", first_name="Alice", last_name="Moreau")
    bob = UserFactory(username="bob", first_name="Bob", last_name="Okafor")
    carol = UserFactory(username="carol", first_name="Carol", last_name="Ng")
    oscar = UserFactory(username="oscar")
    manager = make_manager(username="maria")
    review.members.add(alice, bob)
    qa.members.add(bob)
    claims.members.add(oscar, bob)
    ap_team = Group.objects.create(name="AP team")
    carol.groups.add(ap_team)
    review.member_groups.add(ap_team)

    OPEN, ASSIGNED, WAITING, PENDING, ESCALATED, RESOLVED, CANCELLED = (
        CaseState.OPEN, CaseState.ASSIGNED, CaseState.WAITING, CaseState.PENDING_APPROVAL,
        CaseState.ESCALATED, CaseState.RESOLVED, CaseState.CANCELLED)
    cases = {
        # -- open, Invoice review: 2 on track, 4 at risk, 2 breached ------------------
        "c1": case(review, "c1 on track", state=OPEN, created=-30 * M, warn=3 * H, due=4 * H,
                   response_warn=15 * M, response_due=20 * M),
        "c2": case(review, "c2 response warning", state=OPEN, created=-2 * H, warn=2 * H,
                   due=6 * H, response_warn=-10 * M, response_due=5 * M),
        "c3": case(review, "c3 resolution warning", state=ASSIGNED, created=-6 * H,
                   claimed=-5 * H, warn=-1 * H, due=1 * H, assignee=alice),
        "c4": case(review, "c4 overdue", state=ASSIGNED, created=-2 * D, claimed=-47 * H,
                   warn=-5 * H, due=-3 * H, assignee=alice),
        # Paused before its deadline (now past): not breached; warned before the pause.
        "c5": case(review, "c5 paused in time", state=WAITING, created=-5 * D, claimed=-5 * D,
                   waiting_since=-1 * D, warn=-25 * H, due=-12 * H, assignee=alice),
        # Paused after its deadline: breached.
        "c6": case(review, "c6 paused late", state=WAITING, created=-4 * D, claimed=-4 * D,
                   waiting_since=-1 * D, warn=-40 * H, due=-30 * H, assignee=bob),
        "c7": case(review, "c7 escalated", state=ESCALATED, created=-3 * H, warn=-5 * M,
                   due=30 * M, response_warn=-150 * M, response_due=-2 * H, level=2),
        "c8": case(review, "c8 four eyes", state=PENDING, created=-20 * H, claimed=-19 * H,
                   warn=6 * H, due=8 * H, reviewer=bob),
        # -- open, Invoice QA: 1 breached; Claims: 1 on track ------------------------------
        "c9": case(qa, "c9 qa overdue", state=OPEN, created=-10 * M, warn=-5 * M, due=-1 * M,
                   response_warn=-8 * M, response_due=-5 * M),
        "c10": case(claims, "c10 claims", state=ASSIGNED, created=-90 * M, claimed=-1 * H,
                    warn=20 * H, due=1 * D, assignee=bob, level=1),
        # -- resolved and cancelled ----------------------------------------------------
        "r1": case(review, "r1 met", state=RESOLVED, created=-5 * H, claimed=-4 * H, closed=-2 * H,
                   due=-1 * H, assignee=alice, reviewer=alice, spent=600),
        "r2": case(review, "r2 late", state=RESOLVED, created=-10 * H, claimed=-570 * M,
                   closed=-3 * H, due=-4 * H, assignee=alice, reviewer=alice, spent=1200),
        "r3": case(review, "r3 met", state=RESOLVED, created=-3 * D, claimed=-3 * D + 2 * H,
                   closed=-2 * D, due=-2 * D + H, assignee=bob, reviewer=bob, spent=300),
        # Within its level-1 deadline, but a missed deadline escalated it: not met.
        "r4": case(review, "r4 escalated late", state=RESOLVED, created=-4 * D,
                   claimed=-4 * D + 30 * M, closed=-3 * D, due=-2 * D, level=1,
                   assignee=bob, reviewer=bob, spent=900),
        # Escalated by hand, resolved in time: met.
        "r5": case(review, "r5 manual escalation", state=RESOLVED, created=-10 * D,
                   claimed=-10 * D + H, closed=-9 * D, due=-9 * D + 2 * H, level=1,
                   assignee=alice, reviewer=alice, spent=400),
        "r6": case(review, "r6 cancelled", state=CANCELLED, created=-2 * H, closed=-1 * H, due=H),
        "r7": case(review, "r7 long ago", state=RESOLVED, created=-41 * D, claimed=-41 * D,
                   closed=-40 * D, due=-39 * D, assignee=alice, reviewer=alice),
        "r8": case(qa, "r8 qa met", state=RESOLVED, created=-1 * H, claimed=-50 * M,
                   closed=-30 * M, due=1 * H, assignee=bob, reviewer=bob, spent=120),
    }
    escalation(cases["r4"], 1, "resolution_breach", -3 * D - 6 * H)
    escalation(cases["r5"], 1, "manual", -9 * D - 12 * H)
    escalation(cases["c7"], 1, "response_breach", -2 * H)
    escalation(cases["c7"], 2, "manual", -1 * H)
    escalation(cases["c10"], 1, "manual", -30 * M)
    return World(invoices=invoices, claims_process=claims_process, review=review, qa=qa,
                 claims=claims, alice=alice, bob=bob, carol=carol, manager=manager,
                 oscar=oscar, cases=cases)


def figures_of(board, label) -> dashboard.Figures:
    rows = {row.label: row for row in board.queue_figures}
    rows.update({group.figures.label: group.figures for group in board.groups})
    rows[board.total.label] = board.total
    return rows[label]


# --- Open cases now ------------------------------------------------------------------------


def test_open_at_risk_and_breached_per_queue_process_and_overall(world):
    board = dashboard.dashboard(now=NOW)

    review = figures_of(board, "Invoice review").live
    assert (review.open, review.at_risk, review.breached, review.on_track) == (8, 4, 2, 2)
    qa = figures_of(board, "Invoice QA").live
    assert (qa.open, qa.at_risk, qa.breached) == (1, 0, 1)
    claims = figures_of(board, "Claims").live
    assert (claims.open, claims.at_risk, claims.breached) == (1, 0, 0)
    invoices = figures_of(board, "Invoice approval").live
    assert (invoices.open, invoices.at_risk, invoices.breached) == (9, 4, 3)
    assert (board.total.live.open, board.total.live.at_risk,
            board.total.live.breached) == (10, 4, 3)


def test_backlog_age_buckets(world):
    board = dashboard.dashboard(now=NOW)

    assert figures_of(board, "Invoice review").live.ages == {
        "under_1h": 1, "1h_4h": 2, "4h_24h": 2, "1d_3d": 1, "over_3d": 2}
    assert board.total.live.ages == {
        "under_1h": 2, "1h_4h": 3, "4h_24h": 2, "1d_3d": 1, "over_3d": 2}


def test_urgent_cases_breached_first_then_at_risk_by_deadline(world):
    board = dashboard.dashboard(now=NOW)

    assert [row.case.title.split()[0] for row in board.urgent] == [
        "c6", "c4", "c9", "c5", "c2", "c7", "c3"]
    assert [row.status_label for row in board.urgent] == ["Breached"] * 3 + ["At risk"] * 4
    assert board.urgent[0].deadline == at(-30 * H)
    # c2's first response comes due before its resolution deadline.
    assert board.urgent[4].deadline == at(5 * M)
    assert board.urgent_total == 7


def test_urgent_cases_are_bounded_and_offer_the_queue_members(world):
    board = dashboard.dashboard(now=NOW, urgent_limit=2)

    assert len(board.urgent) == 2
    c4 = board.urgent[1]
    assert c4.case.title.startswith("c4")
    # Alice holds it; Bob works the queue, Carol through the AP team group.
    assert [user.username for user in c4.candidates] == ["bob", "carol"]


def test_reviewer_load_counts_assigned_and_waiting_cases(world):
    board = dashboard.dashboard(now=NOW)

    load = {row.user.username: row.open_assignments for row in board.reviewers}
    assert load == {"alice": 3, "bob": 2}


# --- The period ------------------------------------------------------------------------------


def test_sla_compliance_over_each_period(world):
    board = dashboard.dashboard(now=NOW)

    review = figures_of(board, "Invoice review").compliance
    # 24h: r1 met, r2 late; 7d: + r3 met, r4 escalated for a breach; 30d: + r5 manual.
    assert [(review[key].met, review[key].resolved) for key in ("24h", "7d", "30d")] == [
        (1, 2), (2, 4), (3, 5)]
    assert review["30d"].percent == pytest.approx(60.0)
    total = board.total.compliance
    assert [(total[key].met, total[key].resolved) for key in ("24h", "7d", "30d")] == [
        (2, 3), (3, 5), (4, 6)]
    assert figures_of(board, "Claims").compliance["7d"].percent is None


def about(seconds):
    """A latency figure: every duration is known to within the sketch's accuracy."""
    return pytest.approx(seconds, rel=dashboard.SKETCH_ACCURACY)


def test_median_and_p90_per_queue_process_and_overall(world):
    board = dashboard.dashboard(now=NOW, period="7d")

    review = figures_of(board, "Invoice review").latency
    # First responses 1800, 1800, 3600, 7200 s; resolutions 3 h, 7 h, 1 d, 1 d;
    # interpolated between ranks as percentile_cont does.
    assert review.response_p50 == about(2700)
    assert review.response_p90 == about(6120)
    assert review.resolution_p50 == about(55800)
    assert review.resolution_p90 == about(86400)
    assert (review.response_count, review.resolution_count) == (4, 4)
    # The process adds the QA case: responses 600 s more, resolution 1800 s more.
    for latency in (figures_of(board, "Invoice approval").latency, board.total.latency):
        assert latency.response_p50 == about(1800)
        assert latency.response_p90 == about(5760)
        assert latency.resolution_p50 == about(25200)
        assert latency.resolution_p90 == about(86400)
    claims = figures_of(board, "Claims").latency
    assert claims.response_p50 is None and claims.resolution_count == 0


def sketch(*durations):
    counts = {}
    for seconds in durations:
        counts[dashboard.bucket_of(seconds)] = counts.get(dashboard.bucket_of(seconds), 0) + 1
    return counts


@pytest.mark.parametrize(("durations", "fraction", "expected"), [
    ((7.0,), 0.9, 7.0),
    ((60.0, 120.0, 180.0, 240.0), 0.5, 150.0),
    ((60.0, 120.0, 180.0, 240.0, 600.0), 0.9, 456.0),
    ((0.0, 0.5, 3600.0), 0.5, 1.0),
    (tuple(float(n) for n in range(1, 100_001)), 0.9, 90_000.1),
])
def test_sketch_percentiles_are_percentile_cont_within_one_percent(durations, fraction,
                                                                   expected):
    assert dashboard.sketch_percentile(sketch(*durations), fraction) == about(expected)


def test_sketch_of_nothing_has_no_percentile():
    assert dashboard.sketch_percentile({}, 0.5) is None


@pytest.mark.parametrize("now", [NOW, NOW + 17 * M, NOW + 3 * M + 7 * H, NOW + 23 * H + 59 * M])
@pytest.mark.parametrize("length", list(dashboard.PERIODS.values()))
def test_a_period_is_cut_into_pieces_that_cover_it_exactly(now, length):
    plan = dashboard.plan_period(start=now - length, now=now)

    pieces = ([(span.start, span.end) for span in plan.raw]
              + [(hour, hour + H) for hour in plan.hours] + [(day, day + D) for day in plan.days])
    pieces.sort()
    assert pieces[0][0] == now - length and pieces[-1][1] == now
    assert all(a[1] == b[0] for a, b in pairwise(pieces))
    # What the database reads per request: under two hours, however long the period.
    assert sum((span.end - span.start for span in plan.raw), timedelta()) < 2 * H + M
    assert all(hour + H <= now - dashboard.FINAL_AFTER for hour in plan.hours)
    assert len(plan.hours) <= 48 and len(plan.days) <= 30


def test_cached_hours_and_days_give_the_same_figures(world):
    cold = dashboard.dashboard(now=NOW, period="30d")
    with CaptureQueriesContext(connection) as warm_queries:
        warm = dashboard.dashboard(now=NOW, period="30d")

    for label in ("Invoice review", "Invoice QA", "Claims", "Invoice approval", "All queues"):
        a, b = figures_of(cold, label), figures_of(warm, label)
        assert a.compliance == b.compliance and a.period == b.period
    assert len(warm_queries.captured_queries) < 10 + len(hooks.alert_sources())


@pytest.mark.parametrize("first", ["24h", "7d"])
def test_a_period_read_after_another_from_the_cache_is_whole(world, first):
    cold = dashboard.dashboard(now=NOW, period="30d")
    cache.clear()
    dashboard.dashboard(now=NOW, period=first)  # caches hours and days for every period

    warm = dashboard.dashboard(now=NOW, period="30d")
    for label in ("Invoice review", "All queues"):
        a, b = figures_of(cold, label), figures_of(warm, label)
        assert a.compliance == b.compliance and a.period == b.period
    assert {row.user.username: row.resolved for row in warm.reviewers} == {
        "alice": 3, "bob": 3}


def test_a_case_resolved_minutes_ago_counts_at_once(world):
    dashboard.dashboard(now=NOW)  # every complete hour is cached now
    case(world.claims, "just now", state=CaseState.RESOLVED, created=-20 * M, claimed=-15 * M,
         closed=-2 * M, due=H, assignee=world.bob, reviewer=world.bob)

    board = dashboard.dashboard(now=NOW)
    assert figures_of(board, "Claims").compliance["24h"].resolved == 1


def test_forgetting_the_cache_rereads_history(world):
    dashboard.dashboard(now=NOW)
    # An import of old cases, behind the cache's back.
    case(world.claims, "imported", state=CaseState.RESOLVED, created=-50 * H, claimed=-49 * H,
         closed=-48 * H, due=-47 * H, assignee=world.bob, reviewer=world.bob)
    assert figures_of(dashboard.dashboard(now=NOW), "Claims").compliance["7d"].resolved == 0

    dashboard.forget_closed_figures()
    assert figures_of(dashboard.dashboard(now=NOW), "Claims").compliance["7d"].resolved == 1


def test_period_changes_latency_throughput_and_escalations(world):
    day = dashboard.dashboard(now=NOW, period="24h")
    assert figures_of(day, "Invoice review").latency.resolution_count == 2
    assert {row.user.username: row.resolved for row in day.reviewers} == {
        "alice": 2, "bob": 1}

    week = dashboard.dashboard(now=NOW, period="7d")
    throughput = {row.user.username: (row.resolved, row.time_spent_seconds)
                  for row in week.reviewers}
    assert throughput == {"alice": (2, 1800), "bob": (3, 1320)}


def test_escalations_by_level_and_cause(world):
    week = dashboard.dashboard(now=NOW, period="7d")
    assert [(row.level, row.by_cause) for row in week.escalations] == [
        (1, {"response_breach": 1, "resolution_breach": 1, "manual": 1}),
        (2, {"response_breach": 0, "resolution_breach": 0, "manual": 1})]
    month = dashboard.dashboard(now=NOW, period="30d")
    assert month.escalations[0].by_cause["manual"] == 2
    assert month.escalation_total == 5


# --- Filters ---------------------------------------------------------------------------------


def test_filter_by_queue(world):
    board = dashboard.dashboard(now=NOW, queue="invoice-review")

    assert [row.label for row in board.queue_figures] == ["Invoice review"]
    assert board.total.live.open == 8
    assert board.escalations[0].by_cause == {
        "response_breach": 1, "resolution_breach": 1, "manual": 0}
    assert {row.case.queue_id for row in board.urgent} == {world.review.pk}


def test_filter_by_process(world):
    board = dashboard.dashboard(now=NOW, process="invoice-approval")

    assert [group.figures.label for group in board.groups] == ["Invoice approval"]
    assert [row.label for row in board.queue_figures] == ["Invoice QA", "Invoice review"]
    assert board.total.live.open == 9


def test_unknown_or_mismatched_filters_select_nothing(world):
    assert dashboard.dashboard(now=NOW, queue="nope").queue_figures == []
    board = dashboard.dashboard(now=NOW, process="claims-triage", queue="invoice-review")
    assert board.total.live.open == 0 and board.urgent == []


def test_unknown_period_falls_back_to_seven_days(world):
    assert dashboard.dashboard(now=NOW, period="1y").period == "7d"


def test_fixed_number_of_queries_whatever_the_data(world, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as small:
        dashboard.dashboard(now=NOW)
    for n in range(30):
        case(world.review, f"more {n}", state=CaseState.ASSIGNED, created=-n * H,
             claimed=-n * H, warn=-H, due=-M, assignee=world.carol)
        case(world.claims, f"done {n}", state=CaseState.RESOLVED, created=-n * H - H,
             claimed=-n * H, closed=-n * H, due=H, assignee=world.bob, reviewer=world.bob)
    cache.clear()
    with django_assert_max_num_queries(len(small.captured_queries)):
        board = dashboard.dashboard(now=NOW)
    assert board.total.live.open == 40
    # Queues, processes, open cases, the urgent list, their members, the people, the
    # escalations; closed cases: two for the incomplete hours, two each for the hours
    # and the days not cached yet; and each alert source's (the domain's drift alerts).
    assert len(small.captured_queries) <= 13 + len(hooks.alert_sources())


# --- The page --------------------------------------------------------------------------------


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_manager_sees_the_dashboard_with_charts_and_the_urgent_cases(client, world, frozen):
    client.force_login(world.manager)

    response = client.get(reverse("sla-dashboard"))

    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('role="img"') >= 9  # 6 charts and 3 gauges
    assert "Open cases by queue: on track, at risk and breached" in body
    assert "Invoice review: 8 open, 4 at risk, 2 breached." in body
    assert reverse("case", args=[world.cases["c4"].pk]) in body
    assert "overdue by 3 h</time>" in body
    assert "first response due in 5 min</time>" in body
    assert 'href="/static/css/dashboard.css"' in body or "dashboard.css" in body


def test_filters_by_queue_and_period_through_get_parameters(client, world, frozen):
    client.force_login(world.manager)

    response = client.get(reverse("sla-dashboard"), {"queue": "invoice-qa", "period": "24h"})

    board = response.context["board"]
    assert [row.label for row in board.queue_figures] == ["Invoice QA"]
    assert board.period == "24h"
    assert "c9 qa overdue" in response.content.decode()
    assert "c4 overdue" not in response.content.decode()


def test_managers_looking_within_seconds_share_one_count_of_the_open_cases(client, world):
    client.force_login(world.manager)
    with time_machine.travel(NOW, tick=False):
        first = client.get(reverse("sla-dashboard")).context["board"]
    CaseFactory(queue=world.review, state=CaseState.OPEN)

    with time_machine.travel(NOW + timedelta(seconds=dashboard.LIVE_SECONDS - 1), tick=False):
        shared = client.get(reverse("sla-dashboard"))
    with time_machine.travel(NOW + timedelta(seconds=dashboard.LIVE_SECONDS + 1), tick=False):
        recounted = client.get(reverse("sla-dashboard")).context["board"]

    # The second look reads the first one's figures, and says when they were counted.
    assert shared.context["board"].now == first.now == NOW
    assert figures_of(shared.context["board"], "Invoice review").live.open == 8
    assert "as of <time datetime=\"2026-11-20T12:00:00+00:00\">" in shared.content.decode()
    assert recounted.now == NOW + timedelta(seconds=dashboard.LIVE_SECONDS + 1)
    assert figures_of(recounted, "Invoice review").live.open == 9

    # While another manager's request counts again, a look gets the last count at once.
    CaseFactory(queue=world.review, state=CaseState.OPEN)
    cache.add(f"dashboard:live:all:{dashboard.URGENT_LIMIT}:counting", True)
    with time_machine.travel(NOW + timedelta(seconds=3 * dashboard.LIVE_SECONDS), tick=False):
        meanwhile = client.get(reverse("sla-dashboard")).context["board"]
    assert meanwhile.now == recounted.now
    assert figures_of(meanwhile, "Invoice review").live.open == 9


def test_the_looks_that_share_a_count_share_its_board_made_once(client, world):
    """The first look after a count makes the board and renders its figures; the other
    managers' looks until the next count read them from the cache, as of the count."""
    client.force_login(world.manager)
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as made:
        first = client.get(reverse("sla-dashboard"))
    made_queries = len(made)  # the next request clears the connection's log
    Case.objects.filter(pk=world.cases["c3"].pk).update(
        state=CaseState.RESOLVED, closed_at=NOW, first_reviewer=world.alice)
    mona = Client(enforce_csrf_checks=True)
    mona.force_login(make_manager(username="mona"))

    later = NOW + timedelta(seconds=dashboard.LIVE_SECONDS - 1)
    with time_machine.travel(later, tick=False), CaptureQueriesContext(connection) as shared:
        looked = mona.get(reverse("sla-dashboard"))
    shared_queries = len(shared)
    with time_machine.travel(NOW + timedelta(seconds=dashboard.LIVE_SECONDS + 1), tick=False):
        recounted = client.get(reverse("sla-dashboard")).context["board"]

    def resolved_today(board):
        return figures_of(board, "Invoice review").compliance["24h"].resolved

    assert resolved_today(looked.context["board"]) == resolved_today(first.context["board"]) == 2
    assert resolved_today(recounted) == 3
    # Nothing of the board is read again: the session and its person, the top bar, the
    # alerts; its charts and tables are not rendered again either.
    assert shared_queries <= 3 + len(hooks.alert_sources()) < made_queries
    assert "workflows/dashboard/charts/status.html" in {t.name for t in first.templates}
    assert "workflows/dashboard/charts/status.html" not in {t.name for t in looked.templates}
    assert _figures_part(looked) == _figures_part(first)

    # The urgent cases' forms are Mona's own: she reassigns from the shared page.
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"',
                      looked.content.decode()).group(1)
    c9 = world.cases["c9"]
    with time_machine.travel(later, tick=False):
        answer = mona.post(reverse("sla-dashboard-reassign", args=[c9.pk]), {
            "to_user": world.bob.pk, "version": c9.version, "csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    assert Case.objects.get(pk=c9.pk).assignee == world.bob


def _figures_part(response) -> str:
    body = response.content.decode()
    return body[body.index('<section class="kpis"'):body.index('id="urgent"')]


def test_a_board_made_before_the_closed_figures_were_forgotten_is_made_again(client, world,
                                                                             frozen):
    client.force_login(world.manager)
    client.get(reverse("sla-dashboard"))
    Case.objects.filter(pk=world.cases["c3"].pk).update(
        state=CaseState.RESOLVED, closed_at=NOW - 2 * H, first_reviewer=world.alice)

    dashboard.forget_closed_figures()
    board = client.get(reverse("sla-dashboard")).context["board"]

    assert figures_of(board, "Invoice review").compliance["24h"].resolved == 3


def test_the_alerts_are_read_at_every_look_of_a_shared_board(client, world, frozen,
                                                             drift_alerts):
    client.force_login(world.manager)
    client.get(reverse("sla-dashboard"))
    client.get(reverse("sla-dashboard"))

    assert len(drift_alerts) == 2


def test_the_beat_job_counts_the_desk_so_a_look_finds_it_fresh(client, world):
    with time_machine.travel(NOW, tick=False):
        count_open_cases()
    CaseFactory(queue=world.review, state=CaseState.OPEN)
    client.force_login(world.manager)

    with time_machine.travel(NOW + timedelta(seconds=3), tick=False):
        with CaptureQueriesContext(connection) as look:
            board = client.get(reverse("sla-dashboard")).context["board"]
        looked_queries = len(look)  # the next request clears the connection's log
        count_open_cases()  # counts again, though its last count is fresh
        recounted = dashboard.live_snapshot(queue_ids=None, now=NOW + timedelta(seconds=3))

    assert board.now == NOW
    # The job made the board too: the look read the session, the top bar and the alerts.
    assert looked_queries <= 3 + len(hooks.alert_sources())
    assert figures_of(board, "Invoice review").live.open == 8
    assert recounted[0] == NOW + timedelta(seconds=3)
    assert recounted[1][world.review.pk].open == 9


@time_machine.travel(NOW, tick=False)  # the counts' times are given; the cache's is NOW
def test_a_count_that_took_long_is_made_again_only_after_ten_times_as_long(world):
    key = f"dashboard:live:all:{dashboard.URGENT_LIMIT}"
    count_open_cases()
    cache.set(f"{key}:took", 5.0)  # as a count of a very large desk takes
    CaseFactory(queue=world.review, state=CaseState.OPEN)

    def counted_at(seconds: int, *, recount: bool) -> datetime:
        return dashboard.live_snapshot(queue_ids=None, now=NOW + timedelta(seconds=seconds),
                                       recount=recount)[0]

    # Beat counts again 50 s (10 x 5 s) after the last count began; a manager's look
    # takes the last count until beat should have made the next one (10 + 50 + 5 s).
    assert counted_at(49, recount=True) == NOW
    assert counted_at(64, recount=False) == NOW
    assert counted_at(66, recount=False) == NOW + timedelta(seconds=66)
    cache.set(f"{key}:took", 5.0)
    assert counted_at(116, recount=True) == NOW + timedelta(seconds=116)


@pytest.mark.parametrize("scope", ["all", "invoices"])
@pytest.mark.parametrize("urgent_limit", [3, dashboard.URGENT_LIMIT])
def test_the_beat_job_counts_in_slices_what_one_statement_counts(world, monkeypatch, scope,
                                                                 urgent_limit):
    monkeypatch.setattr("workflows.dashboard.live.SLICE_ROWS", 2)
    queue_ids = None if scope == "all" else [world.review.pk, world.qa.pk]

    with CaptureQueriesContext(connection) as queries:
        sliced = dashboard.count_in_slices(queue_ids=queue_ids, now=NOW,
                                           urgent_limit=urgent_limit)

    live, load = dashboard.live_by_queue(queue_ids=queue_ids, now=NOW)
    urgent = dashboard.urgent_cases(queue_ids=queue_ids, now=NOW, limit=urgent_limit)
    assert sliced == (live, load, urgent)
    assert [row.case.title for row in sliced[2]] == [row.case.title for row in urgent]
    counts = [query for query in queries if "GROUP BY" in query["sql"]]
    assert len(counts) >= 4  # ten open cases (nine in the invoice queues), about two a time


def test_htmx_refresh_answers_the_body_only(client, world, frozen):
    client.force_login(world.manager)

    response = client.get(reverse("sla-dashboard"), {"period": "30d"}, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and "Open cases by queue" in body


@pytest.mark.parametrize("who", ["alice", "oscar"])
def test_non_managers_are_refused(client, world, who):
    client.force_login(getattr(world, who))

    assert client.get(reverse("sla-dashboard")).status_code == 403
    response = client.post(reverse("sla-dashboard-reassign", args=[world.cases["c4"].pk]),
                           {"to_user": world.bob.pk})
    assert response.status_code == 403
    assert Case.objects.get(pk=world.cases["c4"].pk).assignee == world.alice


def test_anonymous_people_are_sent_to_sign_in(client, world):
    response = client.get(reverse("sla-dashboard"))
    assert response.status_code == 302 and reverse("login") in response.url


def test_only_managers_see_the_dashboard_link(client, world, frozen):
    client.force_login(world.alice)
    assert reverse("sla-dashboard") not in client.get(reverse("notifications")).content.decode()
    client.force_login(world.manager)
    assert reverse("sla-dashboard") in client.get(reverse("notifications")).content.decode()


def test_page_does_a_fixed_number_of_queries(client, world, frozen,
                                             django_assert_max_num_queries):
    client.force_login(world.manager)
    cache.clear()  # both requests on a cold cache (where sessions are cached, theirs too)
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("sla-dashboard"))
    for n in range(25):
        case(world.review, f"more {n}", state=CaseState.ASSIGNED, created=-n * H,
             claimed=-n * H, warn=-H, due=-M, assignee=world.carol)
        case(world.qa, f"done {n}", state=CaseState.RESOLVED, created=-n * H - H,
             claimed=-n * H, closed=-n * H, due=H, assignee=world.bob, reviewer=world.bob)
        escalation(case(world.claims, f"esc {n}", state=CaseState.ESCALATED, created=-H,
                        due=H, level=1), 1, "manual", -M)
    cache.clear()
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(reverse("sla-dashboard"))
    assert len(response.context["board"].urgent) == dashboard.URGENT_LIMIT
    # The session, the manager and their permissions, the top bar's two counts, and the
    # dashboard's own (at most 13, on a cold cache), and each alert source's.
    assert len(small.captured_queries) <= 19 + len(hooks.alert_sources())


# --- Reassigning from the dashboard ----------------------------------------------------------


def reassign(client, case_row, to_user, *, version=None, next_url="/dashboard/?queue=claims"):
    return client.post(reverse("sla-dashboard-reassign", args=[case_row.pk]), {
        "to_user": to_user.pk if to_user else "", "next": next_url,
        "version": case_row.version if version is None else version}, follow=True)


def test_manager_reassigns_an_at_risk_case(client, world, frozen):
    client.force_login(world.manager)
    c3 = world.cases["c3"]

    response = reassign(client, c3, world.bob, next_url="/dashboard/?queue=invoice-review")

    assert response.redirect_chain[-1] == ("/dashboard/?queue=invoice-review", 302)
    c3.refresh_from_db()
    assert (c3.state, c3.assignee) == (CaseState.ASSIGNED, world.bob)
    assert "c3 resolution warning is now with Bob Okafor." in response.content.decode()
    assert c3.audit_events.filter(verb="case.reassigned").count() == 1


def test_reassigning_to_someone_outside_the_queue_says_so(client, world, frozen):
    client.force_login(world.manager)
    c3 = world.cases["c3"]

    response = reassign(client, c3, world.oscar)

    body = response.content.decode()
    assert "was not reassigned: oscar does not work the queue" in body
    c3.refresh_from_db()
    assert c3.assignee == world.alice


def test_reassigning_a_case_changed_meanwhile_is_refused(client, world, frozen):
    client.force_login(world.manager)
    c3 = world.cases["c3"]

    response = reassign(client, c3, world.bob, version=c3.version + 1)

    assert "someone changed it since this page was loaded" in response.content.decode()
    c3.refresh_from_db()
    assert c3.assignee == world.alice


def test_reassigning_a_resolved_case_is_refused(client, world, frozen):
    client.force_login(world.manager)

    response = reassign(client, world.cases["r1"], world.bob)

    assert "cannot be reassigned now" in response.content.decode()


def test_reassign_needs_a_person_and_an_existing_case(client, world, frozen):
    client.force_login(world.manager)

    response = reassign(client, world.cases["c3"], None)
    assert "Choose who should take the case over." in response.content.decode()
    missing = client.post(reverse("sla-dashboard-reassign", args=[999999]),
                          {"to_user": world.bob.pk})
    assert missing.status_code == 404


def test_reassign_goes_back_only_to_our_own_pages(client, world, frozen):
    client.force_login(world.manager)

    response = client.post(reverse("sla-dashboard-reassign", args=[world.cases["c3"].pk]),
                           {"to_user": world.bob.pk, "next": "https://evil.example/"})

    assert response.url == reverse("sla-dashboard")


# --- /metrics ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def metrics_open_to_this_host(settings):
    """The scrapes below come from loopback, as on the demo's host."""
    settings.METRICS_ALLOW_LOOPBACK = True


def test_metrics_parse_and_carry_the_dashboard_figures(client, world, frozen):
    response, families = scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    review = (("process", "invoice-approval"), ("queue", "invoice-review"))
    qa = (("process", "invoice-approval"), ("queue", "invoice-qa"))
    claims = (("process", "claims-triage"), ("queue", "claims"))
    assert samples(families, "backstop_queue_open_cases") == {review: 8, qa: 1, claims: 1}
    assert samples(families, "backstop_queue_at_risk_cases") == {review: 4, qa: 0, claims: 0}
    assert samples(families, "backstop_queue_breached_cases") == {review: 2, qa: 1, claims: 0}
    assert families["backstop_escalations"].type == "counter"
    assert samples(families, "backstop_escalations") == {
        (("level", "1"),): 4, (("level", "2"),): 1}
    assert families["backstop_sla_breaches"].type == "counter"
    assert samples(families, "backstop_sla_breaches") == {
        (("clock", "resolution"),): 1, (("clock", "response"),): 1}
    assert families["backstop_metrics_scrape_seconds"].samples[0].value >= 0


def test_escalation_counters_grow_and_read_only_recent_rows(client, world):
    with time_machine.travel(NOW, tick=False):
        _, first = scrape(client)
    # Written after that scrape: one escalation just now, and one dated long ago, as an
    # import would (a sweep's rows are never older than FINAL_AFTER when they commit).
    escalation(world.cases["c10"], 2, "resolution_breach", -M)
    escalation(world.cases["r6"], 1, "response_breach", -20 * D)

    with time_machine.travel(NOW, tick=False):
        _, second = scrape(client)
    with time_machine.travel(NOW + 2 * metrics.FINAL_AFTER, tick=False):
        _, later = scrape(client)  # the new row is final now: in the cached base

    level = {name: samples(scraped, "backstop_escalations")
             for name, scraped in (("first", first), ("second", second), ("later", later))}
    assert level["first"] == {(("level", "1"),): 4, (("level", "2"),): 1}
    # The old row is not seen: the scrape reads only rows since its cached base.
    assert level["second"] == level["later"] == {(("level", "1"),): 4, (("level", "2"),): 2}
    assert samples(later, "backstop_sla_breaches") == {
        (("clock", "resolution"),): 2, (("clock", "response"),): 1}
    # The daily recount (or a fresh cache) counts the whole table again.
    with time_machine.travel(NOW + metrics.RECOUNT_EVERY + H, tick=False):
        _, recounted = scrape(client)
    assert samples(recounted, "backstop_escalations") == {
        (("level", "1"),): 5, (("level", "2"),): 2}
    assert samples(recounted, "backstop_sla_breaches") == {
        (("clock", "resolution"),): 2, (("clock", "response"),): 2}


def test_a_warm_scrape_reads_escalations_since_its_last_base_only(client, world):
    with time_machine.travel(NOW, tick=False):
        scrape(client)
    with time_machine.travel(NOW + 30 * M, tick=False), \
            CaptureQueriesContext(connection) as warm:
        scrape(client)

    [query] = [q["sql"] for q in warm.captured_queries if "workflows_escalation" in q["sql"]]
    since = (NOW - metrics.FINAL_AFTER).strftime("%Y-%m-%d %H:%M:%S")
    assert '"created_at" >=' in query and since in query


def test_metrics_without_a_token_are_refused_even_to_this_host(client, world, settings):
    # Behind a reverse proxy on this host every request comes from loopback: it is no
    # identity, so without a token nobody reads the metrics unless told otherwise.
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_LOOPBACK = False

    for address in ("127.0.0.1", "::1", "10.1.2.3"):
        refused, _ = scrape(client, REMOTE_ADDR=address)
        assert refused.status_code == 403
        assert "set METRICS_TOKEN" in refused.content.decode()


def test_metrics_without_a_token_answer_this_host_when_allowed(client, world, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_LOOPBACK = True

    assert scrape(client)[0].status_code == 200
    refused, _ = scrape(client, REMOTE_ADDR="10.1.2.3")
    assert refused.status_code == 403


def test_metrics_with_a_token_need_it_from_everywhere(client, world, settings):
    settings.METRICS_TOKEN = "s3cret-scrape"

    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"},
                    {"HTTP_AUTHORIZATION": "Basic s3cret-scrape"}):
        response, _ = scrape(client, **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
    response, families = scrape(client, REMOTE_ADDR="10.1.2.3",
                                HTTP_AUTHORIZATION="Bearer s3cret-scrape")
    assert response.status_code == 200 and "backstop_queue_open_cases" in families


def test_metrics_do_a_fixed_number_of_queries(client, world, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as small:
        scrape(client)
    for n in range(20):
        escalation(case(world.claims, f"esc {n}", state=CaseState.ESCALATED, created=-H,
                        due=H, level=1), 1, "manual", -M)
    with django_assert_max_num_queries(len(small.captured_queries)):
        scrape(client)
    # One query more for each figure the domain adds (hooks.register_gauge_source).
    assert len(small.captured_queries) <= 6 + len(hooks.gauge_sources())


def test_openmetrics_when_the_scraper_asks(client, world):
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response["Content-Type"].startswith("application/openmetrics-text")
    # The strict parser refuses, among others, two families of one name.
    families = {family.name: family.type for family in
                openmetrics_families(response.content.decode())}
    intake = {source.name: "counter" for source in hooks.intake_sources()}
    assert {name: kind for name, kind in families.items() if kind == "counter"} == {
        "backstop_escalations": "counter", "backstop_sla_breaches": "counter", **intake}


def test_the_warming_task_leaves_the_first_view_reading_only_recent_hours(world):
    with CaptureQueriesContext(connection) as cold:
        dashboard.dashboard(now=NOW, period="30d")
    cache.clear()

    with time_machine.travel(NOW, tick=False):
        warm_dashboard()
    with CaptureQueriesContext(connection) as first_view:
        board = dashboard.dashboard(now=NOW, period="30d")

    assert len(first_view.captured_queries) < len(cold.captured_queries)
    assert {row.user.username: row.resolved for row in board.reviewers} == {
        "alice": 3, "bob": 3}


# --- The domain's alerts ----------------------------------------------------------------------


@pytest.fixture
def drift_alerts(world, monkeypatch):
    """An alert source as a domain registers one: one alert on each process, read when
    the dashboard is."""
    reads = []

    def source():
        reads.append(1)
        return [hooks.Alert(process_id=world.invoices.pk, level="warn", title="Amounts moved",
                            detail="PSI 0.14", url="/somewhere/amounts", raised_at=at(-2 * H)),
                hooks.Alert(process_id=world.claims_process.pk, level="alert",
                            title="Claims changed", detail="PSI 0.41", url="/somewhere/claims",
                            raised_at=at(-3 * H))]
    monkeypatch.setattr(hooks, "_alert_sources", [])
    hooks.register_alert_source(source)
    return reads


def test_the_domains_alerts_show_loudest_first_and_follow_the_process_filter(world,
                                                                              drift_alerts):
    assert [alert.title for alert in dashboard.dashboard(now=NOW).alerts] == [
        "Claims changed", "Amounts moved"]
    assert [alert.title for alert in dashboard.dashboard(
        now=NOW, process="invoice-approval").alerts] == ["Amounts moved"]
    assert [alert.title for alert in dashboard.dashboard(
        now=NOW, queue="invoice-review").alerts] == ["Amounts moved"]
    assert dashboard.dashboard(now=NOW, queue="nope").alerts == []


def test_the_page_lists_the_alerts_with_links_to_the_domains_pages(client, world, frozen,
                                                                   drift_alerts):
    client.force_login(world.manager)

    body = client.get(reverse("sla-dashboard")).content.decode()

    assert 'aria-labelledby="h-alerts"' in body
    assert '<a href="/somewhere/claims">Claims changed</a>' in body
    assert "PSI 0.14" in body


def test_without_alerts_the_page_has_no_alerts_section(client, world, frozen, monkeypatch):
    monkeypatch.setattr(hooks, "_alert_sources", [])
    client.force_login(world.manager)

    assert 'id="h-alerts"' not in client.get(reverse("sla-dashboard")).content.decode()
