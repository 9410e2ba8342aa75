"""Availability through the API (``workflows/api/availability.py``): a reviewer marks
themself away with a delegate, or back; a manager does it for them. Open assignments
move to the delegate or back to the queue, each move audited."""

from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from tests.factories import QueueFactory, client_for, make_case, make_manager
from tests.workflows.sla_support import open_case, publish, utc
from workflows.models import AuditEvent, Case, CaseState, ReviewerStatus
from workflows.services import assignment, claiming

S = CaseState
ME = "/api/v1/me/availability/"
HOUR = timedelta(hours=1)
T = utc(2026, 3, 2, 10, 0)


def reviewer_url(user) -> str:
    return f"/api/v1/reviewers/{user.username}/availability/"


def events(verb: str):
    return AuditEvent.objects.filter(verb=verb)


@pytest.mark.django_db
def test_someone_who_never_went_away_is_available(member):
    response = client_for(member).get(ME)

    assert response.status_code == 200
    assert response.json() == {"user": "member", "available": True, "away_since": None,
                               "delegate": None}
    assert APIClient().get(ME).status_code == 401


@pytest.mark.django_db
def test_away_with_a_delegate_hands_over_the_open_work(queue, member, second_member):
    assigned = make_case(queue, state=S.ASSIGNED, assignee=member)
    waiting = make_case(queue, state=S.WAITING, assignee=member)

    response = client_for(member).put(ME, {"available": False, "delegate": "second"},
                                      format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["available"], body["delegate"], body["moved_cases"]) == (False, "second", 2)
    assert body["away_since"] is not None
    assert {c.assignee for c in Case.objects.filter(pk__in=[assigned.pk, waiting.pk])} == {
        second_member}
    assert events("case.delegated").count() == 2
    away = events("reviewer.away").get()
    assert (away.actor, away.data["delegate"]) == (member, second_member.pk)
    assert client_for(member).get(ME).json()["delegate"] == "second"


@pytest.mark.django_db
def test_away_without_a_delegate_gives_claims_back_to_the_queue(queue, member):
    assigned = make_case(queue, state=S.ASSIGNED, assignee=member)

    response = client_for(member).put(ME, {"available": False}, format="json")

    assert response.json()["moved_cases"] == 1
    case = Case.objects.get(pk=assigned.pk)
    assert (case.state, case.assignee) == (S.OPEN, None)
    assert events("case.released").filter(case=case).count() == 1


@pytest.mark.django_db
def test_handing_over_restarts_the_clock_where_the_policy_says_so(queue, member,
                                                                  second_member):
    publish(queue, resolution=8 * HOUR, restart_on_reassign=True, now=T)
    case = open_case(queue, now=T)
    claiming.claim(case_id=case.pk, user=member, now=T)

    with time_machine.travel(T + 3 * HOUR, tick=False):
        client_for(member).put(ME, {"available": False, "delegate": "second"}, format="json")

    case = Case.objects.get(pk=case.pk)
    assert case.assignee == second_member
    assert case.due_at == T + 11 * HOUR  # a full 8 h from the hand-over


@pytest.mark.django_db
def test_saying_the_same_twice_records_one_change(queue, member, second_member):
    make_case(queue, state=S.ASSIGNED, assignee=member)
    client = client_for(member)

    client.put(ME, {"available": False, "delegate": "second"}, format="json")
    again = client.put(ME, {"available": False, "delegate": "second"}, format="json")
    client.put(ME, {"available": True}, format="json")
    back_again = client.put(ME, {"available": True}, format="json")

    assert again.json()["moved_cases"] == 0
    assert back_again.json()["available"] is True
    assert events("reviewer.away").count() == 1
    assert events("reviewer.available").count() == 1
    assert assignment.is_available(member)


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    {"available": False, "delegate": "nobody"},
    {"available": False, "delegate": "member"},
    {"available": True, "delegate": "second"},
])
def test_a_delegate_who_cannot_take_over_is_refused_naming_the_field(member, second_member,
                                                                     body):
    response = client_for(member).put(ME, body, format="json")

    assert response.status_code == 400
    assert "delegate" in response.json()
    assert not ReviewerStatus.objects.filter(available=False).exists()
    assert not events("reviewer.away").exists()


@pytest.mark.django_db
def test_a_request_without_the_flag_is_refused(member):
    response = client_for(member).put(ME, {"delegate": "second"}, format="json")

    assert response.status_code == 400 and "available" in response.json()


