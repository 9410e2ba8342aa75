"""Queues in the admin go through ``queues.queue_create`` / ``queue_update``: each save
writes exactly one audit event with before and after (I7)."""

import pytest
from django.urls import reverse

from tests.factories import QueueFactory, UserFactory
from workflows.models import AuditEvent, Queue


@pytest.fixture
def admin_client(client, db):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def queue_form(queue=None, **values):
    data = {"slug": "invoices", "name": "Invoices", "description": "", "lease_seconds": 1800,
            "response_target": "01:00:00", "resolution_target": "08:00:00", "process": "",
            "assignment_mode": "pull", "max_open_per_reviewer": 10, "members": [],
            "member_groups": []}
    if queue is not None:
        data.update(slug=queue.slug, name=queue.name, lease_seconds=queue.lease_seconds,
                    members=[user.pk for user in queue.members.all()])
        if queue.blind:
            data["blind"] = "on"
    data.update(values)
    return data


@pytest.mark.django_db
def test_adding_a_queue_in_the_admin_is_audited_once(admin_client):
    ann = UserFactory(username="ann")

    response = admin_client.post(reverse("admin:workflows_queue_add"),
                                 queue_form(members=[ann.pk]))

    assert response.status_code == 302
    queue = Queue.objects.get(slug="invoices")
    assert list(queue.members.all()) == [ann]
    event, = AuditEvent.objects.filter(object_type="queue")
    assert (event.verb, event.object_id, event.actor_label) == ("queue.created", str(queue.pk),
                                                                "root")
    assert event.data["before"] is None
    assert event.data["after"]["members"] == [ann.pk]


@pytest.mark.django_db
def test_changing_a_queue_in_the_admin_is_audited_once_with_before_and_after(admin_client):
    queue = QueueFactory(slug="invoices", lease_seconds=1800)
    ann = UserFactory(username="ann")

    response = admin_client.post(reverse("admin:workflows_queue_change", args=[queue.pk]),
                                 queue_form(queue, lease_seconds=600, members=[ann.pk]))

    assert response.status_code == 302
    queue.refresh_from_db()
    assert queue.lease_seconds == 600 and list(queue.members.all()) == [ann]
    event, = AuditEvent.objects.filter(object_type="queue")
    assert event.verb == "queue.changed"
    assert event.data["before"] == {"lease_seconds": 1800, "members": []}
    assert event.data["after"] == {"lease_seconds": 600, "members": [ann.pk]}


@pytest.mark.django_db
def test_a_queue_cannot_be_deleted_in_the_admin(admin_client):
    queue = QueueFactory()

    response = admin_client.post(reverse("admin:workflows_queue_delete", args=[queue.pk]),
                                 {"post": "yes"})

    assert response.status_code == 403
    assert Queue.objects.filter(pk=queue.pk).exists()
