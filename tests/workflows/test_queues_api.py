"""Queues through the API (``workflows/api/queues.py``): who sees which queue, and how a
manager switches a queue between pull and push assignment."""

import pytest

from tests.factories import QueueFactory, client_for
from tests.workflows.sla_support import open_case, publish, utc
from workflows.models import AssignmentMode, AuditEvent, CaseState, Queue

QUEUES = "/api/v1/queues/"
T = utc(2026, 3, 2, 10, 0)


def assignment_url(queue) -> str:
    return f"{QUEUES}{queue.slug}/assignment/"


@pytest.mark.django_db
def test_each_person_sees_the_queues_they_work(queue, member, outsider, manager):
    publish(queue, now=T)

    mine = client_for(member).get(QUEUES).json()

    assert [q["slug"] for q in mine] == ["invoices"]
    assert (mine[0]["assignment_mode"], mine[0]["sla_policy_version"]) == ("pull", 1)
    assert [q["slug"] for q in client_for(outsider).get(QUEUES).json()] == ["elsewhere"]
    assert {q["slug"] for q in client_for(manager).get(QUEUES).json()} == {"invoices",
                                                                           "elsewhere"}
    assert client_for(outsider).get(f"{QUEUES}invoices/").status_code == 404
    assert client_for(outsider).get(assignment_url(queue)).status_code == 404
    assert client_for(member).get(f"{QUEUES}invoices/").json()["sla_policy_version"] == 1


@pytest.mark.django_db
def test_a_manager_switches_a_queue_to_push_and_new_cases_are_pushed(queue, member, manager):
    response = client_for(manager).put(assignment_url(queue), {
        "assignment_mode": "least_loaded", "max_open_per_reviewer": 1}, format="json")

    assert response.status_code == 200
    assert response.json() == {"queue": "invoices", "assignment_mode": "least_loaded",
                               "max_open_per_reviewer": 1}
    event = AuditEvent.objects.get(verb="queue.assignment_changed")
    assert event.actor == manager
    assert event.data["before"] == {"mode": "pull", "max_open_per_reviewer": 10}
    assert event.data["after"] == {"mode": "least_loaded", "max_open_per_reviewer": 1}
    queue.refresh_from_db()  # as intake reads it
    first, second = open_case(queue, now=T), open_case(queue, now=T)
    assert (first.state, first.assignee) == (CaseState.ASSIGNED, member)
    assert (second.state, second.assignee) == (CaseState.OPEN, None)  # member at the cap


@pytest.mark.django_db
def test_setting_the_same_mode_again_records_nothing(queue, manager):
    client = client_for(manager)
    client.put(assignment_url(queue), {"assignment_mode": "round_robin"}, format="json")

    again = client.put(assignment_url(queue), {"assignment_mode": "round_robin"},
                       format="json")

    assert again.json()["max_open_per_reviewer"] == 10  # left out: kept
    assert AuditEvent.objects.filter(verb="queue.assignment_changed").count() == 1


@pytest.mark.django_db
def test_only_managers_change_the_mode(queue, member):
    response = client_for(member).put(assignment_url(queue),
                                      {"assignment_mode": "round_robin"}, format="json")

    assert response.status_code == 403
    assert client_for(member).get(assignment_url(queue)).json()["assignment_mode"] == "pull"
    assert Queue.objects.get(pk=queue.pk).assignment_mode == AssignmentMode.PULL
    assert not AuditEvent.objects.filter(verb="queue.assignment_changed").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({"assignment_mode": "lottery"}, "assignment_mode"),
    ({}, "assignment_mode"),
    ({"assignment_mode": "round_robin", "max_open_per_reviewer": 0}, "max_open_per_reviewer"),
])
def test_a_mode_that_cannot_work_is_refused_naming_the_field(queue, manager, body, field):
    response = client_for(manager).put(assignment_url(queue), body, format="json")

    assert response.status_code == 400 and field in response.json()
    assert Queue.objects.get(pk=queue.pk).assignment_mode == AssignmentMode.PULL


@pytest.mark.django_db
def test_queues_list_in_a_fixed_number_of_queries(manager, django_assert_max_num_queries):
    for n in range(10):
        publish(QueueFactory(slug=f"q-{n}"), now=T)

    with django_assert_max_num_queries(4):
        assert len(client_for(manager).get(QUEUES).json()) == 10