@pytest.mark.django_db
def test_a_manager_marks_a_reviewer_away_and_back(queue, member, second_member, manager):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    away = client_for(manager).put(reviewer_url(member),
                                   {"available": False, "delegate": "second"}, format="json")

    assert away.status_code == 200 and away.json()["moved_cases"] == 1
    assert Case.objects.get(pk=case.pk).assignee == second_member
    assert events("reviewer.away").get().actor == manager
    assert client_for(manager).get(reviewer_url(member)).json()["available"] is False
    back = client_for(manager).put(reviewer_url(member), {"available": True}, format="json")
    assert back.json()["available"] is True
    assert events("reviewer.available").get().actor == manager


@pytest.mark.django_db
def test_only_managers_see_or_set_someone_elses_availability(queue, member, second_member,
                                                             outsider, manager):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    for someone_else in (second_member, outsider):
        client = client_for(someone_else)
        assert client.get(reviewer_url(member)).status_code == 403
        assert client.put(reviewer_url(member), {"available": False},
                          format="json").status_code == 403
    assert client_for(member).get(reviewer_url(member)).status_code == 200
    assert client_for(manager).get("/api/v1/reviewers/nobody/availability/").status_code == 404
    assert client_for(outsider).get("/api/v1/reviewers/nobody/availability/").status_code == 403
    assert Case.objects.get(pk=case.pk).assignee == member
    assert not events("reviewer.away").exists()


@pytest.mark.django_db
def test_a_delegate_from_another_queue_gets_no_case_and_cannot_read_or_resolve_them(
        queue, member, outsider):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    response = client_for(member).put(ME, {"available": False, "delegate": "outsider"},
                                      format="json")

    assert response.status_code == 400
    assert "works none of member's queues" in response.json()["delegate"][0]
    assert Case.objects.get(pk=case.pk).assignee == member
    assert assignment.is_available(member)
    assert not events("case.delegated").exists()
    outsider_client = client_for(outsider)
    assert outsider_client.get(f"/api/v1/cases/{case.pk}/").status_code == 404
    assert outsider_client.post(f"/api/v1/cases/{case.pk}/resolve/",
                                {"verdict": "rejected"}, format="json").status_code == 404


@pytest.mark.django_db
def test_a_mixed_set_splits_between_the_delegate_and_the_queues(queue, member,
                                                                second_member):
    refunds = QueueFactory(slug="refunds", name="Refunds")
    refunds.members.add(member)
    theirs = make_case(queue, state=S.ASSIGNED, assignee=member)
    not_theirs = make_case(refunds, state=S.ASSIGNED, assignee=member)

    boss = make_manager(username="boss")

    response = client_for(boss).put(reviewer_url(member),
                                    {"available": False, "delegate": "second"}, format="json")

    assert response.status_code == 200 and response.json()["moved_cases"] == 2
    theirs, not_theirs = (Case.objects.get(pk=c.pk) for c in (theirs, not_theirs))
    assert (theirs.state, theirs.assignee) == (S.ASSIGNED, second_member)
    assert (not_theirs.state, not_theirs.assignee) == (S.OPEN, None)
    assert events("case.released").get().case_id == not_theirs.pk
    assert events("case.delegated").get().actor == boss
    delegate = client_for(second_member)
    assert delegate.get(f"/api/v1/cases/{theirs.pk}/").status_code == 200
    assert delegate.get(f"/api/v1/cases/{not_theirs.pk}/").status_code == 404


@pytest.mark.django_db
def test_away_means_away_claims_answer_409_with_the_reason(queue, member):
    case = make_case(queue)
    client = client_for(member)
    with time_machine.travel(T, tick=False):
        client.put(ME, {"available": False}, format="json")

    next_one = client.post("/api/v1/cases/claim-next/", {}, format="json")
    this_one = client.post(f"/api/v1/cases/{case.pk}/claim/", {"version": 1}, format="json")

    for refused in (next_one, this_one):
        assert refused.status_code == 409
        assert refused.json() == {
            "detail": "You are marked away since Mar 2, 10:00 UTC: mark yourself available "
                      "to take cases.",
            "away_since": "2026-03-02T10:00:00Z"}
    assert Case.objects.get(pk=case.pk).state == S.OPEN
    client.put(ME, {"available": True}, format="json")
    assert client.post("/api/v1/cases/claim-next/", {}, format="json").json()["id"] == case.pk
