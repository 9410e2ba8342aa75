from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.factories import QueueFactory, case_in_state, client_for, make_case
from workflows.models import CaseState
from workflows.services import assignment

S = CaseState
CASES = "/api/v1/cases/"


def ids(response) -> set[int]:
    return {item["id"] for item in response.json()["results"]}


# -- scope (I8) -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_each_person_lists_only_the_cases_they_may_see(queue, member, manager, outsider):
    mine = make_case(queue)
    elsewhere = make_case(QueueFactory(slug="elsewhere"))

    assert ids(client_for(member).get(CASES)) == {mine.pk}
    assert ids(client_for(outsider).get(CASES)) == {elsewhere.pk}
    assert ids(client_for(manager).get(CASES)) == {mine.pk, elsewhere.pk}


@pytest.mark.django_db
def test_a_case_out_of_scope_is_not_found(queue, member, outsider):
    case = make_case(queue)

    assert client_for(outsider).get(f"{CASES}{case.pk}/").status_code == 404
    assert client_for(outsider).post(f"{CASES}{case.pk}/claim/").status_code == 404
    assert client_for(member).get(f"{CASES}{case.pk}/").status_code == 200


@pytest.mark.django_db
def test_cases_a_member_resolved_stay_visible_after_they_leave_the_queue(queue, member):
    case = case_in_state(S.PENDING_APPROVAL, queue=queue, assignee=member)
    queue.members.remove(member)

    assert client_for(member).get(f"{CASES}{case.pk}/").status_code == 200


@pytest.mark.django_db
def test_people_need_to_sign_in(queue):
    response = APIClient().get(CASES)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
def test_a_token_from_issue_user_token_authenticates(queue, member, capsys):
    case = make_case(queue)
    call_command("issue_user_token", "member")
    token = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert ids(client.get(CASES)) == {case.pk}
    call_command("issue_user_token", "member")
    assert capsys.readouterr().out.strip() == token  # the same token until rotated


# -- list: filters, pagination, query counts ------------------------------------------------

@pytest.mark.django_db
def test_cases_filter_by_queue_state_assignee_priority_and_due_time(queue, member, manager):
    now = timezone.now()
    other = QueueFactory(slug="payments")
    mine = make_case(queue, state=S.ASSIGNED, assignee=member, priority=80,
                     due_at=now + timedelta(hours=1))
    waiting = make_case(queue, priority=20, due_at=now + timedelta(hours=5))
    elsewhere = make_case(other, priority=80, due_at=now + timedelta(hours=9))
    client = client_for(manager)

    assert ids(client.get(CASES, {"queue": "payments"})) == {elsewhere.pk}
    assert ids(client.get(CASES, {"state": ["open", "assigned"]})) == {
        mine.pk, waiting.pk, elsewhere.pk}
    assert ids(client.get(CASES, {"state": "assigned"})) == {mine.pk}
    assert ids(client.get(CASES, {"assignee": "member"})) == {mine.pk}
    assert ids(client_for(member).get(CASES, {"assignee": "me"})) == {mine.pk}
    assert ids(client.get(CASES, {"priority": 20})) == {waiting.pk}
    assert ids(client.get(CASES, {"priority_min": 50})) == {mine.pk, elsewhere.pk}
    due = (now + timedelta(hours=6)).isoformat()
    assert ids(client.get(CASES, {"due_before": due})) == {mine.pk, waiting.pk}
    assert client.get(CASES, {"state": "sleeping"}).status_code == 400


@pytest.mark.django_db
def test_the_case_list_pages_with_a_cursor(queue, member):
    cases = [make_case(queue) for _ in range(5)]
    client = client_for(member)

    first = client.get(CASES, {"page_size": 3}).json()
    second = client.get(first["next"]).json()

    assert [c["id"] for c in first["results"]] == [c.pk for c in reversed(cases)][:3]
    assert [c["id"] for c in second["results"]] == [c.pk for c in reversed(cases)][3:]
    assert second["next"] is None


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 30])
def test_the_case_list_costs_the_same_queries_for_3_or_30_cases(
        count, queue, member, second_member, django_assert_max_num_queries):
    for n in range(count):
        make_case(queue, state=S.ASSIGNED if n % 2 else S.OPEN, assignee=second_member)
    client = APIClient()
    client.force_login(member)  # session auth, as the web pages use it

    with django_assert_max_num_queries(6):
        response = client.get(CASES, {"page_size": 50})

    assert len(response.json()["results"]) == count


