"""What the reviewer's path costs the server, per request (issue 15's budgets).

Query counts are exact behaviour and held tight. Server CPU depends on the machine and
what else runs on it: those checks are tripwires at five times the budget (medians of
a few requests, ``time.process_time``), there to catch a request that went back to
costing what it did before (2 to 7 times the budget), not to measure it;
``bench/reviewer_cpu.py`` measures.
"""

import logging
import statistics
import time
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.factories import QueueFactory, UserFactory, case_in_state, make_case
from tests.workflows.chain import make_chain
from tests.workflows.sla_support import office_calendar, publish
from workflows.actors import SystemActor
from workflows.models import CaseState, Resolution
from workflows.services import escalation, tokens
from workflows.services.sla import terms

# Server CPU budgets per request, in ms (docs/PERFORMANCE.md), and the tripwire's margin.
BUDGET_MS = {"claim-next": 5, "transition": 5, "case API": 4, "case page": 8, "home": 4,
             "error page": 1}
TRIPWIRE = 5
# What every signed-in request pays before its view, in queries: its session, the person
# signed in on it and their permissions, in one statement (workflows/sessions.py; by token:
# the token, its person and permissions); a page adds its top bar (one statement).
SESSION_AND_PERSON = 1
TOP_BAR = 1
# A transition's UPDATE of its case and INSERT of its audit row: one statement where the
# database has data-modifying WITH (PostgreSQL), two elsewhere.
CHANGE_AND_EVENT = 1 if connection.vendor == "postgresql" else 2


