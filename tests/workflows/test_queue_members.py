"""Queue membership for managers, and its one relation to the RACI matrix: the people
Responsible on a queue's process work the queue as its members do (they claim its cases
and can be picked for reassignment); both pages say so."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory, make_case
from workflows.models import AuditEvent, CaseState, Process, RaciAssignment
from workflows.services import claiming

pytestmark = pytest.mark.django_db


@pytest.fixture
def process(queue):
    process = Process.objects.create(slug="invoices", name="Invoice approval")
    queue.process = process
    queue.save()
    return process


@pytest.fixture
def escalation_lead(process):
    """Responsible for escalation on the queue's process; no member of the queue."""
    lead = UserFactory(username="lena", first_name="Lena", last_name="Lead")
    RaciAssignment.objects.create(process=process, activity="escalation", role="R", user=lead)
    return lead


def test_someone_responsible_for_escalation_can_be_picked_for_reassignment(
        client, queue, member, manager, escalation_lead):
    case = make_case(queue, state=CaseState.ASSIGNED, assignee=member)
    client.force_login(manager)

    page = client.get(reverse("case", args=[case.pk])).content.decode()

    assert f'<option value="{escalation_lead.pk}">Lena Lead</option>' in page
    waiting = make_case(queue)
    assert claiming.claim(case_id=waiting.pk, user=escalation_lead).assignee == escalation_lead


def test_the_members_page_lists_members_and_the_responsible_and_saves_audited(
        client, queue, member, second_member, manager, escalation_lead):
    client.force_login(manager)
    url = reverse("queue-members", args=[queue.slug])

    page = client.get(url).content.decode()
    assert "Lena Lead <span class=\"muted\">· Responsible for escalation</span>" in page
    assert "the people Responsible (R, for any activity) in the RACI matrix" in page

    saved = client.post(url, {"members": [member.pk]})

    assert saved.status_code == 302
    assert list(queue.members.all()) == [member]
    event = AuditEvent.objects.get(verb="queue.changed")
    assert (event.actor, event.data["before"]["members"], event.data["after"]["members"]) == (
        manager, sorted([member.pk, second_member.pk]), [member.pk])
    assert "Lena Lead" in client.get(url).content.decode()  # still works it, as Responsible


def test_only_managers_see_the_queue_pages(client, queue, member):
    client.force_login(member)

    assert client.get(reverse("queue-index")).status_code == 403
    assert client.get(reverse("queue-members", args=[queue.slug])).status_code == 403
    assert client.post(reverse("queue-members", args=[queue.slug]), {}).status_code == 403


def test_the_raci_matrix_says_the_responsible_work_the_process_queues(
        client, queue, manager, process):
    client.force_login(manager)

    page = client.get(reverse("raci-matrix", args=[process.slug])).content.decode()

    assert "Responsible get new cases and work the process's queues" in page
    assert f'href="{reverse("queue-members", args=[queue.slug])}">Invoices</a>' in page