@pytest.mark.django_db
@pytest.mark.parametrize("count", [2, 20])
def test_the_approvals_list_costs_the_same_queries(count, queue, member, second_member,
                                                    django_assert_max_num_queries):
    from workflows import selectors

    for _ in range(count):
        case_in_state(S.PENDING_APPROVAL, queue=queue, assignee=member)

    with django_assert_max_num_queries(3):
        rows = [(case.pk, case.first_reviewer.username, case.resolution.verdict,
                 case.queue.name) for case in selectors.pending_approvals(user=second_member)]

    assert len(rows) == count
    assert list(selectors.pending_approvals(user=member)) == []  # not their own


@pytest.mark.django_db
def test_queue_summaries_count_waiting_cases_in_one_query(queue, member,
                                                             django_assert_max_num_queries):
    from workflows import selectors

    now = timezone.now()
    other = QueueFactory(slug="payments", name="Payments")
    other.members.add(member)
    make_case(queue, now=now - timedelta(hours=3))
    make_case(queue, state=S.ESCALATED, now=now)
    make_case(queue, state=S.ASSIGNED, assignee=member)
    QueueFactory(slug="secret").cases.create(created_at=now)  # not theirs
    member.has_perm("workflows.manage_cases")  # Django caches this once per request

    with django_assert_max_num_queries(1):
        summaries = {s.queue.slug: s for s in selectors.queue_summaries(user=member)}

    assert set(summaries) == {"invoices", "payments"}
    assert summaries["invoices"].open_count == 2
    assert summaries["payments"].open_count == 0
    assert summaries["payments"].oldest_open_at is None
    age = summaries["invoices"].oldest_open_age(now)
    assert timedelta(hours=3) < age < timedelta(hours=3, minutes=6)


@pytest.mark.django_db
def test_a_long_queue_counts_up_to_the_cap(queue, member, monkeypatch):
    from workflows import selectors

    monkeypatch.setattr(selectors, "OPEN_COUNT_CAP", 2)
    for _ in range(3):
        make_case(queue)

    [summary] = selectors.queue_summaries(user=member)

    assert (summary.open_count, summary.open_count_capped) == (2, True)
    assert summary.open_count_label == "2+"


@pytest.mark.django_db
def test_home_says_a_long_queue_has_more_than_the_cap(client, queue, member, monkeypatch):
    from workflows import selectors

    monkeypatch.setattr(selectors, "OPEN_COUNT_CAP", 2)
    for _ in range(3):
        make_case(queue)
    client.force_login(member)

    page = client.get("/").content.decode()

    assert '<div class="stat__value">2+</div><div class="stat__label">waiting</div>' in page


# -- detail and blind review ----------------------------------------------------------------

# -- claim-next and transitions -------------------------------------------------------------

@pytest.mark.django_db
def test_claim_next_answers_the_case_then_204_when_nothing_waits(queue, member):
    case = make_case(queue)
    client = client_for(member)

    first = client.post(f"{CASES}claim-next/", {}, format="json")
    second = client.post(f"{CASES}claim-next/", {}, format="json")

    assert first.status_code == 200
    assert (first.json()["id"], first.json()["state"], first.json()["assignee"]) == (
        case.pk, "assigned", "member")
    assert first.json()["version"] == 2
    assert second.status_code == 204


@pytest.mark.django_db
def test_claim_next_in_a_named_queue(queue, member, outsider):
    other = QueueFactory(slug="payments")
    other.members.add(member)
    make_case(queue, priority=90)
    wanted = make_case(other, priority=10)

    response = client_for(member).post(f"{CASES}claim-next/", {"queue": "payments"},
                                       format="json")

    assert response.json()["id"] == wanted.pk
    # A queue one does not work is not there.
    refused = client_for(outsider).post(f"{CASES}claim-next/", {"queue": "invoices"},
                                        format="json")
    assert refused.status_code == 404