def with_token(user) -> APIClient:
    """An API client as a reviewer's program is one: a token, checked on every call."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + tokens.issue_user_token(
        user=user, actor=SystemActor(label="tests")).key)
    return client


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def alone(monkeypatch, cache) -> None:
    """``cache``'s token of its own: a test running beside this one in another process
    writes what the cache watches, which would drop its entries here (Redis)."""
    monkeypatch.setattr(cache, "generation_key", f"{cache.generation_key}:{uuid.uuid4()}")


def median_cpu_ms(call, runs: int = 7) -> float:
    call()  # warm: code paths run once
    spent = []
    for _ in range(runs):
        started = time.process_time()
        call()
        spent.append(time.process_time() - started)
    return 1000 * statistics.median(spent)


def within_tripwire(what: str, call) -> None:
    cpu, limit = median_cpu_ms(call), TRIPWIRE * BUDGET_MS[what]
    assert cpu <= limit, (f"{what}: {cpu:.1f} ms of CPU, over its tripwire of {limit} ms "
                          f"(budget {BUDGET_MS[what]} ms)")


@pytest.mark.django_db
def test_claim_next_answers_with_the_case_it_claimed_without_reading_it_again(
        queue, member, django_assert_max_num_queries):
    for _ in range(10):
        make_case(queue)
    client = with_token(member)

    # The token with its person and permissions, the locked candidate (with its
    # resolution, whether it has consults, whether its claimer is away, and the content
    # the answer shows: the domain's, where installed), its update and audit row (one
    # statement), and the transaction's two statements.
    with django_assert_max_num_queries(4 + CHANGE_AND_EVENT):
        answer = client.post("/api/v1/cases/claim-next/", {}, format="json")

    assert answer.status_code == 200
    assert answer.json()["assignee"] == member.username
    assert answer.json()["available_transitions"]
    within_tripwire("claim-next",
                    lambda: client.post("/api/v1/cases/claim-next/", {}, format="json"))


@pytest.mark.django_db
def test_claim_next_in_a_named_queue_reads_no_queue_first(queue, member,
                                                          django_assert_max_num_queries):
    make_case(queue)
    client = with_token(member)

    # As without a queue: the queue is named inside the candidate's query.
    with django_assert_max_num_queries(4 + CHANGE_AND_EVENT):
        answer = client.post("/api/v1/cases/claim-next/", {"queue": queue.slug},
                             format="json")

    assert answer.status_code == 200
    assert answer.json()["queue"] == queue.slug


@pytest.mark.django_db
def test_a_transition_answers_with_the_case_it_changed(queue, member,
                                                       django_assert_max_num_queries):
    cases = [case_in_state(CaseState.ASSIGNED, queue=queue, assignee=member)
             for _ in range(9)]
    client = with_token(member)

    # The token with its person and permissions, the case (with whether the holder works
    # its queue: may they claim it again?, and the content the answer shows: the
    # domain's, where installed), its update and audit row (one statement); and the
    # transaction's two statements.
    with django_assert_max_num_queries(4 + CHANGE_AND_EVENT):
        answer = client.post(f"/api/v1/cases/{cases[0].pk}/release/",
                             {"version": cases[0].version}, format="json")

    assert answer.status_code == 200
    assert (answer.json()["state"], answer.json()["assignee"]) == ("open", None)
    assert answer.json()["version"] == cases[0].version + 1
    rest = iter(cases[1:])
    within_tripwire("transition", lambda: client.post(
        f"/api/v1/cases/{next(rest).pk}/release/", {}, format="json"))


@pytest.mark.django_db
def test_a_reassignment_reads_its_new_holder_once(queue, member, second_member, manager,
                                                  monkeypatch, django_assert_max_num_queries):
    monkeypatch.setattr(terms._case_terms, "clock", lambda: 0.0)  # no expiry in this test
    alone(monkeypatch, terms._case_terms)
    cases = [case_in_state(CaseState.ASSIGNED, queue=queue, assignee=member)
             for _ in range(10)]
    client = with_token(manager)
    to_manager = client.post(f"/api/v1/cases/{cases[0].pk}/reassign/",
                             {"to_user": "manager"}, format="json")  # reads the SLA terms
    assert (to_manager.status_code, to_manager.json()["assignee"]) == (200, "manager")

    # The token with its person and permissions; the new holder with theirs and the
    # queues they work (may they take it?), one statement; the case with the content the
    # answer shows, its update and audit row (one statement); the transaction's two.
    with django_assert_max_num_queries(5 + CHANGE_AND_EVENT):
        answer = client.post(f"/api/v1/cases/{cases[1].pk}/reassign/",
                             {"to_user": "second", "version": cases[1].version},
                             format="json")

    assert answer.status_code == 200
    assert (answer.json()["state"], answer.json()["assignee"]) == ("assigned", "second")
    rest = iter(cases[2:])
    within_tripwire("transition", lambda: client.post(
        f"/api/v1/cases/{next(rest).pk}/reassign/", {"to_user": "second"}, format="json"))


@pytest.mark.django_db
def test_putting_a_case_on_hold_and_back_reads_the_sla_terms_once_per_process(
        queue, member, monkeypatch, django_assert_max_num_queries):
    # Business hours, a holiday calendar: the terms a clock pauses and resumes under.
    publish(queue, calendar=office_calendar())
    monkeypatch.setattr(terms._case_terms, "clock", lambda: 0.0)  # no expiry in this test
    alone(monkeypatch, terms._case_terms)
    first, second = (case_in_state(CaseState.ASSIGNED, queue=queue, assignee=member)
                     for _ in range(2))
    client = with_token(member)
    client.post(f"/api/v1/cases/{first.pk}/request-info/", {"reason": "Which PO?"},
                format="json")  # the first reads the queue's terms: policy, targets...

    # The token with its person and permissions, the case with its content, its update
    # and audit row (one statement); the transaction's two. No SLA policy, targets,
    # calendar closures or chain read again.
    with django_assert_max_num_queries(4 + CHANGE_AND_EVENT):
        held = client.post(f"/api/v1/cases/{second.pk}/request-info/",
                           {"reason": "Which PO?"}, format="json")
    with django_assert_max_num_queries(4 + CHANGE_AND_EVENT):
        resumed = client.post(f"/api/v1/cases/{second.pk}/resume/", {}, format="json")

    assert (held.status_code, held.json()["state"]) == (200, "waiting")
    assert (resumed.status_code, resumed.json()["state"]) == (200, "assigned")
    assert resumed.json()["due_at"] is not None


@pytest.mark.django_db
def test_a_resolution_is_written_and_answered_without_reading_it_again(queue, member):
    case = case_in_state(CaseState.ASSIGNED, queue=queue, assignee=member)
    client = with_token(member)

    with CaptureQueriesContext(connection) as queries:
        answer = client.post(f"/api/v1/cases/{case.pk}/resolve/",
                             {"verdict": "rejected", "reason_code": "wrong-amount",
                              "version": case.version}, format="json")

    # Read with the case (a join), written in one statement: no read of its own, no
    # savepoints of update_or_create, none for the answer.
    touching = [query["sql"] for query in queries.captured_queries
                if '"workflows_resolution"' in query["sql"]]
    assert [sql.split()[0] for sql in touching] == ["SELECT", "INSERT"]
    assert ' FROM "workflows_case" c ' in touching[0]  # the case's own query
    assert 'LEFT JOIN "workflows_resolution"' in touching[0]
    assert not any(query["sql"].startswith("SAVEPOINT")
                   for query in queries.captured_queries[2:])  # only the transaction's
    # The case's update and its audit row in one statement, where the database can.
    writes = [query["sql"].split(" (")[0] for query in queries.captured_queries
              if query["sql"].startswith(("UPDATE", "INSERT", "WITH"))]
    if CHANGE_AND_EVENT == 1:
        assert writes == ["WITH changed AS", 'INSERT INTO "workflows_resolution"']
    assert answer.status_code == 200, answer.content
    assert answer.json()["resolution"]["verdict"] == "rejected"
    assert answer.json()["resolution"]["resolved_by"] == member.username
    assert Resolution.objects.get(case=case).reason_code == "wrong-amount"


@pytest.mark.django_db
def test_an_approval_writes_its_case_its_event_and_its_resolution_at_once(queue, member,
                                                                           second_member):
    case = case_in_state(CaseState.PENDING_APPROVAL, queue=queue, assignee=member)
    client = with_token(second_member)

    with CaptureQueriesContext(connection) as queries:
        answer = client.post(f"/api/v1/cases/{case.pk}/approve/", {}, format="json")

    # As every other transition: the case's update and its audit row in one statement
    # where the database can, and the resolution's approval in it too (only if that
    # save wins: it holds off any other writer of the case).
    writes = [query["sql"] for query in queries.captured_queries
              if query["sql"].startswith(("UPDATE", "INSERT", "WITH"))]
    if CHANGE_AND_EVENT == 1:
        assert writes[0].startswith("WITH changed AS")
        assert 'UPDATE "workflows_resolution" SET' in writes[0]
        assert not any(sql.startswith('UPDATE "workflows_resolution"') for sql in writes)
    assert answer.status_code == 200, answer.content
    assert answer.json()["state"] == "resolved"
    assert answer.json()["resolution"]["approved_by"] == second_member.username
    assert Resolution.objects.get(case=case).approved_by == second_member


@pytest.mark.django_db
def test_the_case_api_reads_a_page_or_a_case_in_a_few_queries(
        queue, member, django_assert_max_num_queries):
    for n in range(30):
        make_case(queue, state=CaseState.ASSIGNED if n % 2 else CaseState.OPEN,
                  assignee=member)
    case = case_in_state(CaseState.PENDING_APPROVAL, queue=queue, assignee=UserFactory())
    client = with_token(member)

    with django_assert_max_num_queries(2):  # the token with its person's permissions, the page
        page = client.get("/api/v1/cases/")
    # The token (with the person's permissions), the case (whether it has consults with
    # it: none), its content, whether they work its queue (may they approve it?).
    with django_assert_max_num_queries(4):
        one = client.get(f"/api/v1/cases/{case.pk}/")

    assert len(page.json()["results"]) == 31
    assert one.json()["resolution"]["verdict"] == "accepted"
    within_tripwire("case API", lambda: client.get("/api/v1/cases/"))
    within_tripwire("case API", lambda: client.get(f"/api/v1/cases/{case.pk}/"))


@pytest.mark.django_db
def test_the_case_page_and_home_stay_within_their_queries(queue, member,
                                                          django_assert_max_num_queries):
    case = case_in_state(CaseState.ASSIGNED, queue=queue, assignee=member)
    for _ in range(5):
        make_case(queue)
    browser = signed_in(member)

    # The floor, then the case with its people, its lease, what it is about (with the
    # domain installed, its decision: looked for twice for this case, which has none)
    # and its timeline.
    with django_assert_max_num_queries(SESSION_AND_PERSON + TOP_BAR + 5):
        page = browser.get(f"/cases/{case.pk}/")
    # The floor, then the queue summaries, the person's cases, are they away.
    with django_assert_max_num_queries(SESSION_AND_PERSON + TOP_BAR + 3):
        home = browser.get("/")

    assert page.status_code == home.status_code == 200
    within_tripwire("case page", lambda: browser.get(f"/cases/{case.pk}/"))
    within_tripwire("home", lambda: browser.get("/"))


@pytest.mark.django_db
def test_a_refused_page_answers_without_the_menu_and_logs_one_line(
        queue, member, caplog, django_assert_max_num_queries):
    browser = signed_in(member)

    with django_assert_max_num_queries(SESSION_AND_PERSON), \
            caplog.at_level(logging.WARNING):
        refused = browser.get("/dashboard/")  # managers only
    with django_assert_max_num_queries(SESSION_AND_PERSON + 1):  # the lookup
        missing = browser.get("/cases/999999/")
    # A case of a queue they do not work is not found either (I8), for the same price:
    # the page's one plain statement, nothing read by the ORM.
    elsewhere = make_case(QueueFactory())
    with django_assert_max_num_queries(SESSION_AND_PERSON + 1), \
            CaptureQueriesContext(connection) as lookup:
        hidden = browser.get(f"/cases/{elsewhere.pk}/")
    assert not any(query["sql"].startswith('SELECT "workflows_case".')
                   for query in lookup.captured_queries)

    assert refused.status_code == 403
    assert b"Not allowed" in refused.content and b"Ask a manager" in refused.content
    assert missing.status_code == 404
    assert b"Not found" in missing.content
    assert hidden.status_code == 404 and hidden.content == missing.content
    assert b'aria-label="Main"' not in refused.content + missing.content  # no menu
    [line] = [record for record in caplog.records if record.name == "django.request"
              and record.status_code == 403]
    assert line.getMessage() == "Forbidden (Permission denied): /dashboard/"
    assert line.exc_info is None  # a refusal is not a failure: no traceback
    within_tripwire("error page", lambda: browser.get("/dashboard/"))
    within_tripwire("error page", lambda: browser.get("/cases/999999/"))
    within_tripwire("error page", lambda: browser.get(f"/cases/{elsewhere.pk}/"))


@pytest.mark.django_db
def test_an_empty_page_pays_for_its_person_and_its_top_bar_and_nothing_else(
        queue, member, django_assert_num_queries):
    """The fixed cost of every page: what the top bar shows (Next case, the approvals
    waiting, the unread notifications) is one statement, whatever the person is."""
    browser = signed_in(member)
    case_in_state(CaseState.PENDING_APPROVAL, queue=queue, assignee=UserFactory())
    browser.get("/consults/")

    with django_assert_num_queries(SESSION_AND_PERSON + TOP_BAR + 1):
        page = browser.get("/consults/")  # its own: the person's consults (none)

    assert page.status_code == 200
    assert b'aria-label="1 waiting"' in page.content  # the approval waiting for them
    assert b'data-shortcut="n"' in page.content  # they work a queue: Next case
    within_tripwire("home", lambda: browser.get("/consults/"))


@pytest.mark.django_db
def test_an_api_call_with_a_token_pays_one_statement_for_its_person(
        member, django_assert_num_queries):
    client = with_token(member)
    client.get("/api/v1/me/preferences/")

    with django_assert_num_queries(1):  # the token, its person and permissions, afresh
        answer = client.get("/api/v1/me/preferences/")

    assert answer.status_code == 200
    # Nothing but the floor, as an error page: held to the same tripwire.
    within_tripwire("error page", lambda: client.get("/api/v1/me/preferences/"))


@pytest.mark.django_db
def test_escalating_by_hand_reads_the_chain_once_per_process_and_the_case_once(
        queue, member, monkeypatch, django_assert_max_num_queries):
    chain = make_chain(queue)
    for cache in (escalation._chains, terms._case_terms):
        monkeypatch.setattr(cache, "clock", lambda: 0.0)
        alone(monkeypatch, cache)
    first, second = (case_in_state(CaseState.ASSIGNED, queue=queue, assignee=member)
                     for _ in range(2))
    client = with_token(member)
    client.post(f"/api/v1/cases/{first.pk}/escalate/", {"reason": "Looks off"},
                format="json")  # the first reads the chain: levels, matrix, people...

    # The token and its person, the case with the content the answer shows, the level's
    # claim with its escalation row, whether the target is away and their load (one
    # statement), the consult asked, the case's changes with the notices and the audit
    # row (one statement); the consults the answer shows; the transaction's two
    # statements (no savepoint of the escalation's own). No queue, level, matrix or
    # person read again, nor the case or its content after.
    with django_assert_max_num_queries(9):
        answer = client.post(f"/api/v1/cases/{second.pk}/escalate/",
                             {"reason": "Looks off"}, format="json")

    assert answer.status_code == 200
    assert (answer.json()["state"], answer.json()["assignee"]) == ("assigned",
                                                                   chain.owner.username)
    assert answer.json()["escalation_level"] == 1
