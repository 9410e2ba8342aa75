"""Finding cases: the case list page and ``GET /api/v1/cases/`` share their filters and
search, scoped to what the person may see (I8); saved views; bulk actions from the list
and through ``POST /api/v1/cases/bulk/``."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.factories import QueueFactory, UserFactory, case_in_state, client_for
from workflows import case_search
from workflows.models import Case, CaseState, Process, SavedCaseView
from workflows.services import cases as case_service
from workflows.services import transitions

S = CaseState
CASES = "/api/v1/cases/"
LIST = "/cases/"


def ids(response) -> set[int]:
    return {item["id"] for item in response.json()["results"]}


def opened(queue, title: str, **spec) -> Case:
    """A case opened by the one write path that opens cases (its search text with it)."""
    [case] = case_service.open_cases(
        specs=[case_service.NewCase(queue=queue, title=title, **spec)],
        actor_label="tests", now=timezone.now())
    return case


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- search ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_search_finds_part_of_an_external_id_in_any_case_and_every_word_must_match(
        queue, member):
    wanted = opened(queue, "Invoice approval: INV-2026-000123")
    opened(queue, "Invoice approval: inv-2026-000999")
    opened(queue, "Refund: ref-77")

    assert ids(client_for(member).get(CASES, {"search": "000123"})) == {wanted.pk}
    assert ids(client_for(member).get(CASES, {"search": "inv-2026-000123"})) == {wanted.pk}
    assert len(ids(client_for(member).get(CASES, {"search": "invoice 2026"}))) == 2
    assert ids(client_for(member).get(CASES, {"search": "invoice ref-77"})) == set()


@pytest.mark.django_db
def test_a_search_too_short_to_look_up_is_refused_naming_the_field(queue, member):
    response = client_for(member).get(CASES, {"search": "ab"})

    assert response.status_code == 400
    assert response.json() == {"search": [
        "Type at least 3 characters of an external id, a title or a value to search for."]}


@pytest.mark.django_db
def test_an_outsider_searching_finds_nothing_of_a_queue_they_do_not_work(
        queue, member, outsider):
    opened(queue, "Invoice approval: inv-secret-1")

    assert ids(client_for(outsider).get(CASES, {"search": "secret"})) == set()
    assert len(ids(client_for(member).get(CASES, {"search": "secret"}))) == 1


# -- filters --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_unassigned_breached_and_due_filters(queue, member):
    now = timezone.now()
    waiting = opened(queue, "waiting")
    held = case_in_state(S.ASSIGNED, queue=queue, assignee=member, title="held")
    Case.objects.filter(pk=held.pk).update(due_at=now - timedelta(minutes=1))
    Case.objects.filter(pk=waiting.pk).update(due_at=now + timedelta(days=2))
    client = client_for(member)

    assert ids(client.get(CASES, {"assignee": "none"})) == {waiting.pk}
    assert ids(client.get(CASES, {"assignee": "me"})) == {held.pk}
    assert ids(client.get(CASES, {"sla": "breached"})) == {held.pk}
    assert ids(client.get(CASES, {"due_after": (now + timedelta(days=1)).isoformat()})) == {
        waiting.pk}


@pytest.mark.django_db
def test_use_case_filter_reads_the_queues_process(queue, manager):
    queue.process = Process.objects.create(slug="invoice-approval", name="Invoice approval")
    queue.save()
    mine = opened(queue, "one")
    opened(QueueFactory(slug="refunds"), "two")

    assert ids(client_for(manager).get(CASES, {"process": "invoice-approval"})) == {mine.pk}


@pytest.mark.django_db
def test_the_api_documents_search_and_every_filter():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    parameters = {p["name"]: p for p in schema["paths"][CASES]["get"]["parameters"]}

    assert {"search", "process", "queue", "state", "assignee", "priority", "priority_min",
            "due_before", "due_after", "sla"} <= set(parameters)
    assert "external id" in parameters["search"]["description"]
    assert "/api/v1/cases/bulk/" in schema["paths"]


# -- the page -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_page_lists_what_the_person_may_see_and_searches_like_the_api(
        queue, member, outsider):
    found = opened(queue, "Invoice approval: inv-42-acme")
    opened(queue, "Invoice approval: inv-43-globex")
    opened(QueueFactory(slug="elsewhere"), "Invoice approval: inv-44-acme")

    page = page_for(member).get(LIST, {"search": "acme"})

    assert page.status_code == 200
    assert [case.pk for case in page.context["cases"]] == [found.pk]
    assert "inv-42-acme" in page.text and "inv-44" not in page.text
    assert page_for(member).get(LIST, {"search": "a"}).status_code == 400
    assert "Cases</a>" in page.text  # the banner links here for people who work a queue


def _search_window(monkeypatch, *, size: int, rare: int):
    """A search window of ``size`` ids, and terms rare up to ``rare`` expected matches
    (-1: every term is common), so that a handful of cases shows what a million do."""
    monkeypatch.setattr(case_search, "SEARCH_WINDOW", size)
    monkeypatch.setattr(case_search, "RARE", rare)


@pytest.mark.django_db
def test_a_common_word_is_searched_a_stretch_at_a_time_and_the_page_says_how_far(
        queue, member, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite scans the whole history: no window")
    _search_window(monkeypatch, size=10, rare=-1)
    old = opened(queue, "Invoice approval: inv-1-wonka")
    others = [opened(queue, f"Invoice approval: inv-{n}-globex") for n in range(2, 22)]
    new = opened(queue, "Invoice approval: inv-22-wonka")
    client = page_for(member)

    first = client.get(LIST, {"search": "wonka"})
    assert [case.pk for case in first.context["cases"]] == [new.pk]
    assert f"searched down to case #{new.pk + 1 - 10}" in first.text
    assert "Search older cases</a>" in first.text

    # Below the window, a stretch with no match says so, and offers to go on.
    second = client.get(LIST, {"search": "wonka", "before": first.context["next_before"]})
    assert second.context["cases"] == []
    assert "No case you may see matches among the newest ones" in second.text
    third = client.get(LIST, {"search": "wonka", "before": second.context["next_before"]})
    assert [case.pk for case in third.context["cases"]] == [old.pk]
    assert third.context["next_before"] is None  # the window reached the first case
    assert others  # between the two, in the windows searched

    # The API: the same windows, followed by ``next`` until it is null.
    api = client_for(member)
    found, url, pages = [], CASES + "?search=wonka", 0
    while url:
        body = api.get(url).json()
        found += [item["id"] for item in body["results"]]
        url, pages = body["next"], pages + 1
    assert found == [new.pk, old.pk]
    assert pages == 3


@pytest.mark.django_db
def test_a_rare_word_is_found_however_old_without_windows(queue, member, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite scans the whole history: no window")
    _search_window(monkeypatch, size=3, rare=10 ** 9)
    old = opened(queue, "Invoice approval: inv-2026-000123")
    for n in range(10):
        opened(queue, f"Invoice approval: inv-2026-1{n:05d}")

    page = page_for(member).get(LIST, {"search": "000123"})
    body = client_for(member).get(CASES, {"search": "000123"}).json()

    assert [case.pk for case in page.context["cases"]] == [old.pk]
    assert page.context["next_before"] is None and "Search older" not in page.text
    assert [item["id"] for item in body["results"]] == [old.pk] and body["next"] is None


@pytest.mark.django_db
def test_pages_go_back_in_time_by_id_with_a_fixed_number_of_queries(
        queue, member, django_assert_max_num_queries):
    made = case_service.open_cases(
        specs=[case_service.NewCase(queue=queue, title=f"case {n}") for n in range(60)],
        actor_label="tests", now=timezone.now())
    client = page_for(member)

    with django_assert_max_num_queries(12):
        first = client.get(LIST)
    second = client.get(LIST, {"before": first.context["next_before"]})

    newest_first = sorted((case.pk for case in made), reverse=True)
    assert [case.pk for case in first.context["cases"]] == newest_first[:50]
    assert [case.pk for case in second.context["cases"]] == newest_first[50:]
    assert second.context["next_before"] is None
    assert "Older</a>" in first.text and "Older</a>" not in second.text


@pytest.mark.django_db
def test_a_saved_view_keeps_the_filters_under_a_name_and_only_its_owner_deletes_it(
        queue, member, second_member):
    client = page_for(member)

    saved = client.post("/cases/views/", {"name": "Breached here",
                                          "query": "queue=invoices&sla=breached&before=9"})
    view = SavedCaseView.objects.get(user=member)

    assert saved.status_code == 302 and saved["Location"] == "/cases/?queue=invoices&sla=breached"
    assert (view.name, view.query) == ("Breached here", "queue=invoices&sla=breached")
    assert "Breached here" in client.get(LIST).text
    assert "Breached here" not in page_for(second_member).get(LIST).text
    assert page_for(second_member).post(f"/cases/views/{view.pk}/delete/").status_code == 404
    assert client.post(f"/cases/views/{view.pk}/delete/").status_code == 302
    assert not SavedCaseView.objects.exists()


@pytest.mark.django_db
def test_a_view_needs_a_name(member):
    response = page_for(member).post("/cases/views/", {"name": " ", "query": "sla=breached"},
                                     follow=True)

    assert "Name the view" in response.text and not SavedCaseView.objects.exists()


@pytest.mark.django_db
def test_a_manager_reassigns_ticked_cases_and_reads_a_result_per_case(queue, member, manager):
    waiting = opened(queue, "Invoice approval: inv-1")
    closed = case_in_state(S.CANCELLED, queue=queue, manager=manager, title="gone")

    page = page_for(manager).post("/cases/bulk/", {
        "action": "reassign", "to_user": member.pk, "cases": [waiting.pk, closed.pk],
        "back": "sla=breached"})

    assert page.status_code == 200
    assert [(row["result"].case_id, row["result"].outcome) for row in page.context["rows"]] == [
        (waiting.pk, "done"), (closed.pk, "conflict")]
    assert "1 done, 1 in conflict, 0 refused" in page.text
    assert 'href="/cases/?sla=breached"' in page.text
    assert Case.objects.get(pk=waiting.pk).assignee == member


@pytest.mark.django_db
def test_the_bulk_page_says_what_is_missing_and_a_reviewer_may_not_use_it(
        queue, member, manager):
    case = opened(queue, "one")

    refused = page_for(manager).post("/cases/bulk/", {"action": "cancel", "cases": [case.pk]})

    assert refused.status_code == 400 and "Say why these cases are cancelled." in refused.text
    assert page_for(member).post("/cases/bulk/", {
        "action": "release", "cases": [case.pk]}).status_code == 403
    assert 'form="bulk"' not in page_for(member).get(LIST).text
    assert 'form="bulk"' in page_for(manager).get(LIST).text


# -- bulk through the API -------------------------------------------------------------------

@pytest.mark.django_db
def test_bulk_api_answers_each_case_a_conflicting_one_included(queue, member, manager):
    waiting = opened(queue, "one")
    racing = opened(queue, "two")
    transitions.cancel(case_id=racing.pk, user=manager, reason="Withdrawn by phone")

    response = client_for(manager).post(f"{CASES}bulk/", {
        "action": "reassign", "to_user": "member", "cases": [waiting.pk, racing.pk]},
        format="json")

    assert response.status_code == 200
    [done, conflict] = response.json()["results"]
    assert done == {"case": waiting.pk, "result": "done", "detail": "", "state": "assigned",
                    "version": Case.objects.get(pk=waiting.pk).version}
    assert conflict["result"] == "conflict" and conflict["state"] is None
    assert "cancelled" in conflict["detail"]


@pytest.mark.django_db
def test_bulk_api_refusals(queue, member, manager):
    case = opened(queue, "one")

    assert client_for(member).post(f"{CASES}bulk/", {
        "action": "release", "cases": [case.pk]}, format="json").status_code == 403
    unknown = client_for(manager).post(f"{CASES}bulk/", {
        "action": "reassign", "to_user": "nobody-here", "cases": [case.pk]}, format="json")
    assert unknown.status_code == 400 and "nobody-here" in unknown.json()["to_user"][0]
    too_many = client_for(manager).post(f"{CASES}bulk/", {
        "action": "release", "cases": list(range(1, 502))}, format="json")
    assert too_many.status_code == 400 and "at most 500" in too_many.json()["cases"][0]
    assert client_for(UserFactory()).post(f"{CASES}bulk/", {
        "action": "release", "cases": [case.pk]}, format="json").status_code == 403


@pytest.mark.django_db
def test_dashboard_figures_link_to_the_cases_they_count(queue, member, manager):
    held = case_in_state(S.ASSIGNED, queue=queue, assignee=member, title="late")
    Case.objects.filter(pk=held.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    cache.clear()  # the managers' looks share a board (another test's, else)

    dashboard = page_for(manager).get("/dashboard/").text
    listed = page_for(manager).get(LIST, {"queue": "invoices", "sla": "breached"})

    assert 'href="/cases/?queue=invoices&amp;sla=breached"' in dashboard
    assert 'href="/cases/?sla=breached"' in dashboard
    assert [case.pk for case in listed.context["cases"]] == [held.pk]


def test_the_search_text_holds_the_title_and_every_value_nested_or_not_in_lower_case():
    from workflows.case_search import search_text

    text = search_text(title="Invoice: INV-1", values=[
        "Nordwind AG", 4100.0, None, True, {"city": "Köln", "lines": [{"sku": "BRK-220"}]}])

    assert text == "invoice: inv-1 nordwind ag 4100.0 köln brk-220"