@pytest.mark.django_db
def test_claim_next_in_a_named_queue_tells_an_empty_queue_from_one_not_theirs(
        queue, member, outsider):
    QueueFactory(slug="payments")  # exists, but the member does not work it
    make_case(queue)
    client = client_for(member)
    assert client.post(f"{CASES}claim-next/", {"queue": "invoices"},
                       format="json").status_code == 200

    # Theirs and empty: nothing waits. Not theirs, or no such queue: not there.
    assert client.post(f"{CASES}claim-next/", {"queue": "invoices"},
                       format="json").status_code == 204
    assert client.post(f"{CASES}claim-next/", {"queue": "payments"},
                       format="json").status_code == 404
    assert client.post(f"{CASES}claim-next/", {"queue": "nowhere"},
                       format="json").status_code == 404

    # Away: a queue not theirs is still not there; their own queue answers that they are away.
    assignment.set_away(user=member, actor=member)
    make_case(queue)
    assert client.post(f"{CASES}claim-next/", {"queue": "payments"},
                       format="json").status_code == 404
    assert client.post(f"{CASES}claim-next/", {"queue": "invoices"},
                       format="json").status_code == 409


@pytest.mark.django_db
def test_a_stale_version_answers_409_with_the_current_state(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)
    client = client_for(member)
    client.post(f"{CASES}{case.pk}/request-info/", {"reason": "PO?", "version": 1},
                format="json")

    response = client.post(f"{CASES}{case.pk}/release/", {"version": 1}, format="json")

    assert response.status_code == 409
    assert (response.json()["state"], response.json()["version"]) == ("waiting", 2)
    assert "reload" in response.json()["detail"]


@pytest.mark.django_db
def test_a_corrected_verdict_without_output_is_a_field_error(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    response = client_for(member).post(f"{CASES}{case.pk}/resolve/",
                                       {"verdict": "corrected"}, format="json")

    assert response.status_code == 400 and "output" in response.json()


@pytest.mark.django_db
def test_reassign_to_an_unknown_user_is_a_field_error(queue, member, manager):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    response = client_for(manager).post(f"{CASES}{case.pk}/reassign/",
                                        {"to_user": "nobody"}, format="json")

    assert response.status_code == 400
    assert "nobody" in response.json()["to_user"][0]
    # A member asking the same learns nothing about usernames: 403.
    response = client_for(member).post(f"{CASES}{case.pk}/reassign/",
                                       {"to_user": "nobody"}, format="json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_four_eyes_through_the_api(queue, member, second_member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member, four_eyes=True)
    url = f"{CASES}{case.pk}/"

    submitted = client_for(member).post(f"{url}resolve/", {"verdict": "accepted"},
                                        format="json").json()
    assert submitted["state"] == "pending_approval"
    assert client_for(member).post(f"{url}approve/").status_code == 403
    sent_back = client_for(second_member).post(f"{url}send-back/", {"comment": "Why?"},
                                               format="json").json()
    assert (sent_back["state"], sent_back["assignee"]) == ("assigned", "member")
    client_for(member).post(f"{url}resolve/", {"verdict": "accepted"}, format="json")
    approved = client_for(second_member).post(f"{url}approve/").json()
    assert approved["state"] == "resolved"
    assert approved["resolution"]["approved_by"] == "second"
    assert approved["resolution"]["resolved_by"] == "member"


# -- the OpenAPI schema ---------------------------------------------------------------------

def test_the_case_api_is_documented_without_warnings():
    GENERATOR_STATS.reset()
    patterns = [path("api/v1/", include("workflows.api.urls"))]

    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)

    paths = schema["paths"]
    for name in ("claim", "release", "resolve", "request-info", "resume", "escalate",
                 "approve", "send-back", "reassign", "cancel"):
        assert f"/api/v1/cases/{{id}}/{name}/" in paths
    assert "/api/v1/cases/claim-next/" in paths
    assert "204" in paths["/api/v1/cases/claim-next/"]["post"]["responses"]
    list_params = {p["name"] for p in paths["/api/v1/cases/"]["get"]["parameters"]}
    assert {"queue", "state", "assignee", "priority", "due_before", "cursor"} <= list_params
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache),
                                 dict(GENERATOR_STATS._error_cache))


# -- consults on the case detail ------------------------------------------------------------
